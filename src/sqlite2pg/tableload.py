"""Create, copy and key the full load's tables, reading one table ahead while PostgreSQL works.

The load is one transaction on one connection: while PostgreSQL builds a table's keys and
indexes, a thread waits on that connection and this process reads the next table from SQLite
into a :class:`~sqlite2pg.spool.Spool`. Tables go largest first, so each big table's index
builds overlap with reading the next big one. Only the order of the work changes: each table is
still created and copied inside its own savepoint, its keys built after its data.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import adapt

from . import schema as ddl
from .config import Config
from .load import CarefulModeNeeded, CopyStats, RejectSink, copy_sql, copy_text, send
from .model import TablePlan, TableResult
from .spool import Spool

if TYPE_CHECKING:
    from .pipeline import Observer, RunReport

log = logging.getLogger("sqlite2pg.load")


@dataclass
class Ahead:
    """A table read ahead: its spooled COPY text, counts so far and how it was read."""

    spool: Spool
    stats: CopyStats
    careful: bool
    seconds: float

    def close(self) -> None:
        self.spool.close()


class Background:
    """One call at a time in a thread; :meth:`join` waits for it and re-raises its error."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, fn: Callable[[], None]) -> None:
        self.join()

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # re-raised by join() in the caller's thread
                self.error = exc

        self.thread = threading.Thread(target=run, name="sqlite2pg-keys", daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def load_and_key(
    cur: psycopg.Cursor[Any],
    sconn: sqlite3.Connection,
    tables: Sequence[TablePlan],
    schema: str,
    cfg: Config,
    sink: RejectSink,
    report: RunReport,
    obs: Observer,
    nocase: bool,
) -> list[TablePlan]:
    """Every table created, copied and given its keys and indexes; returns them as created, in
    the given order (which is also the report's)."""
    for t in tables:
        report.tables[t.source.name] = _result(t)
    order = sorted(tables, key=lambda t: t.row_count, reverse=True)
    created: dict[str, TablePlan] = {}
    keys = Background()
    ahead: Ahead | None = None
    try:
        for i, t in enumerate(order):
            keys.join()  # the connection is ours again
            created[t.source.name] = load_table(
                cur, sconn, t, schema, cfg, sink, report, obs, nocase, ahead=ahead
            )
            ahead = None
            later = [u.name for u in order[i + 1 :]]
            keys.start(
                _keys_of(cur.connection, created[t.source.name], schema, report.warnings, later)
            )
            if i + 1 < len(order):
                ahead = read_ahead(sconn, order[i + 1], cur, cfg, sink, obs)
        keys.join()
    finally:
        if ahead is not None:
            ahead.close()
        try:
            keys.join()  # only when an error brought us here: that error comes first
        except BaseException as exc:
            log.error("building keys and indexes failed too: %s", exc)
    return [created[t.source.name] for t in tables]


def _keys_of(
    conn: psycopg.Connection[Any],
    t: TablePlan,
    schema: str,
    warnings: list[str],
    reserved: Sequence[str],
) -> Callable[[], None]:
    def build() -> None:
        with conn.cursor() as cur:
            ddl.add_keys_and_indexes(cur, t, schema, warnings, reserved)

    return build


def read_ahead(
    sconn: sqlite3.Connection,
    t: TablePlan,
    cur: psycopg.Cursor[Any],
    cfg: Config,
    sink: RejectSink,
    obs: Observer,
) -> Ahead:
    """``t``'s COPY text spooled (up to the spool's limit) before its turn; reads SQLite only."""
    started = time.perf_counter()
    careful = False
    obs.table_started(t.source.name, t.row_count)
    while True:
        stats = CopyStats()
        text = copy_text(
            sconn, t, sink, adapt.Transformer(cur), stats,
            batch_size=cfg.batch_size, careful=careful, progress=_advance(obs, t.source.name),
        )  # fmt: skip
        try:
            spool = Spool(text)
        except CarefulModeNeeded:
            text.close()
            if careful:
                raise
            sink.discard(t.source.name)
            obs.table_started(t.source.name, t.row_count)
            careful = True
            continue
        return Ahead(spool, stats, careful, time.perf_counter() - started)


def load_table(
    cur: psycopg.Cursor[Any],
    sconn: sqlite3.Connection,
    t: TablePlan,
    schema: str,
    cfg: Config,
    sink: RejectSink,
    report: RunReport,
    obs: Observer,
    nocase: bool,
    *,
    ahead: Ahead | None = None,
) -> TablePlan:
    """CREATE + COPY one table inside a savepoint, from what was read ahead if anything was;
    retried once in careful mode when the source holds text that is not valid UTF-8."""
    result = report.tables.setdefault(t.source.name, _result(t))
    started = time.perf_counter() - (ahead.seconds if ahead else 0.0)
    if ahead is None:
        obs.table_started(t.source.name, t.row_count)
    try:
        created, stats = _create_and_copy(
            cur, sconn, t, schema, cfg, sink, obs, nocase, ahead, report.warnings
        )
    finally:
        if ahead is not None:
            ahead.close()
    result.read, result.written = stats.read, stats.written
    result.inserted = stats.written
    result.rejected, result.changed_by_policy = stats.rejected, stats.changed_by_policy
    result.seconds = time.perf_counter() - started
    if stats.changed_by_policy:
        report.warnings.append(
            f"{t.source.name}: {stats.changed_by_policy} value(s) changed by the column policy "
            "in the config (on_invalid/nul)"
        )
    obs.table_done(result)
    return created


def _create_and_copy(
    cur: psycopg.Cursor[Any],
    sconn: sqlite3.Connection,
    t: TablePlan,
    schema: str,
    cfg: Config,
    sink: RejectSink,
    obs: Observer,
    nocase: bool,
    ahead: Ahead | None,
    warnings: list[str],
) -> tuple[TablePlan, CopyStats]:
    careful = ahead.careful if ahead else False
    while True:
        cur.execute("SAVEPOINT sqlite2pg_load")
        try:
            created = ddl.create_table(cur, t, schema, warnings, nocase=nocase)
            if ahead is not None and not (
                ahead.spool.usable and created.copy_columns == t.copy_columns
            ):
                _give_up(ahead, t, sink, obs)
                ahead = None
            stats = ahead.stats if ahead else CopyStats()
            tx = adapt.Transformer(cur)
            text = (
                ahead.spool.replay()
                if ahead
                else copy_text(
                    sconn, created, sink, tx, stats, batch_size=cfg.batch_size,
                    careful=careful, progress=_advance(obs, t.source.name),
                )
            )  # fmt: skip
            send(cur, copy_sql(ddl.qname(schema, t.name), created.copy_columns, freeze=True), text)
            cur.execute("RELEASE SAVEPOINT sqlite2pg_load")
            return created, stats
        except CarefulModeNeeded:
            if careful:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT sqlite2pg_load")
            sink.discard(t.source.name)
            obs.table_started(t.source.name, t.row_count)
            careful, ahead = True, None


def _give_up(ahead: Ahead, t: TablePlan, sink: RejectSink, obs: Observer) -> None:
    """The read-ahead cannot be used (the spool failed, or the table was created with other
    columns): the table is read again from the start."""
    ahead.close()
    sink.discard(t.source.name)
    obs.table_started(t.source.name, t.row_count)


def _result(t: TablePlan) -> TableResult:
    return TableResult(table=t.source.name, target=t.name, strategy=t.strategy)


def _advance(obs: Observer, table: str) -> Callable[[int], None]:
    return lambda n: obs.advance(table, n)
