"""What a planned run feeds its runtime: the prompts each repetition runs, the depth prefix,
the imposed KV-cache type, and the tokens one generation handles (for energy per token).

Each is empty or the plain value for a run without the axis, so the runner is called exactly
as before the axis existed.
"""

from __future__ import annotations

from edgebench.errors import ConfigError
from edgebench.suites.expand import PlannedRun


def kv_cache_arg(run: PlannedRun) -> dict:
    """The keyword that imposes the run's KV-cache type on the runner's load: empty when the
    run keeps the runtime's default, so the call is exactly the one of before."""
    return {"kv_cache": run.kv_cache} if run.kv_cache else {}


def context_fill(run: PlannedRun) -> dict:
    """The keyword that has the runner fill the KV cache with ``run.prefix_ids`` (untimed)
    before the timed prompt: empty at depth 0, so the call is exactly the one of before.

    Raises:
        ConfigError: the run carries a prefix of another length than its depth.
    """
    if len(run.prefix_ids) != run.depth:
        raise ConfigError(f"run has {len(run.prefix_ids)} depth IDs, expected {run.depth}")
    return {"prefix_ids": list(run.prefix_ids)} if run.depth else {}


def run_prompts(run: PlannedRun) -> list[list[int]]:
    """The prompts every warm-up and repetition runs, in order: the run's one prompt of
    ``prompt_tokens`` IDs, or each prompt of its prompt file (``prompt_set_ids``, file order).

    Raises:
        ConfigError: the run's IDs do not match its planned lengths.
    """
    if not run.prompt_set_ids:
        if not run.prompt_ids or len(run.prompt_ids) != run.prompt_tokens:
            raise ConfigError(f"run has {len(run.prompt_ids)} prompt IDs, "
                              f"expected {run.prompt_tokens}")
        return [list(run.prompt_ids)]
    lengths = [len(p) for p in run.prompt_set_ids]
    if not all(lengths):
        raise ConfigError(f"prompt {lengths.index(0) + 1} of {run.prompt_file} has no IDs")
    if round(sum(lengths) / len(lengths)) != run.prompt_tokens:
        raise ConfigError(f"run has prompts of {sum(lengths) / len(lengths):g} IDs on average, "
                          f"expected {run.prompt_tokens}")
    return [list(p) for p in run.prompt_set_ids]


def prefill_ns(tl) -> float:
    """A timeline's prefill (t0 to its first token), in ns; infinite without tokens."""
    return tl.token_ns[0] - tl.t0_ns if tl.token_ns else float("inf")


def tokens_per_generate(run: PlannedRun) -> float:
    """Prompt + new tokens of one timed ``generate``, on average: energy is read around each
    (a prompt file's prompts each have their own length, so ``j_per_token`` is the joules of
    all samples over all their tokens)."""
    if not run.prompt_set_ids:
        return run.prompt_tokens + run.new_tokens
    return sum(len(p) for p in run.prompt_set_ids) / len(run.prompt_set_ids) + run.new_tokens
