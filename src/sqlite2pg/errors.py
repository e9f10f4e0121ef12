"""Errors a user sees: one line naming the problem, plus a hint, plus a documented exit status.

Exit statuses (docs/exit-codes.md): 0 ok, 1 finished with rejected rows or differences,
2 bad usage/config/input, 3 the run failed, 75 another run holds the lock.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ISSUES = 1
EXIT_INPUT = 2
EXIT_FAILED = 3
EXIT_LOCKED = 75


class Sqlite2pgError(Exception):
    """Base error: ``message`` names the problem, ``hint`` says what to do about it."""

    exit_code = EXIT_FAILED
    stage = "run"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class InputError(Sqlite2pgError):
    """Bad usage, configuration or input: nothing was written."""

    exit_code = EXIT_INPUT
    stage = "input"


class ConfigError(InputError):
    stage = "config"


class SourceError(InputError):
    stage = "source"


class TargetError(InputError):
    stage = "target"


class TargetUnavailable(TargetError):
    """The server could not be reached just now (refused, failing over, too many connections):
    retried by the retry policy; exit 2 when the retries run out."""


class PlanError(InputError):
    stage = "plan"


class DriftError(PlanError):
    """The source schema changed in a way a sync cannot apply by itself."""

    stage = "drift"


class MassDeleteError(PlanError):
    stage = "guard"


class RunFailed(Sqlite2pgError):
    """The run started but could not finish; the target was left as it was before the run."""

    exit_code = EXIT_FAILED
    stage = "run"


class LockHeldError(Sqlite2pgError):
    exit_code = EXIT_LOCKED
    stage = "lock"
