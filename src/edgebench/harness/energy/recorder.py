"""Read a run's meter around its timed repetitions and turn the readings into energy columns.

``measure.py`` drives one :class:`EnergyRecorder` per run: :meth:`~EnergyRecorder.idle` with
the model loaded (a quiet window; no meter: nothing measured, no delay),
:meth:`~EnergyRecorder.begin` before the first timed repetition, :meth:`~EnergyRecorder.before`
/ :meth:`~EnergyRecorder.after` around each ``generate`` (off the clock: the reads happen
before ``t0`` and after the last token), :meth:`~EnergyRecorder.end`, then
:meth:`~EnergyRecorder.columns`. A meter that fails at any step leaves the row's energy null
with the reason in ``energy_note``; it never fails the run.

A background sampler runs during the repetitions only when the reading at the first token is
needed for the phase split and the meter is fine enough to give one (its interval, floored at
:data:`SAMPLE_FLOOR_S`, shorter than the warm-up's prefill and decode), or when the meter
integrates power and must be read every interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from edgebench.harness import tuning
from edgebench.harness.energy import accounting, select
from edgebench.harness.energy.base import Reading

#: The sampler never wakes more often than this during a timed repetition: a thread reading
#: every millisecond beside the runtime would cost it more than the split is worth (the memory
#: sampler's measured cost, docs/decisions.md).
SAMPLE_FLOOR_S = 0.05


class _Sampler(threading.Thread):
    def __init__(self, read: Callable[[], Reading], period_s: float) -> None:
        super().__init__(name="edgebench-energy", daemon=True)
        self._read, self._period = read, period_s
        self._halt = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        while not self._halt.wait(self._period):
            try:
                self._read()
            except Exception as e:  # noqa: BLE001 - reported by the recorder
                self.error = e
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


class EnergyRecorder:
    """One run's energy: the chosen meter, its idle power, and its readings."""

    def __init__(self, choice: select.Choice, sleep: Callable[[float], None] = time.sleep):
        self.choice = choice
        self.meter = choice.meter
        self._sleep = sleep
        self._lock = threading.Lock()
        self._samples: list[Reading] = []
        self._before: list[Reading] = []
        self._after: list[Reading] = []
        self._sampler: _Sampler | None = None
        self._started = False
        self.failed: str | None = None
        self.idle_w: float | None = None
        self.idle_window_s: float | None = None
        self.resolution_s: float | None = None  # set when sampling for the phase split

    @classmethod
    def for_device(cls, device: str) -> EnergyRecorder:
        """The recorder of the best meter for ``device`` (see :mod:`.select`)."""
        try:
            return cls(select.choose(device))
        except Exception as e:  # noqa: BLE001 - choosing must never fail a run
            return cls(select.Choice(None, f"meter selection failed: {type(e).__name__}: {e}"))

    @property
    def active(self) -> bool:
        return self.meter is not None and self.failed is None

    def _fail(self, e: BaseException) -> None:
        if self.failed is None:
            self.failed = f"{self.meter.name} failed: {e}"

    def _read(self) -> Reading:
        with self._lock:
            r = self.meter.read()
            self._samples.append(r)
            return r

    def _ensure_started(self) -> None:
        if not self._started:
            self.meter.start()
            self._started = True

    def idle(self) -> None:
        """Measure idle power over a quiet window (``EDGEBENCH_IDLE_WINDOW_S``, lengthened to
        hold :data:`~.accounting.MIN_INTERVALS` meter updates). Call with the model loaded,
        before the warm-up; without a meter this does nothing at once."""
        if not self.active:
            return
        try:
            self._ensure_started()
            window = max(tuning.idle_window_s(),
                         accounting.MIN_INTERVALS * (self.meter.interval_s or 0.0))
            sampler = (_Sampler(self._read, self.meter.interval_s)
                       if self.meter.needs_sampling and self.meter.interval_s else None)
            r0 = self._read()
            if sampler:
                sampler.start()
            self._sleep(window)
            if sampler:
                sampler.stop()
                if sampler.error:
                    raise sampler.error
            r1 = self._read()
            span = (r1.t - r0.t) / 1e9
            self.idle_w = accounting.idle_power(r1.joules - r0.joules, span)
            self.idle_window_s = span
            self._samples.clear()
        except Exception as e:  # noqa: BLE001 - a meter must never fail the run
            self._fail(e)

    def begin(self, warmup=None) -> None:
        """Before the first timed repetition: start the sampler where it is needed.
        ``warmup`` (the last warm-up's TokenTimeline) tells how long prefill and decode last."""
        if not self.active:
            return
        try:
            self._ensure_started()
            period = None
            interval = self.meter.interval_s
            if self.meter.needs_sampling and interval:
                period = interval
            if warmup is not None and warmup.token_ns and interval is not None:
                res = max(interval, SAMPLE_FLOOR_S)
                prefill_s = (warmup.token_ns[0] - warmup.t0_ns) / 1e9
                decode_s = (warmup.token_ns[-1] - warmup.token_ns[0]) / 1e9
                if res < prefill_s and res < decode_s:
                    period = min(period or res, res)
                    self.resolution_s = max(res, period)
            if period:
                self._sampler = _Sampler(self._read, period)
                self._sampler.start()
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def before(self) -> None:
        """Just before a repetition's ``generate``."""
        if self.active:
            try:
                self._before.append(self._read())
            except Exception as e:  # noqa: BLE001
                self._fail(e)

    def after(self) -> None:
        """Just after a repetition's ``generate`` returned."""
        if self.active:
            try:
                self._after.append(self._read())
            except Exception as e:  # noqa: BLE001
                self._fail(e)

    def end(self) -> None:
        """After the last timed repetition: stop the sampler."""
        if self._sampler is not None:
            self._sampler.stop()
            if self._sampler.error is not None and self.meter is not None:
                self._fail(self._sampler.error)
            self._sampler = None

    def columns(self, timelines: Sequence, tokens_per_rep: int) -> dict:
        """The row's energy columns (``energy_method`` included) from what was read."""
        if self.meter is None:
            return accounting.empty(note=self.choice.note)
        if self.failed is not None:
            return accounting.empty(note=self.failed)
        if not self._before or len(self._before) != len(self._after):
            return accounting.empty(note=f"{self.meter.name}: no complete reading of the run")
        first, last = self._before[0], self._after[-1]
        phases: list = []
        if self.resolution_s is not None and all(t.token_ns for t in timelines):
            phases = accounting.phases_of(sorted(self._samples, key=lambda r: r.t),
                                          list(zip(self._before, self._after)),
                                          [t.token_ns[0] for t in timelines])
        return accounting.account(
            method=self.meter.name, gross_j=last.joules - first.joules,
            span_s=(last.t - first.t) / 1e9, repetitions=len(self._before),
            tokens_per_rep=tokens_per_rep, idle_w=self.idle_w, idle_window_s=self.idle_window_s,
            interval_s=self.meter.interval_s, domains=self.meter.domains, phases=phases,
            resolution_s=self.resolution_s)

    def close(self) -> None:
        """Stop the sampler and release the meter (idempotent)."""
        self.end()
        if self.meter is not None and self._started:
            self._started = False
            try:
                self.meter.close()
            except Exception:  # noqa: BLE001
                pass
