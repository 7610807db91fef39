"""Energy meters behind one interface, the accounting of a run's energy, and the recorder
that ``measure.py`` drives (docs/energy.md).

One meter per module (``rapl``, ``nvml``, ``battery``, ``apple``, ``none``); ``select`` picks
the one for a run's device; ``accounting`` is pure arithmetic with table tests; ``recorder``
reads the chosen meter around the timed repetitions. Importing this package imports no
vendor library: NVML and Apple's reader are imported when a meter is asked about.
"""
