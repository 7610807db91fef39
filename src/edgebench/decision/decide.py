"""The one path from store rows to an answer, shared by `edgebench recommend`
(``edgebench.api.recommend``) and the report's recommendation section.

Rows are plain dicts of store columns (``results.queries.store_rows`` or a report's rows): the
candidates are built under ``compare``'s rules (:mod:`edgebench.decision.candidates`), ranked
(:func:`edgebench.decision.rank.rank`), and, when the target has no measured row at all,
answered from the chapter's decision tree, labelled as guidance. On ``snapdragon`` every
answer carries the evidence by source (``decision.snapdragon``: QNN quality, Snapdragon speed,
the chapter's guidance). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from edgebench.decision import snapdragon, targets, tree
from edgebench.decision.candidates import candidates_from_rows
from edgebench.decision.objective import DEFAULT_TIE_MARGIN, Constraints, Weights
from edgebench.decision.rank import rank
from edgebench.decision.result import Recommendation


def recommend_rows(rows: list[Mapping[str, Any]], target: targets.Target, *,
                   machine: Mapping[str, Any] | None = None,
                   constraints: Constraints | None = None, optimize: str = "balanced",
                   model: str | None = None, across_machines: bool = False,
                   allow_unmeasured_quality: bool = False,
                   tie_margin: float = DEFAULT_TIE_MARGIN,
                   notes: Sequence[str] = ()) -> Recommendation:
    """What to ship on ``target``, from ``rows``.

    Args:
        rows: store rows (every status and kind; the candidates' speed and quality rows).
        target: the device target (``targets.get(name)``, or ``targets.every_row``).
        machine: this machine's facts (``machine_id`` and the fingerprint columns), for the
            ``this`` target, the choice of hardware and the tree's answer.
        constraints, optimize, tie_margin, allow_unmeasured_quality: as :func:`rank` takes
            them.
        model: the model whose rows to rank (needed when the target has several).
        across_machines: rank rows of different hardware together (said in the notes).
        notes: the caller's lines, shown after the candidates' own (e.g. an empty store).

    Returns:
        The ranking; with no measured row for the target, the decision tree's guidance
        (``guidance`` True). No winner with ``eliminated_by``: no candidate meets the limits;
        with ``needs_quality``: no candidate has quality measured. On ``snapdragon``,
        ``evidence`` holds the QNN quality and Snapdragon speed rows by source, whatever the
        outcome.

    Raises:
        ConfigError: an unknown mode, or several models and no ``model``.
    """
    weights = Weights.for_mode(optimize)
    facts = dict(machine or {})
    found = candidates_from_rows(rows, target, machine=facts or None, model=model,
                                 across_machines=across_machines)
    rec = rank(found.candidates, constraints, weights, target=target.name, steps=found.steps,
               notes=found.notes + tuple(notes), tie_margin=tie_margin,
               allow_unmeasured_quality=allow_unmeasured_quality,
               measure_quality=found.measure_quality)
    if rec.winner is None and rec.eliminated_by is None and not rec.needs_quality:
        kind = target if target.name in tree.TREE else targets.for_machine(facts)
        rec = tree.guidance(rec, kind, asked=target.name)
        if target.name == "this" and found.rows_in_store and not found.candidates:
            rec = dataclasses.replace(rec, notes=rec.notes + (
                "the store has no ok speed row of this machine; pick the target its rows "
                "were measured on with --device (e.g. cpu)",))
    if target.name == "snapdragon":
        rec = dataclasses.replace(rec, evidence=snapdragon.evidence(
            rows, model=model, constraints=constraints, optimize=optimize))
    return rec
