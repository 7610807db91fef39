"""edgebench: measure on-device LLM runtimes under one definition and decide what to ship."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgebench")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
