"""The report's recommendation section: one verdict per device, from the decision module.

The decision module (``edgebench.decision``, ``edgebench.api.recommend``) is optional here: when
this edgebench has none, each device's entry says so instead of inventing a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class DeviceRecommendation:
    """What to ship on one device: the winner and why, or a note saying why there is none."""

    device_label: str
    winner: str | None = None
    reasons: list[str] = field(default_factory=list)
    note: str | None = None


#: Reasons shown per model; the rest are counted.
MAX_REASONS = 6
#: (rows of one device, its label) -> its recommendation.
Recommender = Callable[[pd.DataFrame, str], DeviceRecommendation]


def recommendations(df: pd.DataFrame,
                    recommender: Recommender | None = None) -> list[DeviceRecommendation]:
    """One recommendation per device label in ``df`` (rows as ``tables.prepare`` leaves them).

    The recommender gets the label's own rows plus every quality row of ``df`` (quality
    numerics do not depend on the machine; the decision joins them by runtime and precision).
    """
    recommender = recommender or default_recommender()
    quality = df[df["kind"] == "quality"]
    out = []
    for label, rows in df.groupby("device_label", sort=True):
        if recommender is None:
            out.append(DeviceRecommendation(str(label), note=_missing()))
            continue
        mine = pd.concat([rows[rows["kind"] != "quality"], quality])
        out.append(recommender(mine, str(label)))
    return out


def default_recommender() -> Recommender | None:
    """The recommender used without a store (pure reports): none."""
    return None


#: The facts of a machine the decision reads (its id and its hardware fingerprint columns).
FACTS = ("machine_id", "cpu_model", "cpu_cores_logical", "cpu_cores_physical", "ram_total_mb",
         "os", "accelerators")


def store_recommender(store, *, across_machines: bool = False) -> Recommender | None:
    """``edgebench.api.recommend`` as a :data:`Recommender` (None if absent): each device label
    ranks its own rows (the report's rows, ``--where`` applied), once per model, under the same
    comparison rules as `edgebench recommend`; ``across_machines`` as given to the report."""
    from edgebench import api

    if not hasattr(api, "recommend"):
        return None

    from edgebench.decision.targets import every_row
    from edgebench.results.queries import records

    def recommender(rows: pd.DataFrame, label: str) -> DeviceRecommendation:
        from edgebench.errors import EdgebenchError

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
                rec = api.recommend(store, target, machine=facts, model=model, rows=recs,
                                    across_machines=across_machines)
            except EdgebenchError as e:
                out.reasons.append(f"{prefix}no recommendation: {e}")
                continue
            if rec.winner is not None:
                tag = " (guidance, not measured here)" if rec.guidance else ""
                warn = " ⚠" if rec.winner.candidate.warnings else ""
                winners.append(f"{prefix}{rec.winner.candidate.name}{warn}{tag}")
            elif rec.eliminated_by:
                out.reasons.append(f"{prefix}no candidate meets {rec.eliminated_by}")
            lost = [f"{prefix}{r.candidate.name}: {r.reason}"
                    for r in (*rec.ties, *rec.runners_up) if r.reason]
            out.reasons += lost[:MAX_REASONS]
            if len(lost) > MAX_REASONS:
                out.reasons.append(f"{prefix}... and {len(lost) - MAX_REASONS} more "
                                   "(edgebench recommend --explain)")
            out.reasons += [f"{prefix}{n}" for n in rec.notes]
        out.winner = "; ".join(winners) or None
        out.note = None if winners else "no winner among the measured rows"
        return out

    return recommender


def _missing() -> str:
    from edgebench import api

    if hasattr(api, "recommend"):
        return ("no recommendation: edgebench.api.recommend is not yet wired into reports "
                "(edgebench.reports.recommend.default_recommender)")
    return "no recommendation: this edgebench has no decision module (edgebench.api.recommend)"
