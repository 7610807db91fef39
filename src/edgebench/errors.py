"""Typed errors. Only ``cli.py`` turns them into messages and exit codes."""

from __future__ import annotations


class EdgebenchError(Exception):
    """Base of every error edgebench raises on purpose."""

    exit_code = 1


class ConfigError(EdgebenchError):
    """Bad user input: a suite, a flag, a name. Exit code 2."""

    exit_code = 2


class ModelError(ConfigError):
    """A model that cannot be resolved or is not a valid file of its format."""


class SchemaMismatch(ConfigError):
    """A persisted file written with another schema version."""


class RunnerUnavailable(EdgebenchError):
    """A runtime that is not installed (or cannot run here); carries the install hint."""

    def __init__(self, message: str, *, extra: str | None = None) -> None:
        hint = f" (install it with: pip install 'edgebench[{extra}]')" if extra else ""
        super().__init__(message + hint)
        self.extra = extra


class DeviceUnavailable(RunnerUnavailable):
    """The runtime is installed but does not have the requested device."""


class RunFailed(EdgebenchError):
    """A run that started and then failed."""


class RegressionFound(EdgebenchError):
    """A gate found a significant regression."""


class NoCandidate(EdgebenchError):
    """No measured candidate meets the limits given to ``edgebench recommend``. Exit code 1."""


class StoreError(ConfigError):
    """The results store cannot be written or read (named in the message). Exit code 2.

    When rows were measured and the write still failed, ``rescue`` is the file they were saved
    to instead (``edgebench store recover`` brings them in)."""

    def __init__(self, message: str, *, rescue: str | None = None) -> None:
        super().__init__(message)
        self.rescue = rescue


class Interrupted(KeyboardInterrupt):
    """A stop asked by a signal other than Ctrl-C (SIGTERM, SIGHUP), raised by the CLI's
    handler: every path that keeps finished rows on Ctrl-C keeps them here too, and the exit
    code is 128 + ``signum``. Not an EdgebenchError: nothing went wrong."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def interrupt_signal(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: its ``signum`` for :class:`Interrupted`, else
    SIGINT (Ctrl-C)."""
    import signal

    return int(getattr(exc, "signum", signal.SIGINT))
