"""The contract every runtime implements. The harness never asks which runtime it drives."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class RunnerInfo:
    """What :meth:`Runner.probe` found: the runtime's version and the devices it offers."""

    framework: str
    version: str
    devices: tuple[str, ...]
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadInfo:
    """What a load did: how long it took and how the runtime named the device it used."""

    load_s: float
    device: str
    options: dict[str, Any] = field(default_factory=dict)
    #: whether the runtime really took the requested thread count (None: not known)
    threads_applied: bool | None = None
    #: the row's ``measurement``: ``"simulated"`` when the device is an emulator (QNN's HTP
    #: simulator on x86-64): its timings are kept in the store and never ranked or gated
    measurement: str = "measured"


@dataclass(frozen=True)
class TokenTimeline:
    """Raw timestamps of one generation (``perf_counter_ns``).

    ``t0_ns`` is taken just before the call that starts generation, the prompt token IDs
    already prepared; ``token_ns[i]`` when new token ``i`` became available in the runtime's
    streaming callback or iterator. The harness computes every metric from these.
    """

    t0_ns: int
    token_ns: tuple[int, ...]
    token_ids: tuple[int, ...]
    prompt_tokens: int
    #: the runtime's own timing of this repetition where it reports one (keys ``ttft_ms``,
    #: ``decode_tok_s``), to cross-check edgebench's stamps; never used as the measurement
    reported: dict[str, float] | None = None


@runtime_checkable
class Runner(Protocol):
    """One runtime. Implementations live in ``harness/runners/<runtime>.py``, one per file.

    A runner imports its runtime package lazily, inside its methods, so that importing
    edgebench never imports a runtime.
    """

    def probe(self) -> RunnerInfo:
        """Report version and devices.

        Raises:
            RunnerUnavailable: the runtime package is missing; the message names the extra.
        """
        ...

    def load(
        self, artifact: Path, device: str, threads: int, options: dict[str, Any],
        context_tokens: int, logits_only: bool = False, kv_cache: str | None = None,
    ) -> LoadInfo:
        """Load ``artifact`` on ``device`` with ``threads`` CPU threads.

        ``options`` are the suite's runtime-specific settings, passed through as given;
        ``context_tokens`` is the longest sequence (depth + prompt + new tokens) the run will
        need. ``kv_cache``: the KV cache's element type to impose (one of the runner's
        ``FrameworkSpec.kv_cache_types``; the harness passes it only when set), recorded with
        everything it implies (e.g. flash attention) in ``LoadInfo.options``; a type the
        runtime lacks raises ``ConfigError`` listing the ones it has.
        ``logits_only``: the caller will only call :meth:`logits` (quality runs), so load in
        the form that serves logits (e.g. llama.cpp with ``logits_all``), once, here, before
        any clock, and hold one copy of the model.

        Raises:
            DeviceUnavailable: the runtime has no such device (the message lists those it has).
        """
        ...

    def tokenize(self, text: str) -> list[int]:
        """Token IDs of ``text`` with the model's own tokenizer, BOS included."""
        ...

    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 prefix_ids: Sequence[int] = ()) -> TokenTimeline:
        """Greedy generation of exactly ``max_new_tokens`` tokens from ``prompt_ids``.

        The prompt is processed in full on every call (no prefix reuse between calls).
        ``prefix_ids`` (the ``depth`` axis): evaluated into an emptied KV cache first, untimed
        (before ``t0``), then the timed prompt is appended to it, so the generation equals
        that of the one prompt ``prefix_ids + prompt_ids``; ``()`` is exactly the call without
        it. ``TokenTimeline.prompt_tokens`` stays ``len(prompt_ids)``. A runtime that cannot
        fill a cache this way raises ``RunFailed`` saying so (its ``FrameworkSpec.no_depth``
        makes the planner skip such cells first).
        """
        ...

    def logits(self, token_ids: list[int]) -> Any:
        """Full-vocabulary logits, ``float32 [len(token_ids), vocab]``, of one forward pass over
        ``token_ids`` from an empty context (no state kept from an earlier call).

        A runner describes how it gets them in its ``LOGITS_METHOD`` string (recorded in quality
        rows); one that cannot give them raises ``RunFailed`` saying so, never an estimate.
        """
        ...

    def close(self) -> None:
        """Release the model."""
        ...


@runtime_checkable
class AcceleratorMemory(Protocol):
    """Optional runner hook: a runner whose runtime reports its accelerator's memory defines
    this method too; the harness calls it after the repetitions (model still loaded) and
    records ``accel_peak_mb`` and ``accel_memory_method``. Runners without it leave both null.
    """

    def accelerator_peak_mb(self) -> tuple[float, str] | None:
        """The accelerator memory peak of this process since the runtime started (or since
        :meth:`Runner.load`, if the runner resets it there), in MB (2**20 bytes), and how it was
        read (e.g. ``"mlx.get_peak_memory"``); None when this load used no accelerator."""
        ...


@runtime_checkable
class ScoredLogits(Protocol):
    """Optional runner hook: a runner that can stream the logits of a chunk's scored positions
    without holding every position's (a 4096-token chunk of a 262k-token vocabulary is 4.3 GB
    of float32) defines this method; quality runs call it instead of :meth:`Runner.logits`.
    Runners without it are scored from :meth:`Runner.logits`, sliced."""

    def scored_logits(self, token_ids: list[int], first: int, last: int,
                      block: int) -> Iterator[Any]:
        """One forward pass over ``token_ids`` from an empty context (as :meth:`Runner.logits`),
        yielding the full-vocabulary logits of positions ``[first, last)`` in order, as float32
        ``[rows, vocab]`` arrays of at most ``block`` rows each; every array is the caller's
        (a copy: valid after the next step). The forward pass advances as the caller iterates."""
        ...


@runtime_checkable
class KvCacheSize(Protocol):
    """Optional runner hook: a runner whose runtime reports the size of the KV cache it
    allocated defines this method; the harness calls it after the repetitions and records
    ``kv_cache_mb`` and ``kv_cache_method``. Runners without it leave both null (a KV cache of
    tens of MB is inside the noise of RSS: never estimated from it)."""

    def kv_cache_mb(self) -> tuple[float, str] | None:
        """The KV cache's size as the runtime reports it for the loaded context, in MB
        (2**20 bytes), and how it was read (e.g. ``"llama.cpp log: KV buffer size"``); None
        when not known."""
        ...


@runtime_checkable
class GraphPlacement(Protocol):
    """Optional runner hook: a runner whose runtime splits the graph between an accelerator's
    execution provider and the CPU defines this method; the harness calls it after the
    repetitions and records ``accel_nodes`` and ``cpu_nodes``. Runners without it leave both
    null."""

    def graph_placement(self) -> tuple[int, int] | None:
        """(nodes the accelerator's provider took, nodes that fell back to the CPU) in the
        loaded graph as the runtime partitioned it; None when not known."""
        ...


@runtime_checkable
class RemoteProfile(Protocol):
    """Optional runner hook: a runner whose runtime is a remote service that profiles the
    artifact on a device edgebench never sees (Qualcomm AI Hub) defines this method; the
    harness calls it after :meth:`Runner.probe` instead of load/generate, and the row takes the
    columns it returns (``measurement = "estimated"``: the service's figures, never
    edgebench's token timeline)."""

    def profile(self, run: Any) -> dict[str, Any]:
        """Submit ``run`` (a ``PlannedRun``), wait, and return the row's columns (status,
        message, metrics, device, job ids ...).

        Raises:
            RunnerUnavailable: no credentials, or the service cannot be reached.
            DeviceUnavailable: the service has no such device (the message lists its own).
        """
        ...
