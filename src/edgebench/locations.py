"""Where edgebench keeps things: the results store and the caches."""

from __future__ import annotations

import os
from pathlib import Path

STORE_ENV = "EDGEBENCH_STORE"
CACHE_ENV = "EDGEBENCH_CACHE"
DEFAULT_STORE = "edgebench-results"


def store_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``--store DIR``, else ``$EDGEBENCH_STORE``, else ``./edgebench-results``."""
    return Path(explicit or os.environ.get(STORE_ENV) or DEFAULT_STORE)


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``--cache-dir``, else ``$EDGEBENCH_CACHE``, else the user cache dir."""
    if explicit or os.environ.get(CACHE_ENV):
        return Path(explicit or os.environ[CACHE_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("edgebench"))
