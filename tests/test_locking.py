"""Run locks: a file lock contended by real processes, and a PostgreSQL advisory lock
contended by real sessions."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sqlite2pg.errors import EXIT_LOCKED, LockHeldError
from sqlite2pg.locking import LockHeld, RunLock, advisory_lock, advisory_lock_id, lock_key

HOLDER_SCRIPT = """
import sys
from pathlib import Path
from sqlite2pg.locking import RunLock
with RunLock(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process holding a RunLock on tmp_path/run.lock until its stdin gets a line."""
    path = tmp_path / "locks" / "run.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(path), "child-run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    try:
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


def test_lock_held_by_another_process_names_the_holder(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, path = holder
    with pytest.raises(LockHeld) as caught, RunLock(path, "my-run"):
        pytest.fail("acquired a lock another process holds")
    err = caught.value
    assert err.holder["run_id"] == "child-run"
    assert err.holder["pid"] == proc.pid
    assert err.holder["host"] == socket.gethostname()
    assert err.since == err.holder["started_at"]
    assert "child-run" in str(err) and str(proc.pid) in str(err)
    assert isinstance(err, LockHeldError) and err.exit_code == EXIT_LOCKED
    # the refused attempt did not disturb the holder's record
    assert json.loads(path.read_text())["run_id"] == "child-run"


def test_lock_is_free_after_the_holder_finishes(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, path = holder
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("done\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "released\n"
    assert path.read_text() == ""  # emptied on release
    with RunLock(path, "next-run"):
        assert json.loads(path.read_text())["run_id"] == "next-run"


def test_crashed_holder_leaves_a_stale_file_that_does_not_block(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, path = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(path.read_text())["run_id"] == "child-run"  # stale content remains
    with RunLock(path, "after-crash") as lock:
        assert lock.held
        info = json.loads(path.read_text())
        assert info["run_id"] == "after-crash"
        assert info["pid"] == os.getpid()


def test_second_lock_in_the_same_process_conflicts_and_exceptions_release(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.lock"
    with pytest.raises(RuntimeError, match="boom"), RunLock(path, "first"):
        with pytest.raises(LockHeld) as caught, RunLock(path, "second"):
            pass
        assert caught.value.holder["run_id"] == "first"
        raise RuntimeError("boom")
    with RunLock(path, "third"):
        assert json.loads(path.read_text())["run_id"] == "third"


def test_unreadable_holder_record_still_reports_the_conflict(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    with RunLock(path, "first"):
        path.write_text("not json")
        with pytest.raises(LockHeld) as caught, RunLock(path, "second"):
            pass
    assert caught.value.holder == {} and caught.value.since is None


def test_lock_id_is_stable_across_processes() -> None:
    key = lock_key("public")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sqlite2pg.locking import advisory_lock_id as f; print(f('sqlite2pg:public'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert int(done.stdout) == advisory_lock_id(key)
    assert -(2**63) <= advisory_lock_id(key) < 2**63
    assert advisory_lock_id(lock_key("public")) != advisory_lock_id(lock_key("other"))


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_server(pg_admin: str) -> str:
    """The suite's server (SQLITE2PG_TEST_PG_URL, else the embedded one): see conftest."""
    return pg_admin


@pytest.fixture
def connect(pg_server: str) -> Iterator[Any]:
    opened: list[psycopg.Connection[Any]] = []

    def _connect(autocommit: bool = True) -> psycopg.Connection[Any]:
        conn = psycopg.connect(pg_server, autocommit=autocommit)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


def _key() -> str:
    return lock_key(f"test_{uuid.uuid4().hex}")


def test_advisory_lock_conflict_names_the_holding_session(connect: Any) -> None:
    first, second = connect(), connect()
    key = _key()
    with advisory_lock(first, key, run_id="run-one") as lock_id:
        assert lock_id == advisory_lock_id(key)
        with pytest.raises(LockHeld) as caught, advisory_lock(second, key):
            pytest.fail("two sessions held the same advisory lock")
        err = caught.value
        assert err.holder["pid"] == first.info.backend_pid
        assert err.holder["application_name"] == "sqlite2pg run-one"
        assert err.since is not None and err.since == err.holder["backend_start"]
        assert "sqlite2pg run-one" in str(err)
        # another schema's lock is independent
        with advisory_lock(second, _key()):
            pass
    with advisory_lock(second, key):  # released on exit
        pass


def test_advisory_lock_dies_with_its_session(connect: Any) -> None:
    first, second, admin = connect(), connect(), connect()
    key = _key()
    with advisory_lock(first, key):
        pid = first.info.backend_pid
        (terminated,) = admin.execute(
            "SELECT pg_terminate_backend(%s, 30000)", (pid,)
        ).fetchone()  # waits until the backend is gone
        assert terminated is True
        with advisory_lock(second, key):
            still_locked = admin.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s",
                (second.info.backend_pid,),
            ).fetchone()
            assert still_locked == (1,)
    # leaving the block on the dead session did not raise


def test_advisory_lock_switches_an_idle_connection_to_autocommit(connect: Any) -> None:
    conn = connect(autocommit=False)
    with advisory_lock(conn, _key()):
        assert conn.autocommit is True

    busy = connect(autocommit=False)
    busy.execute("SELECT 1")  # opens a transaction
    with pytest.raises(ValueError, match="transaction"), advisory_lock(busy, _key()):
        pass
