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
    """One recommendation per device label in ``df`` (rows as ``tables.prepare`` leaves them)."""
    recommender = recommender or default_recommender()
    out = []
    for label, rows in df.groupby("device_label", sort=True):
        if recommender is None:
            out.append(DeviceRecommendation(str(label), note=_missing()))
            continue
        out.append(recommender(rows, str(label)))
    return out


def default_recommender() -> Recommender | None:
    """The recommender used without a store (pure reports): none."""
    return None


def store_recommender(store) -> Recommender | None:
    """``edgebench.api.recommend`` over ``store`` as a :data:`Recommender` (None if absent).

    Each device's machine is the ``this`` target (its rows by machine_id), once per model.
    """
    from edgebench import api

    if not hasattr(api, "recommend"):
        return None

    from edgebench.results import queries

    memo: dict[tuple, object] = {}  # labels on one machine share its ``this`` ranking
    latest: dict[str, list] = {}

    def recommender(rows: pd.DataFrame, label: str) -> DeviceRecommendation:
        from edgebench.errors import EdgebenchError

        first = rows.iloc[0]
        facts = {k: (first[k] if isinstance(first[k], str) else None)
                 for k in ("machine_id", "cpu_model", "accelerators", "os")}
        out = DeviceRecommendation(label)
        models = sorted(rows["model"].dropna().unique())
        winners = []
        for model in models:
            prefix = f"{model}: " if len(models) > 1 else ""
            try:
                key = (facts["machine_id"], model)
                if key not in memo:
                    if "rows" not in latest:  # read the store once per report
                        latest["rows"] = queries.latest_rows(store)
                    memo[key] = api.recommend(store, "this", machine=facts, model=model,
                                              rows=latest["rows"])
                rec = memo[key]
            except EdgebenchError as e:
                out.reasons.append(f"{prefix}no recommendation: {e}")
                continue
            if rec.winner is not None:
                tag = " (guidance, not measured here)" if rec.guidance else ""
                winners.append(f"{prefix}{rec.winner.candidate.name}{tag}")
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
