"""Which faults are worth another attempt, and the policy for attempting again.

A transient fault is one the same operation may survive a little later: a dropped or refused
connection, a server restarting, a serialization failure or deadlock, too many connections,
an SQLite file locked by another writer. Wrong credentials, a missing database, bad
configuration and bugs are permanent: retrying them only delays the error message.

Retry a whole unit of work that starts from a clean state (connect, open the transaction,
do the work, commit), never a single statement inside a broken transaction::

    for attempt in retrying(RetrySettings()):
        with attempt:
            copy_table(url, table)
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import tenacity

from sqlite2pg.errors import InputError, TargetUnavailable

__all__ = ["RetrySettings", "is_transient", "retrying"]

log = logging.getLogger("sqlite2pg.retry")

_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down, recovering)
    }
)

# psycopg reports failures to connect without an SQLSTATE: these messages mean the server
# answered and refused for a reason that will not change by itself.
_PERMANENT_CONNECT_MESSAGES = (
    "authentication failed",  # password / ident / peer / ldap ... (28P01, 28000)
    "no password supplied",
    "password is required",
    "no pg_hba.conf entry",
    "does not exist",  # database (3D000) or role (28000)
    "is not permitted to log in",
    "permission denied",
    "invalid connection option",
    "invalid uri",
    "invalid sslmode",
    "invalid integer value",
    "certificate",  # SSL certificate verification problems
)

_SQLITE_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked")
_SQLITE_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (+ extended codes)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a fault worth retrying (see the module docstring).

    PostgreSQL: SQLSTATE class 08 (connection exception), 40001, 40P01, 53300, 57P01-57P03, and
    failures to connect or lost connections without an SQLSTATE, unless the message shows an
    authentication failure, a missing database or role, or a bad connection option. SQLite:
    "database is locked/busy". Also ``ConnectionError`` and ``TimeoutError``. Our own
    :class:`sqlite2pg.errors.InputError` (configuration, usage, input) never is; other errors
    are judged by the exception they were raised ``from``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TargetUnavailable):
            return True
        if isinstance(current, InputError):
            return False
        verdict = _classify(current)
        if verdict is not None:
            return verdict
        current = current.__cause__
    return False


def _classify(exc: BaseException) -> bool | None:
    """True/False when ``exc`` itself decides, None to look at its cause."""
    if isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate
        if sqlstate:
            return sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES
        if isinstance(exc, psycopg.OperationalError):
            message = str(exc).lower()
            return not any(fragment in message for fragment in _PERMANENT_CONNECT_MESSAGES)
        return False
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _SQLITE_BUSY_CODES:
            return True
        message = str(exc).lower()
        return any(fragment in message for fragment in _SQLITE_BUSY_MESSAGES)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return None


@dataclass(frozen=True)
class RetrySettings:
    """How often and how patiently to retry.

    ``attempts`` counts the first try. The wait before retry *n* (1-based) is
    ``initial_wait * 2**(n-1)`` capped at ``max_wait``; with ``jitter`` a random 50-100 % of it,
    so runs that failed together do not all come back at the same instant.
    """

    attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be at least 1, got {self.attempts}")
        if self.initial_wait < 0 or self.max_wait < 0:
            raise ValueError("retry waits cannot be negative")
        if self.max_wait < self.initial_wait:
            raise ValueError(
                f"retry max_wait ({self.max_wait:g}s) is shorter than initial_wait "
                f"({self.initial_wait:g}s)"
            )

    def wait(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 = the second attempt)."""
        base: float = min(self.max_wait, self.initial_wait * 2.0 ** (retry_number - 1))
        return base * random.uniform(0.5, 1.0) if self.jitter else base


def retrying(
    settings: RetrySettings,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    *,
    sleep: Callable[[float], None] | None = None,
) -> tenacity.Retrying:
    """A :class:`tenacity.Retrying` that retries transient faults per ``settings``.

    Before each wait it logs a warning and calls ``on_retry(attempt, exc, wait_seconds)`` with
    the number of the attempt that failed. Permanent faults, and the last transient one, are
    re-raised as they are (no ``RetryError`` wrapper). ``sleep`` replaces ``time.sleep``.
    Use it as ``retrying(s)(fn, *args)`` or ``for attempt in retrying(s): with attempt: ...``.
    """

    def wait(state: tenacity.RetryCallState) -> float:
        return settings.wait(state.attempt_number)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:  # pragma: no cover - we only retry on exceptions
            return
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "attempt %d/%d failed with a transient error (%s: %s); retrying in %.1fs",
            state.attempt_number,
            settings.attempts,
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            delay,
        )
        if on_retry is not None:
            on_retry(state.attempt_number, exc, delay)

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(settings.attempts),
        wait=wait,
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
        sleep=tenacity.nap.sleep if sleep is None else sleep,
    )
