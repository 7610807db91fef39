"""Pure decision logic: plain Candidates in, a Recommendation with reasons out.

Imports no DuckDB, pandas, click or clock, and reads no file. ``decide.recommend_rows`` is the
one path from store rows (plain dicts) to an answer: ``candidates`` builds the Candidates under
``compare``'s rules, ``rank`` decides, ``tree`` answers where nothing was measured;
``snapdragon`` gathers QNN quality and Snapdragon speed by source.
``edgebench.api.recommend`` (the CLI) and the report's recommendation section both call it.
"""

from edgebench.decision.model import Candidate, Estimate
from edgebench.decision.objective import (
    DEFAULT_MAX_KLD,
    DEFAULT_TIE_MARGIN,
    OPTIMIZE,
    Constraints,
    Weights,
)
from edgebench.decision.rank import rank
from edgebench.decision.result import GUIDANCE_LABEL, Advice, Ranked, Recommendation, Rejected
from edgebench.decision.snapdragon import SnapdragonEvidence
from edgebench.decision.targets import TARGETS, Target

__all__ = [
    "DEFAULT_MAX_KLD", "DEFAULT_TIE_MARGIN", "GUIDANCE_LABEL", "OPTIMIZE", "TARGETS", "Advice",
    "Candidate", "Constraints", "Estimate", "Ranked", "Recommendation", "Rejected",
    "SnapdragonEvidence", "Target", "Weights", "rank",
]
