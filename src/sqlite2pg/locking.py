"""One run at a time: a lock file on this machine and an advisory lock in the target.

:class:`RunLock` takes an exclusive ``flock`` on a lock file without waiting and records who
holds it. The operating system drops the lock when the holder exits, crashed or not, so a
lock file left behind never blocks the next run; only a live holder does.

:func:`advisory_lock` takes a PostgreSQL session advisory lock so that runs started from
different machines against the same target schema exclude each other too. It lives as long
as the session: give it a dedicated connection kept open for the whole run.

Both raise :class:`LockHeld` (exit status 75) describing the holder::

    with RunLock(Path(".sqlite2pg/run.lock"), run_id):
        with psycopg.connect(url, autocommit=True) as lock_conn, \\
                advisory_lock(lock_conn, lock_key(schema), run_id=run_id):
            ...
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from sqlite2pg.errors import LockHeldError

__all__ = ["LockHeld", "RunLock", "advisory_lock", "advisory_lock_id", "lock_key"]


class LockHeld(LockHeldError):
    """Another run holds the lock.

    ``holder`` is what is known about it (file lock: ``run_id``, ``pid``, ``host``,
    ``started_at``; advisory lock: ``pid``, ``application_name``, ``backend_start``,
    ``client_addr``, ``user``), possibly empty; ``since`` is when it started, if known (for
    the advisory lock: when the holding session connected);
    ``lock`` names the lock (file path or advisory key).
    """

    def __init__(self, lock: str, holder: Mapping[str, Any] | None, since: str | None) -> None:
        self.lock = lock
        self.holder: dict[str, Any] = dict(holder or {})
        self.since = since
        details = ", ".join(
            f"{label} {self.holder[key]}"
            for key, label in (
                ("run_id", "run"),
                ("pid", "pid"),
                ("host", "on"),
                ("application_name", "application"),
                ("client_addr", "from"),
            )
            if self.holder.get(key)
        )
        message = f"another sqlite2pg run holds the lock {lock}"
        if details:
            message += f" ({details})"
        if since:
            message += f" since {since}"
        super().__init__(
            message,
            hint="wait for that run to finish or stop it; a crashed run releases its lock itself",
        )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunLock:
    """Exclusive, non-blocking lock on ``path`` for the run ``run_id`` (a context manager).

    On entry the lock is taken and ``{"run_id", "pid", "host", "started_at"}`` written to the
    file; if another process (or another ``RunLock`` in this process) holds it,
    :class:`LockHeld` is raised with the holder read from the file. On exit the file is emptied
    and unlocked; it is never deleted (deleting a lock file lets two runs lock two different
    files). The parent directory is created. POSIX only.
    """

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this RunLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            since = holder.get("started_at") if holder else None
            raise LockHeld(str(self.path), holder, str(since) if since else None) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            info = {
                "run_id": self.run_id,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started_at": _now(),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)  # closing releases the flock
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # releases the flock

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, Any]:
    """What the holder wrote into the lock file; empty if unreadable (e.g. still writing)."""
    try:
        data = os.pread(fd, 64 * 1024, 0)
        holder = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


# --------------------------------------------------------------------------------------------
# PostgreSQL advisory lock


def lock_key(schema: str) -> str:
    """The advisory lock key for runs writing into ``schema``: ``"sqlite2pg:" + schema``."""
    return f"sqlite2pg:{schema}"


def advisory_lock_id(key: str) -> int:
    """A stable signed 64-bit lock id for ``key`` (BLAKE2b, the same in every process)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_HOLDER_QUERY = sql.SQL(
    """
    SELECT a.pid, a.application_name, a.backend_start, host(a.client_addr), a.usename
    FROM pg_catalog.pg_locks AS l
    JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT oid FROM pg_catalog.pg_database
                        WHERE datname = pg_catalog.current_database())
      AND l.classid = %(classid)s::bigint::oid
      AND l.objid = %(objid)s::bigint::oid
      AND l.objsubid = 1
    LIMIT 1
    """
)


def _holder(conn: psycopg.Connection[Any], lock_id: int) -> tuple[dict[str, Any], str | None]:
    unsigned = lock_id & 0xFFFFFFFFFFFFFFFF
    params = {"classid": unsigned >> 32, "objid": unsigned & 0xFFFFFFFF}
    try:
        row = conn.execute(_HOLDER_QUERY, params).fetchone()
    except psycopg.Error:
        return {}, None
    if row is None:  # released between our attempt and this query
        return {}, None
    pid, application_name, backend_start, client_addr, user = row
    since = backend_start.isoformat(timespec="seconds") if backend_start else None
    return (
        {
            "pid": pid,
            "application_name": application_name or None,
            "backend_start": since,
            "client_addr": client_addr,
            "user": user,
        },
        since,
    )


@contextmanager
def advisory_lock(
    conn: psycopg.Connection[Any], key: str, *, run_id: str | None = None
) -> Iterator[int]:
    """Hold the PostgreSQL session advisory lock for ``key`` inside the block.

    ``conn`` should be a dedicated connection: the lock belongs to its session, survives
    transaction rollbacks and ends when the session does. A connection not in autocommit mode
    is switched to autocommit (it must be idle). With ``run_id`` the session's
    ``application_name`` becomes ``sqlite2pg <run_id>`` so a blocked run can name the holder.
    Yields the 64-bit lock id. Raises :class:`LockHeld` with the holding backend's pid,
    application name and start time when another session holds the lock.
    """
    if not conn.autocommit:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise ValueError(
                "advisory_lock needs a dedicated connection that is not inside a transaction"
            )
        conn.autocommit = True
    lock_id = advisory_lock_id(key)
    if run_id is not None:
        conn.execute(
            "SELECT pg_catalog.set_config('application_name', %s, false)",
            (f"sqlite2pg {run_id}"[:63],),
        )
    row = conn.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", (lock_id,)).fetchone()
    if not row or not row[0]:
        holder, since = _holder(conn, lock_id)
        raise LockHeld(f"{key!r} in the target database", holder, since)
    try:
        yield lock_id
    finally:
        # A session that is gone took its locks with it; never mask the error ending the block.
        if not conn.closed:
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", (lock_id,))
