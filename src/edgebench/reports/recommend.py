"""The report's recommendation section: one verdict per device, from the decision layer.

Each device label's rows go through ``edgebench.decision.decide.recommend_rows`` — the same
function behind `edgebench recommend` — once per model, so the report and the command give
the same answer: the same quality floor, the same rule for unmeasured quality (not ranked;
the section says what to run), ties only on equivalence, P(best) beside the winner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from edgebench.decision import present
from edgebench.decision.decide import recommend_rows
from edgebench.decision.targets import every_row
from edgebench.errors import EdgebenchError


@dataclass
class DeviceRecommendation:
    """What to ship on one device: the winner and why, or a note saying why there is none.
    ``alerts`` are what the answer assumes or lacks (unmeasured quality, with the command
    that measures it): shown beside the verdict, never as a footnote."""

    device_label: str
    winner: str | None = None
    reasons: list[str] = field(default_factory=list)
    note: str | None = None
    alerts: list[str] = field(default_factory=list)


#: Reasons shown per model; the rest are counted.
MAX_REASONS = 6
#: (rows of one device, its label) -> its recommendation.
Recommender = Callable[[pd.DataFrame, str], DeviceRecommendation]
#: The facts of a machine the decision reads (its id and its hardware fingerprint columns).
FACTS = ("machine_id", "cpu_model", "cpu_cores_logical", "cpu_cores_physical", "ram_total_mb",
         "os", "accelerators")


def recommendations(df: pd.DataFrame,
                    recommender: Recommender | None = None, *,
                    across_machines: bool = False) -> list[DeviceRecommendation]:
    """One recommendation per device label in ``df`` (rows as ``tables.prepare`` leaves them);
    ``recommender`` defaults to :func:`decision_recommender`.

    The recommender gets the label's own rows plus every quality row of ``df`` (quality
    numerics do not depend on the machine; the decision joins them by runtime and precision).
    """
    recommender = recommender or decision_recommender(across_machines=across_machines)
    quality = df[df["kind"] == "quality"]
    out = []
    for label, rows in df.groupby("device_label", sort=True):
        mine = pd.concat([rows[rows["kind"] != "quality"], quality])
        out.append(recommender(mine, str(label)))
    return out


def decision_recommender(*, across_machines: bool = False) -> Recommender:
    """``decision.decide.recommend_rows`` as a :data:`Recommender`: each device label ranks its
    own rows (the report's rows, ``--where`` applied), once per model, under the same
    comparison rules as `edgebench recommend`; ``across_machines`` as given to the report."""
    from edgebench.results.queries import records

    def recommender(rows: pd.DataFrame, label: str) -> DeviceRecommendation:
        recs = records(rows)
        speed = [r for r in recs if r.get("kind") != "quality"] or recs
        facts = {k: speed[0].get(k) for k in FACTS}
        target = every_row(label, f"the report's rows of {label}")
        out = DeviceRecommendation(label)
        models = sorted({r["model"] for r in speed if r.get("model")})
        winners = []
        for model in models:
            prefix = f"{model}: " if len(models) > 1 else ""
            try:
                rec = recommend_rows(recs, target, machine=facts, model=model,
                                     across_machines=across_machines)
            except EdgebenchError as e:
                out.reasons.append(f"{prefix}no recommendation: {e}")
                continue
            if rec.winner is not None:
                tag = " (guidance, not measured here)" if rec.guidance else ""
                warn = " ⚠" if rec.winner.candidate.warnings else ""
                ties = (f"; TIED with {', '.join(r.candidate.name for r in rec.ties)}"
                        if rec.ties else "")
                winners.append(f"{prefix}{rec.winner.candidate.name}{warn}{tag} "
                               f"(P(best) {rec.winner.p_best:.2f}){ties}")
            elif rec.needs_quality or rec.eliminated_by:
                out.alerts.append(f"{prefix}{present.headline(rec)}")
            if rec.winner is not None and (gap := present.quality_gap(rec)):
                out.alerts.append(f"{prefix}{gap}")
            lost = [f"{prefix}{r.candidate.name}: {r.reason}"
                    for r in (*rec.ties, *rec.runners_up) if r.reason]
            lost += [f"{prefix}{r.candidate.name}: rejected: {'; '.join(r.reasons)}"
                     for r in rec.rejected if r.candidate.name not in rec.unmeasured_quality]
            out.reasons += lost[:MAX_REASONS]
            if len(lost) > MAX_REASONS:
                out.reasons.append(f"{prefix}... and {len(lost) - MAX_REASONS} more "
                                   "(edgebench recommend --explain)")
            out.reasons += [f"{prefix}{n}" for n in rec.notes]
        out.winner = "; ".join(winners) or None
        out.note = None if winners or out.alerts else "no winner among the measured rows"
        return out

    return recommender
