"""Transient-fault classification on real faults, and the retry policy."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sqlite2pg.errors import ConfigError, RunFailed
from sqlite2pg.retry import RetrySettings, is_transient, retrying


@pytest.fixture
def pg_server(pg_admin: str) -> str:
    """The suite's server (SQLITE2PG_TEST_PG_URL, else the embedded one): see conftest."""
    return pg_admin


def _with(url: str, **changes: Any) -> str:
    params = conninfo_to_dict(url)
    params.update(changes)
    return make_conninfo("", **params)


def _raised(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except BaseException as exc:
        return exc
    pytest.fail(f"{fn} did not raise")


# --------------------------------------------------------------------------- real PostgreSQL


def test_terminated_backend_is_transient(pg_server: str) -> None:
    with (
        psycopg.connect(pg_server, autocommit=True) as victim,
        psycopg.connect(pg_server, autocommit=True) as admin,
    ):
        admin.execute("SELECT pg_terminate_backend(%s, 30000)", (victim.info.backend_pid,))
        exc = _raised(victim.execute, "SELECT 1")
    assert isinstance(exc, psycopg.OperationalError)
    assert is_transient(exc)


def test_missing_database_is_not_transient(pg_server: str) -> None:
    exc = _raised(psycopg.connect, _with(pg_server, dbname="sqlite2pg_no_such_database"))
    assert isinstance(exc, psycopg.OperationalError)
    assert "does not exist" in str(exc)
    assert not is_transient(exc)


def test_unknown_role_is_not_transient(pg_server: str) -> None:
    exc = _raised(psycopg.connect, _with(pg_server, user="sqlite2pg_no_such_role"))
    assert isinstance(exc, psycopg.OperationalError)
    assert not is_transient(exc)


def test_refused_connection_is_transient() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exc = _raised(psycopg.connect, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    assert isinstance(exc, psycopg.OperationalError)
    assert is_transient(exc)


def test_serialization_failure_is_transient(pg_server: str) -> None:
    table = "retry_ser_" + os.urandom(4).hex()
    with psycopg.connect(pg_server, autocommit=True) as setup:
        setup.execute(f"CREATE TABLE {table} (v int)")
    try:
        with psycopg.connect(pg_server) as a, psycopg.connect(pg_server) as b:
            for conn in (a, b):
                conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                conn.execute(f"SELECT count(*) FROM {table}")
            a.execute(f"INSERT INTO {table} VALUES (1)")
            b.execute(f"INSERT INTO {table} VALUES (2)")
            a.commit()
            exc = _raised(b.commit)
        assert isinstance(exc, psycopg.errors.SerializationFailure)
        assert is_transient(exc)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as setup:
            setup.execute(f"DROP TABLE {table}")


def _waiting(conn: psycopg.Connection[Any], pid: int) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)
    ).fetchone()
    return bool(row and row[0])


def test_deadlock_is_transient(pg_server: str) -> None:
    table = "retry_dl_" + os.urandom(4).hex()
    with psycopg.connect(pg_server, autocommit=True) as setup:
        setup.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
        setup.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    errors: list[BaseException] = []
    try:
        with psycopg.connect(pg_server) as a, psycopg.connect(pg_server) as b:
            a.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
            b.execute(f"UPDATE {table} SET v = 1 WHERE id = 2")

            def cross(conn: psycopg.Connection[Any], row: int) -> None:
                try:
                    conn.execute(f"UPDATE {table} SET v = 2 WHERE id = %s", (row,))
                except psycopg.Error as exc:
                    errors.append(exc)
                conn.rollback()

            waiter = threading.Thread(target=cross, args=(a, 2))
            waiter.start()
            # once a waits for b's row, b asks for a's: the server breaks the cycle
            while not _waiting(b, a.info.backend_pid):
                time.sleep(0.01)
            cross(b, 1)
            waiter.join()
    finally:
        with psycopg.connect(pg_server, autocommit=True) as setup:
            setup.execute(f"DROP TABLE {table}")
    (exc,) = errors
    assert isinstance(exc, psycopg.errors.DeadlockDetected)
    assert is_transient(exc)


# --------------------------------------------------------------------------- real SQLite


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """An SQLite file whose first connection holds BEGIN EXCLUSIVE."""
    path = tmp_path / "busy.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield path, holder
    finally:
        holder.close()


def test_locked_sqlite_file_is_transient(locked_sqlite: tuple[Path, sqlite3.Connection]) -> None:
    path, _ = locked_sqlite
    reader = sqlite3.connect(path, timeout=0)
    try:
        exc = _raised(reader.execute, "SELECT * FROM t")
    finally:
        reader.close()
    assert isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    assert is_transient(exc)


def test_other_sqlite_errors_are_not_transient(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite")
    try:
        exc = _raised(conn.execute, "SELECT * FROM missing_table")
    finally:
        conn.close()
    assert isinstance(exc, sqlite3.OperationalError)
    assert not is_transient(exc)


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("53300", True),  # too many connections
        ("57P03", True),  # cannot connect now
        ("57P02", True),  # crash shutdown
        ("08006", True),  # connection failure
        ("40P01", True),
        ("28P01", False),  # invalid password
        ("28000", False),  # invalid authorization
        ("3D000", False),  # missing database
        ("42P01", False),  # undefined table
        ("23505", False),  # unique violation
    ],
)
def test_sqlstates(sqlstate: str, transient: bool) -> None:
    exc = psycopg.errors.lookup(sqlstate)("server said no")
    assert exc.sqlstate == sqlstate
    assert is_transient(exc) is transient


@pytest.mark.parametrize(
    "message",
    [
        'connection failed: FATAL:  password authentication failed for user "app"',
        "connection failed: fe_sendauth: no password supplied",
        'connection failed: FATAL:  no pg_hba.conf entry for host "10.0.0.1"',
    ],
)
def test_connect_failures_without_sqlstate_that_are_permanent(message: str) -> None:
    assert not is_transient(psycopg.OperationalError(message))


def test_our_own_errors() -> None:
    dropped = psycopg.errors.AdminShutdown("terminating connection")
    try:
        raise RunFailed("copy of users failed") from dropped
    except RunFailed as exc:
        assert is_transient(exc)  # judged by its cause
    try:
        raise ConfigError("target.url is not a PostgreSQL URL") from dropped
    except ConfigError as exc:
        assert not is_transient(exc)  # configuration errors never are
    assert not is_transient(ValueError("bad value"))
    assert is_transient(ConnectionResetError("peer reset"))


# --------------------------------------------------------------------------- policy


def test_retried_callable_fails_twice_then_succeeds(
    locked_sqlite: tuple[Path, sqlite3.Connection], caplog: pytest.LogCaptureFixture
) -> None:
    """Real contention: the writer finds the file locked until the holder commits."""
    path, holder = locked_sqlite
    calls: list[int] = []
    retries: list[tuple[int, str, float]] = []
    sleeps: list[float] = []

    def write() -> str:
        calls.append(1)
        conn = sqlite3.connect(path, timeout=0)
        try:
            conn.execute("INSERT INTO t VALUES ('written')")
            conn.commit()
        finally:
            conn.close()
        return "done"

    def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
        retries.append((attempt, type(exc).__name__, wait))
        if attempt == 2:
            holder.execute("COMMIT")  # the other writer finishes

    settings = RetrySettings(attempts=5, initial_wait=0.001, max_wait=0.004, jitter=False)
    with caplog.at_level(logging.WARNING, logger="sqlite2pg.retry"):
        result = retrying(settings, on_retry, sleep=sleeps.append)(write)

    assert result == "done"
    assert len(calls) == 3
    assert retries == [(1, "OperationalError", 0.001), (2, "OperationalError", 0.002)]
    assert sleeps == [0.001, 0.002]
    assert holder.execute("SELECT x FROM t").fetchall() == [("written",)]
    messages = [r.getMessage() for r in caplog.records]
    assert any("attempt 1/5 failed" in m and "database is locked" in m for m in messages)


def test_permanent_errors_are_not_retried() -> None:
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise ConfigError("bad config")

    with pytest.raises(ConfigError):
        retrying(RetrySettings(initial_wait=0), sleep=lambda _: None)(fail)
    assert len(calls) == 1


def test_last_transient_error_is_reraised_as_is() -> None:
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise psycopg.errors.AdminShutdown("terminating connection")

    with pytest.raises(psycopg.errors.AdminShutdown):
        retrying(RetrySettings(attempts=3, initial_wait=0), sleep=lambda _: None)(fail)
    assert len(calls) == 3


def test_iterator_form() -> None:
    outcomes = iter([TimeoutError("slow"), None])
    attempts = 0
    for attempt in retrying(RetrySettings(initial_wait=0), sleep=lambda _: None):
        with attempt:
            attempts += 1
            outcome = next(outcomes)
            if outcome is not None:
                raise outcome
    assert attempts == 2


def test_backoff_grows_exponentially_with_cap_and_jitter() -> None:
    plain = RetrySettings(initial_wait=1.0, max_wait=10.0, jitter=False)
    assert [plain.wait(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    jittered = RetrySettings(initial_wait=1.0, max_wait=10.0, jitter=True)
    for n in range(1, 7):
        for _ in range(50):
            assert plain.wait(n) * 0.5 <= jittered.wait(n) <= plain.wait(n)
    assert len({jittered.wait(3) for _ in range(50)}) > 1


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetrySettings(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetrySettings(initial_wait=-1)
    with pytest.raises(ValueError, match="shorter"):
        RetrySettings(initial_wait=5, max_wait=1)
