"""COPY rows from the SQLite snapshot into PostgreSQL tables (target or staging).

Rows stream from the SQLite cursor to psycopg's COPY in batches, so memory stays flat. A column
whose profile found no dirty values passes through untouched; the others go through their
converter, and a row with a value that cannot be stored is rejected (recorded, not loaded).
Text that is not valid UTF-8 cannot even be fetched as ``str``: the first such row switches the
table to careful mode, where text arrives as bytes and is checked value by value.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from typing import Any, Protocol

import psycopg
from psycopg import abc, adapt

try:  # psycopg's own row formatter (C in psycopg[binary]), the one Copy.write_row calls
    from psycopg._copy_base import format_row_text
except ImportError:  # psycopg 3.1
    from psycopg.copy import format_row_text  # type: ignore[attr-defined,no-redef]

from .convert import Converter, PolicyApplied, Reject, column_converter, describe
from .model import ColumnPlan, Rejection, TablePlan
from .source import RawText, corrupt_source, iter_batches, qi
from .sqlite_sql import quote_ident

Progress = Callable[[int], None]
SLICE_ROWS = 500  # rows per chunk of COPY text


class RejectSink(Protocol):
    def add(self, rejection: Rejection) -> None: ...

    def discard(self, table: str) -> None: ...


@dataclass
class CopyStats:
    read: int = 0
    written: int = 0
    rejected: int = 0
    changed_by_policy: int = 0


class CarefulModeNeeded(Exception):
    """The source holds text that is not valid UTF-8; re-read the table in careful mode."""


def source_select(t: TablePlan, *, with_rowid: bool, where: str = "") -> str:
    cols = [qi(c.source.name) for c in t.copy_columns]
    if with_rowid:
        cols.append("rowid")
    return f"SELECT {', '.join(cols)} FROM {qi(t.source.name)}{where}"


def copy_sql(table_sql: str, columns: Sequence[ColumnPlan], *, freeze: bool = False) -> str:
    cols = ", ".join(quote_ident(c.name) for c in columns)
    return f"COPY {table_sql} ({cols}) FROM STDIN{' (FREEZE)' if freeze else ''}"


def _key_of(t: TablePlan, row: Sequence[object], has_rowid: bool) -> dict[str, Any]:
    """The row's primary key, or its rowid where it has no usable key (none, or NULL in it)."""
    names = [c.source.name for c in t.copy_columns]
    key: dict[str, Any] = {}
    if t.source.primary_key:
        key = {k: row[names.index(k)] for k in t.source.primary_key if k in names}
    if has_rowid and (not key or any(v is None for v in key.values())):
        key["rowid"] = row[-1]
    return key


def _null_reason(t: TablePlan, c: ColumnPlan) -> str:
    if c.source.name in t.source.primary_key:
        return "NULL in a primary key column (SQLite allows it in rowid tables, PostgreSQL not)"
    return "NULL in a NOT NULL column"


def copy_rows(
    cur: psycopg.Cursor[Any],
    sconn: sqlite3.Connection,
    t: TablePlan,
    table_sql: str,
    sink: RejectSink,
    *,
    batch_size: int,
    careful: bool,
    freeze: bool = False,
    where: str = "",
    params: Sequence[object] = (),
    progress: Progress | None = None,
) -> CopyStats:
    """Stream one table's rows (optionally filtered by ``where``) into ``table_sql`` with COPY."""
    stats = CopyStats()
    text = copy_text(
        sconn, t, sink, adapt.Transformer(cur), stats,
        batch_size=batch_size, careful=careful, where=where, params=params, progress=progress,
    )  # fmt: skip
    send(cur, copy_sql(table_sql, t.copy_columns, freeze=freeze), text)
    return stats


def send(
    cur: psycopg.Cursor[Any], sql: str, text: Generator[bytes | bytearray, None, None]
) -> None:
    """Run the COPY statement ``sql`` with ``text``'s chunks as its data; ``text`` is closed
    whatever happens (it may hold an SQLite statement open)."""
    with contextlib.closing(text), cur.copy(sql) as copy:
        for chunk in text:
            copy.write(chunk)


def copy_text(
    sconn: sqlite3.Connection,
    t: TablePlan,
    sink: RejectSink,
    tx: abc.Transformer,
    stats: CopyStats,
    *,
    batch_size: int,
    careful: bool,
    where: str = "",
    params: Sequence[object] = (),
    progress: Progress | None = None,
) -> Generator[bytearray, None, None]:
    """One table's rows as COPY text (``t.copy_columns``), in chunks of at most SLICE_ROWS rows.

    Rows that need no check pass through untouched, the others through their converters (a row
    that cannot be stored is rejected into ``sink``); ``stats`` counts as the chunks are taken.
    The text is what ``Copy.write_row`` would send: ``map`` drives psycopg's own formatter over
    the rows, so no Python code runs per row (``write_row`` costs two Python calls a row, about
    a third of this process's time in a load), and chunks keep wide rows (big BLOBs) from piling
    up. Raises CarefulModeNeeded at the first text that is not valid UTF-8.
    """
    cols = t.copy_columns
    dirty = [(i, column_converter(c)) for i, c in enumerate(cols) if careful or _needs_check(t, c)]
    with_rowid = bool(dirty) and not t.source.without_rowid
    query = source_select(t, with_rowid=with_rowid, where=where)
    sconn.text_factory = RawText if careful else str
    try:
        for batch in _batches(sconn, query, batch_size, params):
            stats.read += len(batch)
            rows: Iterator[Sequence[object]] = iter(batch)
            if dirty:
                rows = _convert(batch, dirty, t, with_rowid, sink, stats)
            else:
                stats.written += len(batch)
            while True:
                out = bytearray()
                deque(map(format_row_text, islice(rows, SLICE_ROWS), repeat(tx), repeat(out)), 0)
                if not out:
                    break
                yield out
            if progress is not None:
                progress(len(batch))
    finally:
        sconn.text_factory = str


def _needs_check(t: TablePlan, c: ColumnPlan) -> bool:
    """False when every value of the column can go to COPY untouched (the fast path)."""
    prof = t.profiles.get(c.source.name)
    if prof is None or prof.dirty:
        return True
    # SQLite lets NULL into a non-INTEGER PRIMARY KEY of a rowid table; PostgreSQL cannot.
    return c.notnull and (prof.nulls is None or prof.nulls > 0)


def _batches(
    sconn: sqlite3.Connection, query: str, batch_size: int, params: Sequence[object]
) -> Iterable[list[tuple[object, ...]]]:
    try:
        yield from iter_batches(sconn, query, batch_size, params)
    except sqlite3.OperationalError as exc:
        if "decode" in str(exc).lower():
            raise CarefulModeNeeded(str(exc)) from None
        raise
    except sqlite3.DatabaseError as exc:
        error = corrupt_source(exc, "a table's rows", sconn)
        if error is None:
            raise
        raise error from exc


def _convert(
    batch: list[tuple[object, ...]],
    dirty: list[tuple[int, Converter]],
    t: TablePlan,
    with_rowid: bool,
    sink: RejectSink,
    stats: CopyStats,
) -> Iterator[list[object]]:
    cols = t.copy_columns
    for row in batch:
        vals = list(row[:-1] if with_rowid else row)
        rejected = False
        for i, conv in dirty:
            v = vals[i]
            try:
                if v is None:
                    if cols[i].notnull:
                        raise Reject(_null_reason(t, cols[i]))
                    continue
                vals[i] = conv(v)
            except PolicyApplied as applied:
                vals[i] = applied.value
                stats.changed_by_policy += 1
            except Reject as exc:
                sink.add(
                    Rejection(
                        table=t.source.name,
                        key=_printable_key(_key_of(t, row, with_rowid)),
                        column=cols[i].source.name,
                        value=describe(v),
                        reason=str(exc),
                    )
                )
                stats.rejected += 1
                rejected = True
                break
        if not rejected:
            stats.written += 1
            yield vals


def _printable_key(key: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in key.items():
        if isinstance(v, RawText):  # text read in careful mode: as text when it decodes
            with contextlib.suppress(UnicodeDecodeError):
                v = bytes(v).decode("utf-8")
        out[k] = describe(v) if isinstance(v, bytes) else v
    return out
