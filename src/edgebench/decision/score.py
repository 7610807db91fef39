"""Score the feasible candidates, tell ties from noise, and say why each one lost.

- **Score**: the weighted sum of normalized metrics at each candidate's medians (see
  :mod:`edgebench.decision.model`), normalized by the best median of each metric.
- **Score samples**: one score per repetition, from that repetition's ``decode_tok_s`` and
  ``ttft_ms`` (rows merged from several launches pool every launch's repetitions); metrics
  measured once (memory, artifact size, energy, quality) enter at their value.
- **P(best)**: ``stats.probability_best`` over the score samples: each candidate's probability
  of having the best median score, bootstrapping its repetitions (sums to 1).
- **Ties**: the leader is the best score; a candidate is TIED with it only when
  ``stats.equivalent`` says the ratio of their median scores lies, with its whole 95 %
  interval, within +-margin (overlapping ranges are no evidence). A candidate without two
  repetition samples is never tied. The tie goes to the smallest artifact among the tied
  candidates on the Pareto front of medians (then the name), so a dominated newcomer never
  changes the winner.
- **Reasons** state only what the numbers shown prove: "score a < b of the leader", "m x vs y"
  where the candidate is worse on m, "dominated by d", "equivalent (ratio lo-hi within
  +-margin)", "the smaller artifact (x vs y MB)".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from edgebench import stats
from edgebench.decision.model import METRICS, Candidate, fmt, fmt_pair
from edgebench.decision.objective import KLD_SCALE, Weights
from edgebench.decision.result import Ranked


def label(c: Candidate, metric: str) -> str:
    """A metric's name as the user reads it: ``memory_mb`` names its figure."""
    return c.memory_column if metric == "memory_mb" else metric


def norm(metric: str, value: float, best: float) -> float:
    if metric == "kld_mean":
        return math.exp(-(value - best) / KLD_SCALE)
    if METRICS[metric][0]:
        return value / best if best > 0 else 1.0
    return best / value if value > 0 else 1.0


def dominates(a: Candidate, b: Candidate, metrics: Sequence[str]) -> bool:
    better = False
    for m in metrics:
        va, vb = a.metric(m).value, b.metric(m).value
        if not METRICS[m][0]:
            va, vb = -va, -vb
        if va < vb:
            return False
        better = better or va > vb
    return better


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def score_samples(c: Candidate, used: list[tuple[str, float]],
                  best: dict[str, float]) -> list[float]:
    """One score per repetition (metrics without samples at their value); the score at the
    medians alone when no used metric has two samples."""
    per = {m: c.metric(m).samples for m, _ in used}
    n = max((len(s) for s in per.values()), default=0)
    if n < 2:
        return [sum(x * norm(m, c.metric(m).value, best[m]) for m, x in used) if used else 1.0]
    out = []
    for i in range(n):
        total = 0.0
        for m, x in used:
            s = per[m]
            v = s[i] if len(s) == n and _finite(s[i]) else c.metric(m).value
            total += x * norm(m, v, best[m])
        out.append(total)
    return out


def score(alive: list[Candidate], w: Weights, margin: float) -> tuple[dict, list[str]]:
    """Winner, ties and runners-up of the feasible candidates ``alive`` (in key order)."""
    steps: list[str] = []
    used = []
    for m, weight in w.terms:
        lacking = [c.name for c in alive if c.metric(m) is None]
        if weight <= 0:
            continue
        if lacking:
            steps.append(f"{m} not measured for {len(lacking)} of {len(alive)} candidate(s) "
                         f"({', '.join(lacking)}): left out of the score "
                         f"(run `{METRICS[m][2]}`)")
        else:
            used.append((m, weight))
    total = sum(x for _, x in used)
    used = [(m, x / total) for m, x in used]
    metrics = [m for m, _ in used]
    best = {m: (max if METRICS[m][0] else min)(c.metric(m).value for c in alive)
            for m in metrics}
    steps.append(f"objective {w.mode}: " + (", ".join(f"{m} {x:.2f}" for m, x in used)
                                             or "no metric measured for every candidate"))
    if metrics:
        steps.append("best medians: " + ", ".join(f"{m} {fmt(best[m])}" for m in metrics))

    scores = {c.name: sum(x * norm(m, c.metric(m).value, best[m]) for m, x in used)
              if used else 1.0 for c in alive}
    samples = {c.name: score_samples(c, used, best) for c in alive}
    p_best = stats.probability_best(samples, higher_is_better=True)
    order = sorted(alive, key=lambda c: (-scores[c.name], c.key))
    dominated = {c.name: next((d for d in order if dominates(d, c, metrics)), None)
                 for c in order}
    front = [c for c in order if dominated[c.name] is None]
    lead = front[0]
    ratio = {c.name: _ratio(samples[lead.name], samples[c.name]) for c in order
             if c is not lead}
    tied = {c.name for c in order if c is not lead
            and stats.equivalent(samples[lead.name], samples[c.name], margin=margin)}
    group = [c for c in order if c is lead or c.name in tied]
    # Only front members can win a tie, so a dominated newcomer never changes the winner.
    winner = min((c for c in group if dominated[c.name] is None), key=_size_key)
    steps.append("Pareto front: " + ", ".join(c.name for c in front))
    steps.append("scores (P(best)): " + ", ".join(
        f"{c.name} {scores[c.name]:.3f} ({p_best[c.name]:.2f})" for c in order))
    if len(group) > 1:
        steps.append(f"tied (equivalent to {lead.name} within +-{margin * 100:g}%): "
                     f"{', '.join(c.name for c in group if c is not lead)}; the smaller "
                     f"artifact wins a tie: {winner.name}")
    steps.append(f"winner: {winner.name}")
    why = _Why(lead, winner, scores, ratio, margin, used, best)

    def ranked(c: Candidate, reason: str = "") -> Ranked:
        return Ranked(c, scores[c.name], p_best[c.name], dominated[c.name] is None, reason)

    ties = tuple(ranked(c, why.tied(c, dominated[c.name])) for c in group if c is not winner)
    runners = tuple(ranked(c, why.lost(c, dominated[c.name])) for c in order
                    if c not in group)
    return dict(winner=ranked(winner), ties=ties, runners_up=runners), steps


def _size_key(c: Candidate) -> tuple:
    return (math.inf if c.model_bytes is None else c.model_bytes, c.key)


def _ratio(lead: list[float], other: list[float]) -> tuple[float, float] | None:
    """The 95 % bootstrap interval of median(other) / median(lead) that ``stats.equivalent``
    judges (same seed), or None without two samples a side."""
    if len(lead) < 2 or len(other) < 2:
        return None
    return stats.bootstrap_interval(lead, other)


class _Why:
    """Reason strings; each claim is one the numbers shown prove."""

    def __init__(self, lead, winner, scores, ratio, margin, used, best):
        self.lead, self.winner, self.scores, self.ratio = lead, winner, scores, ratio
        self.margin, self.used, self.best = margin, used, best

    def _equiv(self, c: Candidate) -> str:
        lo, hi = self.ratio[c.name]
        return f"ratio {lo:.3f}-{hi:.3f} within +-{self.margin * 100:g}%"

    def _scores(self, c: Candidate, other: Candidate) -> tuple[str, str]:
        a, b = fmt_pair(round(self.scores[c.name], 12), round(self.scores[other.name], 12))
        return a, b

    def _smaller(self, c: Candidate) -> str:
        w = self.winner
        if w.model_bytes is None or c.model_bytes is None:
            return f"{w.name} wins the tie by name (artifact sizes unknown)"
        a, b = fmt_pair(w.model_bytes / 2**20, c.model_bytes / 2**20)
        if w.model_bytes == c.model_bytes:
            return f"{w.name} wins the tie by name (same artifact size, {a} MB)"
        return f"{w.name} is the smaller artifact ({a} vs {b} MB)"

    def _worst(self, c: Candidate, other: Candidate) -> str:
        """': m x vs y unit' for the metric ``c`` loses most on against ``other`` ('' if
        none)."""
        loss = {m: x * (norm(m, other.metric(m).value, self.best[m])
                        - norm(m, c.metric(m).value, self.best[m])) for m, x in self.used}
        if not loss:
            return ""
        m = max(loss, key=lambda k: (loss[k], k))
        if loss[m] <= 0:
            return ""
        a, b = fmt_pair(c.metric(m).value, other.metric(m).value)
        unit = METRICS[m][1]
        return f": {label(c, m)} {a} vs {b}" + (f" {unit}" if unit else "")

    def tied(self, c: Candidate, dom: Candidate | None) -> str:
        lead = self.lead
        if c is lead:  # the winner is another, equivalent and smaller
            a, b = self._scores(c, self.winner)
            return (f"best score {a}, equivalent to {self.winner.name}'s {b} "
                    f"({self._equiv(self.winner)}); {self._smaller(c)}")
        a, b = self._scores(c, lead)
        head = (f"equivalent to the best score, {lead.name}'s: {a} vs {b} "
                f"({self._equiv(c)})")
        if dom is not None:
            return f"{head}, but dominated by {dom.name}{self._worst(c, dom)}"
        return f"{head}; {self._smaller(c)}"

    def lost(self, c: Candidate, dom: Candidate | None) -> str:
        if dom is not None:
            return f"dominated by {dom.name}{self._worst(c, dom)}"
        lead = self.lead
        a, b = self._scores(c, lead)
        op = "<" if self.scores[c.name] < self.scores[lead.name] else "="
        iv = self.ratio.get(c.name)
        why = ("too few repetition samples to show equivalence" if iv is None
               else f"not equivalent: ratio {iv[0]:.3f}-{iv[1]:.3f}, margin "
                    f"+-{self.margin * 100:g}%")
        return f"score {a} {op} {b} of {lead.name}, the best ({why}){self._worst(c, lead)}"
