"""Pure decision logic: plain Candidates in, a Recommendation with reasons out.

Imports no DuckDB, pandas, click or clock, and reads no file; ``edgebench.results.queries``
builds the Candidates and ``edgebench.api.recommend`` ties the two together.
"""

from edgebench.decision.model import (
    GUIDANCE_LABEL,
    OPTIMIZE,
    Advice,
    Candidate,
    Constraints,
    Estimate,
    Ranked,
    Recommendation,
    Rejected,
    Weights,
)
from edgebench.decision.rank import rank
from edgebench.decision.targets import TARGETS, Target

__all__ = [
    "GUIDANCE_LABEL", "OPTIMIZE", "TARGETS", "Advice", "Candidate", "Constraints", "Estimate",
    "Ranked", "Recommendation", "Rejected", "Target", "Weights", "rank",
]
