"""Source queries answered ahead, on a twin of the run's snapshot, in a thread.

An incremental run's costliest SQLite reads are whole-index passes (a composite key's
aggregates grouped by its first column: ~1 s for Chinook's PlaylistTrack at 8.7M rows; the key
sums of the largest tables under ``append``). The run otherwise reads SQLite and PostgreSQL one
table at a time, so on a machine with two or more cores such a pass can run beside the other
tables' work. SQLite releases the GIL while it steps, so a thread is enough.

Only a rollback-journal source has a twin (see :func:`source.twin`); without one every query
runs in the caller's turn, as before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from typing import Any

from .source import open_twin, twin_source

Query = tuple[str, tuple[object, ...]]  # SQL and its parameters


class Prefetch:
    """Runs ``queries`` (name -> SQL and parameters, in order) on a twin of ``sconn`` in a
    thread.

    :meth:`rows` gives a query's rows once it is done, or None (no twin, another query, or the
    query failed): the caller then runs it on its own connection, where it fails again with the
    error it knows how to handle. :meth:`close` stops the thread."""

    def __init__(self, sconn: sqlite3.Connection, queries: Mapping[str, Query]) -> None:
        self.queries = dict(queries)
        self.results: dict[str, list[Any] | None] = {}
        self.ready: dict[str, threading.Event] = {k: threading.Event() for k in self.queries}
        self.conn: sqlite3.Connection | None = None
        self.thread: threading.Thread | None = None
        self.stopping = False
        source = twin_source(sconn) if self.queries else None
        self.conn = None if source is None else open_twin(*source)
        if self.conn is None:
            self.queries = {}
            return
        self.thread = threading.Thread(target=self._run, name="sqlite2pg-prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.conn is not None
        for name, (sql, params) in self.queries.items():
            if self.stopping:  # set by close(): the rest is not wanted
                self.ready[name].set()
                continue
            try:
                self.results[name] = self.conn.execute(sql, params).fetchall()
            except sqlite3.Error:
                self.results[name] = None  # interrupted, or an error the caller handles
            finally:
                self.ready[name].set()

    def rows(self, name: str, sql: str, params: tuple[object, ...] = ()) -> list[Any] | None:
        """The rows of query ``name`` if it was ``sql`` with ``params`` (waits for it), else
        None."""
        if self.queries.get(name) != (sql, params):
            return None
        self.ready[name].wait()
        return self.results.pop(name, None)

    def close(self) -> None:
        """Interrupt what still runs, wait for the thread and close the twin."""
        if self.conn is None:
            return
        self.stopping = True
        self.conn.interrupt()
        if self.thread is not None:
            self.thread.join()
        self.conn.close()
        self.conn = None
