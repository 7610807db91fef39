"""``edgebench gate``: does a candidate regress against a baseline, beyond noise?

``refs`` resolves what ``--baseline`` / ``--candidate`` name to rows, ``thresholds`` parses
``--fail-on``, ``pairs`` matches runs and checks their conditions, ``verdicts`` judges each
metric with ``edgebench.stats``, ``engine`` ties them into a :class:`GateReport` and
``present`` writes it (table rows, markdown, JSON, JUnit). docs/gate.md has the rules.
"""

from edgebench.gate.engine import GateReport, run_gate
from edgebench.gate.refs import Side, resolve, resolve_pair
from edgebench.gate.thresholds import DEFAULTS, METRICS, Threshold, parse, parse_all

__all__ = ["DEFAULTS", "METRICS", "GateReport", "Side", "Threshold", "parse", "parse_all",
           "resolve", "resolve_pair", "run_gate"]
