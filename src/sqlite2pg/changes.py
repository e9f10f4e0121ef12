"""Change detection: which source rows changed since the last sync, one strategy per table.

Every strategy answers one question through one small interface (:class:`Strategy`): for a
table, inside the run's single SQLite snapshot and the run's PostgreSQL transaction, *which
source rows must be upserted and which target keys deleted*, and what state the next run
needs. The same contract test runs against every implementation (tests/test_changes_contract.py).

* ``hash`` (default with a primary key): 64-row buckets fingerprinted inside SQLite
  (see :mod:`hashing`); only buckets whose fingerprint differs from the last sync are read,
  and PostgreSQL decides row by row what really changed (``IS DISTINCT FROM``). WITHOUT ROWID
  tables have no rowid to bucket by and are compared whole every run.
* ``timestamp``: rows whose cursor column is at or after the last high-water mark minus a
  look-back window, plus every row whose cursor is NULL; deletes by comparing key sets.
* ``append``: rows whose growing integer key is above the last high-water mark; deletes by
  comparing key sets. Updates are not looked for (insert-only tables).
* ``triggers``: keys written by triggers into a change-log table in the source file.
* ``full``: the whole table (tables without a primary key are reloaded whole, and skipped when
  their fingerprint did not change; tables with one are compared whole).

Key sets are compared cheaply for integer keys: per key range the count and sums of the key
columns on both sides; a range one row short names the missing key directly, other differing
ranges are listed key by key.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
import threading
from array import array
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from math import isqrt
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import psycopg

from .config import Config
from .convert import PolicyApplied, Reject, column_converter, parse_timestamp
from .errors import PlanError, SourceError
from .fingerprints import Helper, Job, read_buckets, write_buckets
from .hashing import (
    BUCKET_BITS,
    SUB_BITS,
    SUB_ROWS,
    SUBS,
    Bucket,
    BucketReader,
    key_texts,
    parse_keys,
    realish,
    table_fingerprint,
    text_expr,
    unpack_subs,
)
from .model import SourceCatalog, TablePlan
from .plan import timestamp_column
from .prefetch import Prefetch, Query
from .schema import qname
from .source import CHANGE_LOG_TABLE, RawText, qi
from .sqlite_sql import quote_ident as pqi
from .syncstate import STATE_SCHEMA, SyncedTable

Cursor = psycopg.Cursor[Any]
Key = tuple[object, ...]
R = TypeVar("R")  # a range, however a caller names it

STATE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA};
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.hash_buckets (
    target_schema text NOT NULL,
    source_table text NOT NULL,
    bucket bigint NOT NULL,
    h bigint,
    n integer NOT NULL,
    keys bytea NOT NULL,
    sub bytea,
    PRIMARY KEY (target_schema, source_table, bucket)
);
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.key_ranges (
    target_schema text NOT NULL,
    source_table text NOT NULL,
    lo bigint NOT NULL,
    shift integer NOT NULL,
    width integer NOT NULL,
    ranges bytea NOT NULL,
    PRIMARY KEY (target_schema, source_table)
);
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.pending_rows (
    target_schema text NOT NULL,
    source_table text NOT NULL,
    key bytea NOT NULL,
    PRIMARY KEY (target_schema, source_table, key)
);
"""

INTEGER_KINDS = ("bigint", "integer", "smallint")
MAX_KEY = 2**63 - 1
KEY_CHUNK = 2000  # keys per source query (SQLite allows 32766 parameters)


def ensure_state(cur: Cursor) -> None:
    cur.execute(STATE_DDL)


# --------------------------------------------------------------------------- records


@dataclass
class Context:
    """What a strategy may use: the run's snapshot and transaction, nothing else."""

    cur: Cursor
    sconn: sqlite3.Connection
    schema: str
    cfg: Config
    source_path: str
    pre: Precomputed | None = None  # bucket fingerprints computed while PostgreSQL was busy
    helper: Helper | None = None  # the larger tables' fingerprints, from a helper process
    prefetch: Prefetch | None = None  # grouped key passes run ahead on a twin of the snapshot

    def target(self, t: TablePlan) -> str:
        return qname(self.schema, t.name)


@dataclass
class Detected:
    """One table's changes: what to copy from the source, what to delete in the target."""

    selections: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)  # primary keys as the target holds them
    high_water: str | None = None
    source_rows: int | None = None
    compare: bool = False  # selections cover the whole table: delete what was not staged
    reload: bool = False  # no primary key: replace every row
    save: Callable[[Cursor, list[Key]], None] | None = None  # gets the rejected source keys
    after_commit: Callable[[], None] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.selections and not self.deletes and not self.reload


class Strategy(Protocol):
    name: ClassVar[str]

    def initial(self, ctx: Context, t: TablePlan, rejected: int) -> str | None:
        """State after a full load of ``t`` (same transaction); returns the high-water mark."""
        ...

    def detect(self, ctx: Context, t: TablePlan, prev: SyncedTable) -> Detected:
        """Changes since ``prev`` in the current snapshot; writes nothing to the target."""
        ...


# --------------------------------------------------------------------------- helpers


def pk_source(t: TablePlan) -> list[str]:
    return list(t.source.primary_key)


def pk_target(t: TablePlan) -> list[str]:
    return [t.column_by_source(c).name for c in t.source.primary_key]


def integer_key(t: TablePlan) -> bool:
    """Primary key made only of integer columns (cheap range comparisons)."""
    if not t.source.primary_key:
        return False
    return all(t.column_by_source(c).type.kind in INTEGER_KINDS for c in t.source.primary_key)


def has_rowid(t: TablePlan) -> bool:
    return not t.source.without_rowid


def copied_source_columns(t: TablePlan) -> list[str]:
    return [c.source.name for c in t.copy_columns]


def where_keys(t: TablePlan, keys: Sequence[Key]) -> list[tuple[str, tuple[object, ...]]]:
    """WHERE clauses (chunked) selecting the source rows with these primary keys, by index."""
    cols = pk_source(t)
    table = qi(t.source.name)
    out: list[tuple[str, tuple[object, ...]]] = []
    per = max(1, KEY_CHUNK // max(1, len(cols)))
    for i in range(0, len(keys), per):
        chunk = keys[i : i + per]
        values = ", ".join("(" + ", ".join("?" * len(cols)) + ")" for _ in chunk)
        on = " AND ".join(f"s.{qi(c)} = v.column{j + 1}" for j, c in enumerate(cols))
        lhs = "(" + ", ".join(qi(c) for c in cols) + ")"
        sel = ", ".join(f"s.{qi(c)}" for c in cols)
        if len(cols) == 1:
            lhs = qi(cols[0])
        where = (
            f" WHERE {lhs} IN (SELECT {sel} FROM (VALUES {values}) AS v JOIN {table} AS s ON {on})"
        )
        out.append((where, tuple(v for k in chunk for v in k)))
    return out


def existing_keys(sconn: sqlite3.Connection, t: TablePlan, keys: Sequence[Key]) -> set[Key]:
    """Which of these keys the source holds now (exact typed values)."""
    cols = ", ".join(qi(c) for c in pk_source(t))
    found: set[Key] = set()
    with lenient_text(sconn):
        for where, params in where_keys(t, keys):
            for row in sconn.execute(f"SELECT {cols} FROM {qi(t.source.name)}{where}", params):
                found.add(tuple(row))
    return found


def to_target_keys(t: TablePlan, keys: Iterable[Key]) -> list[Key]:
    """Source key values -> the values the target holds (through the columns' converters);
    a key that cannot be converted cannot be in the target and is left out."""
    convs = [column_converter(t.column_by_source(c)) for c in t.source.primary_key]
    out: list[Key] = []
    for k in keys:
        if any(isinstance(v, RawText) for v in k):
            continue
        vals: list[object] = []
        try:
            for conv, v in zip(convs, k, strict=True):
                if v is None:
                    vals.append(None)
                    continue
                try:
                    vals.append(conv(v))
                except PolicyApplied as applied:
                    vals.append(applied.value)
        except Reject:
            continue
        out.append(tuple(vals))
    return out


def source_count(sconn: sqlite3.Connection, t: TablePlan) -> int:
    return int(sconn.execute(f"SELECT count(*) FROM {qi(t.source.name)}").fetchone()[0])


def _json_value(v: object) -> str | None:
    return None if v is None else json.dumps(v)


def _from_json(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # written by an older version: the raw text


# ---- pending (rejected) rows of strategies that do not look at every row again


def load_pending(ctx: Context, t: TablePlan) -> list[Key]:
    ctx.cur.execute(
        f"SELECT key FROM {STATE_SCHEMA}.pending_rows WHERE target_schema = %s "
        "AND source_table = %s",
        (ctx.schema, t.source.name),
    )
    keys: list[Key] = []
    for (k,) in ctx.cur.fetchall():
        keys.extend(parse_keys(bytes(k)))
    return keys


def save_pending(ctx: Context, t: TablePlan, rejected: Sequence[Key]) -> None:
    ctx.cur.execute(
        f"DELETE FROM {STATE_SCHEMA}.pending_rows WHERE target_schema = %s AND source_table = %s",
        (ctx.schema, t.source.name),
    )
    texts = sorted(set(key_texts(ctx.sconn, rejected)))
    if texts:
        with ctx.cur.copy(
            f"COPY {STATE_SCHEMA}.pending_rows (target_schema, source_table, key) FROM STDIN"
        ) as cp:
            for k in texts:
                cp.write_row((ctx.schema, t.source.name, k))


def missing_in_target(ctx: Context, t: TablePlan) -> list[Key]:
    """Source keys the target lacks (rows rejected by a full load)."""
    return key_diff(ctx, t, set()).missing


def _text(b: bytes) -> object:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return RawText(b)  # cannot be a key in PostgreSQL; left out of key comparisons


@contextmanager
def lenient_text(sconn: sqlite3.Connection) -> Iterator[None]:
    """Text that is not valid UTF-8 comes back as RawText instead of failing the query."""
    old = sconn.text_factory
    sconn.text_factory = _text
    try:
        yield
    finally:
        sconn.text_factory = old


@dataclass
class KeyDiff:
    deleted: list[Key]  # as the target holds them
    missing: list[Key]  # source keys the target lacks (not among the upserts)
    source_rows: int | None = None
    extra_max: object = None  # max() of the extra column asked for, over the whole source
    save: Callable[[Cursor], None] | None = None  # what the next comparison starts from


def key_diff(
    ctx: Context,
    t: TablePlan,
    upserts: set[Key],
    *,
    extra_max: str | None = None,
    window: Window | None = None,
) -> KeyDiff:
    """Compare the key sets of source and target.

    ``upserts`` are source keys this run copies anyway. Keys holding text that is not valid
    UTF-8 cannot exist in PostgreSQL and are left out. With ``extra_max`` (a source column),
    its maximum comes with the comparison's scan (a cursor's high-water mark); with ``window``
    (integer keys only), the keys of the rows meeting it are found in the same scan and added
    to ``upserts``."""
    with lenient_text(ctx.sconn):
        if integer_key(t):
            diff = _int_key_diff(ctx, t, upserts, extra_max, window)
        else:
            diff = _shipped_key_diff(ctx, t, upserts)
            if extra_max is not None:
                row = ctx.sconn.execute(
                    f"SELECT max({qi(extra_max)}) FROM {qi(t.source.name)}"
                ).fetchone()
                diff.extra_max = row[0] if row else None
    diff.missing = [k for k in diff.missing if not any(isinstance(v, RawText) for v in k)]
    return diff


def searches_index(sconn: sqlite3.Connection, query: str, params: Sequence[object]) -> bool:
    """SQLite's planner answers ``query`` by searching indexes, reading no table or index
    whole."""
    steps = [str(r[-1]) for r in sconn.execute(f"EXPLAIN QUERY PLAN {query}", params)]
    return any(s.startswith("SEARCH ") for s in steps) and not any(
        s.startswith("SCAN ") for s in steps
    )


def _window_searched(ctx: Context, t: TablePlan, cond: str, params: Sequence[object]) -> bool:
    cols = ", ".join(qi(c) for c in pk_source(t))
    return searches_index(ctx.sconn, f"SELECT {cols} FROM {qi(t.source.name)} WHERE {cond}", params)


def _window_keys(ctx: Context, t: TablePlan, window: Window) -> set[Key]:
    cols = ", ".join(qi(c) for c in pk_source(t))
    where = f" WHERE {window[0]}" if window[0] else ""
    return {
        tuple(r)
        for r in ctx.sconn.execute(f"SELECT {cols} FROM {qi(t.source.name)}{where}", window[1])
    }


def _shipped_key_diff(ctx: Context, t: TablePlan, upserts: set[Key]) -> KeyDiff:
    """Any key type: the source key set goes into a temporary table and is anti-joined."""
    cur = ctx.cur
    tcols = pk_target(t)
    qcols = ", ".join(pqi(c) for c in tcols)
    cur.execute("DROP TABLE IF EXISTS _s2p_keys")
    cur.execute(
        f"CREATE TEMP TABLE _s2p_keys ON COMMIT DROP AS SELECT {qcols} FROM {ctx.target(t)} "
        "WITH NO DATA"
    )
    scols = ", ".join(qi(c) for c in pk_source(t))
    raw_by_target: dict[Key, Key] = {}
    n = 0
    with cur.copy(f"COPY _s2p_keys ({qcols}) FROM STDIN") as cp:
        for row in ctx.sconn.execute(f"SELECT {scols} FROM {qi(t.source.name)}"):
            n += 1
            conv = to_target_keys(t, [tuple(row)])
            if conv:
                cp.write_row(conv[0])
                if tuple(row) not in upserts:
                    raw_by_target[conv[0]] = tuple(row)
    on = " AND ".join(f"t.{pqi(c)} = k.{pqi(c)}" for c in tcols)
    sel = ", ".join(f"t.{pqi(c)}" for c in tcols)
    cur.execute(
        f"SELECT {sel} FROM {ctx.target(t)} t "
        f"WHERE NOT EXISTS (SELECT 1 FROM _s2p_keys k WHERE {on})"
    )
    deleted = [tuple(r) for r in cur.fetchall()]
    ksel = ", ".join(f"k.{pqi(c)}" for c in tcols)
    cur.execute(
        f"SELECT {ksel} FROM _s2p_keys k "
        f"WHERE NOT EXISTS (SELECT 1 FROM {ctx.target(t)} t WHERE {on})"
    )
    missing = [raw_by_target[tuple(r)] for r in cur.fetchall() if tuple(r) in raw_by_target]
    cur.execute("DROP TABLE _s2p_keys")
    return KeyDiff(deleted, missing, source_rows=n)


# ---- integer keys: per-range count and sums, the source's kept from the last sync

Agg = list[int]  # [count, sum(first - range start), sum(second key column), ...]; count -1: unknown
# A two-column key kept per value of its first column (shift 0) also keeps the sum of the second
# column's squares: a range two rows short then names both missing keys (see _named_keys).
RANGE_ROWS = 512  # about this many rows per key range
LIST_ROWS = 2 * RANGE_ROWS  # differing ranges this small are compared key by key


def _load_ranges(ctx: Context, t: TablePlan) -> tuple[int, int, dict[int, Agg]] | None:
    ctx.cur.execute(
        f"SELECT lo, shift, width, ranges FROM {STATE_SCHEMA}.key_ranges "
        "WHERE target_schema = %s AND source_table = %s",
        (ctx.schema, t.source.name),
    )
    row = ctx.cur.fetchone()
    if row is None:
        return None
    lo, shift, width, blob = int(row[0]), int(row[1]), int(row[2]), bytes(row[3])
    values = array("q")
    values.frombytes(blob)
    out: dict[int, Agg] = {}
    for i in range(0, len(values), width + 1):
        out[values[i]] = list(values[i + 1 : i + 1 + width])
    return lo, shift, out


def _save_ranges(
    ctx: Context, t: TablePlan, cur: Cursor, lo: int, shift: int, aggs: dict[int, Agg]
) -> None:
    width = _width(aggs, t)
    values = array("q")
    for r in sorted(aggs):
        agg = aggs[r]
        if any(not -(2**63) <= v < 2**63 for v in agg):
            agg = [-1] + [0] * (width - 1)  # too large to keep: that range is listed next time
        values.append(r)
        values.extend(agg)
    cur.execute(
        f"INSERT INTO {STATE_SCHEMA}.key_ranges AS k (target_schema, source_table, lo, shift, "
        "width, ranges) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (target_schema, source_table) "
        "DO UPDATE SET lo = EXCLUDED.lo, shift = EXCLUDED.shift, width = EXCLUDED.width, "
        "ranges = EXCLUDED.ranges",
        (ctx.schema, t.source.name, lo, shift, width, values.tobytes()),
    )


Window = tuple[str, tuple[object, ...]]  # an SQL condition on the source and its parameters


def _key_bounds(ctx: Context, t: TablePlan) -> tuple[int, int] | None:
    """Smallest and largest first key column (through its index); None for an empty table."""
    table, f = qi(t.source.name), qi(pk_source(t)[0])
    first = ctx.sconn.execute(f"SELECT min({f}) FROM {table}").fetchone()[0]
    if first is None:
        return None
    last = ctx.sconn.execute(f"SELECT max({f}) FROM {table}").fetchone()[0]
    if not isinstance(first, int) or not isinstance(last, int):
        raise _NotIntegers
    return first, last


def _source_ranges(
    ctx: Context,
    t: TablePlan,
    lo_all: int,
    shift: int,
    extra_max: str | None,
    window: Window | None = None,
) -> tuple[dict[int, Agg], object, set[Key]]:
    """The source's aggregates per key range, the extra column's maximum and the keys of the
    rows meeting ``window``.

    When the key is the rowid, one pass over the table, range by range (skipping gaps), gives
    all three. Otherwise the key's index answers the aggregates alone (reading the row for
    the other columns would cost one random lookup per key), and one plain scan of the table
    gives the maximum and the window's keys."""
    if (extra_max or window) and not _alias(t):
        scanned = _cursor_scan(ctx, t, extra_max, window)
        return _source_ranges(ctx, t, lo_all, shift, None)[0], scanned[0], scanned[1]
    sconn = ctx.sconn
    scols = pk_source(t)
    table, f = qi(t.source.name), qi(scols[0])
    width = 1 << shift
    extra = f", max({qi(extra_max)})" if extra_max else ""
    wparams: tuple[object, ...] = ()
    if window is not None:
        extra += f", group_concat(CASE WHEN {window[0]} THEN {f} END)"
        wparams = window[1]
    others = "".join(f", sum({qi(c)})" for c in scols[1:])
    q = f"SELECT count(*), sum({f} - ?){others}{extra} FROM {table} WHERE {f} BETWEEN ? AND ?"
    nxt = f"SELECT min({f}) FROM {table} WHERE {f} > ?"
    out: dict[int, Agg] = {}
    top: object = None
    wkeys: set[Key] = set()
    bounds = _key_bounds(ctx, t)
    if bounds is None:
        return out, top, wkeys
    first, last = bounds
    n_aggs = len(scols)
    if shift == 0 and n_aggs > 1 and not extra:
        grouped = _grouped_ranges(ctx, t, lo_all)
        if grouped is not None:
            return grouped, top, wkeys
    r = (first - lo_all) >> shift
    while True:
        lo = lo_all + (r << shift)
        if lo > last:
            break
        hi = min(lo + width - 1, MAX_KEY)
        try:
            row = sconn.execute(q, (lo, *wparams, lo, hi)).fetchone()
            agg = [int(v or 0) for v in row[: 1 + n_aggs]]
        except (sqlite3.OperationalError, OverflowError, TypeError, ValueError):
            agg = [-1] + [0] * n_aggs  # sum() overflow or odd values: list this range
            row = sconn.execute(
                f"SELECT count(*){extra} FROM {table} WHERE {f} BETWEEN ? AND ?",
                (*wparams, lo, hi),
            ).fetchone()
            row = (row[0], *([0] * n_aggs), *row[1:])
        if agg[0] == 0:
            following = sconn.execute(nxt, (hi,)).fetchone()[0]
            if following is None:
                break
            r = (int(following) - lo_all) >> shift
            continue
        out[r] = agg
        if window is not None and row[-1]:
            wkeys.update((int(k),) for k in str(row[-1]).split(","))
        if extra_max:
            m = row[1 + n_aggs]
            if m is not None and (top is None or _sqlite_gt(m, top)):
                top = m
        r += 1
    return out, top, wkeys


def grouped_sql(t: TablePlan, squares: bool) -> str:
    """The query behind :func:`_grouped_ranges`: per first key column value, the count and
    the sums of the other key columns (and of the second one's squares)."""
    scols = pk_source(t)
    f = qi(scols[0])
    others = "".join(f", sum({qi(c)})" for c in scols[1:])
    if squares:
        others += f", sum({qi(scols[1])} * {qi(scols[1])})"
    return f"SELECT {f}, count(*){others} FROM {qi(t.source.name)} GROUP BY {f}"


def ahead_queries(ctx: Context, tables: Sequence[TablePlan]) -> dict[str, Query]:
    """The whole-table passes of this run's key comparisons that are worth starting early, on
    a twin (see :mod:`prefetch`): of tables compared by key sets (``timestamp``, ``append``)
    whose kept ranges are one per value of a two-column integer key's first column, the
    grouped pass; under ``append`` (where rows are rarely deleted, so the row count matches
    and the key sums decide), the sums pass of the largest tables, up to about half of the
    rows. The state tables must exist (ensure_state)."""
    ctx.cur.execute(
        f"SELECT source_table, lo, shift FROM {STATE_SCHEMA}.key_ranges WHERE target_schema = %s",
        (ctx.schema,),
    )
    kept = {str(name): (int(lo), int(shift)) for name, lo, shift in ctx.cur.fetchall()}
    out: dict[str, Query] = {}
    keyed = [t for t in tables if t.source.name in kept and integer_key(t)]
    for t in keyed:
        grouped = kept[t.source.name][1] == 0 and len(pk_source(t)) == 2
        if grouped and t.strategy in ("timestamp", "append"):
            out[t.source.name] = (grouped_sql(t, True), ())
    appended = [t for t in keyed if t.strategy == "append" and len(pk_source(t)) == 1]
    sizes = {t.source.name: _key_span(ctx, t) for t in appended}
    half = sum(sizes.values()) // 2
    taken = 0
    for t in sorted(appended, key=lambda t: -sizes[t.source.name]):
        if not sizes[t.source.name] or (taken and taken + sizes[t.source.name] > half):
            break
        query = _scan_query(t, None, None, kept[t.source.name][0])
        assert query is not None
        out[t.source.name] = query
        taken += sizes[t.source.name]
    return out


def _key_span(ctx: Context, t: TablePlan) -> int:
    """About how many rows a one-column integer key's table holds: its key's span, which
    SQLite reads from both ends of the key's index (a count would read every page)."""
    try:
        bounds = _key_bounds(ctx, t)
    except _NotIntegers:  # compared another way, without this pass
        return 0
    return 0 if bounds is None else bounds[1] - bounds[0] + 1


def _grouped_ranges(
    ctx: Context, t: TablePlan, lo_all: int, squares: bool = True
) -> dict[int, Agg] | None:
    """Ranges of a single first-column value (a composite key with many rows per value): one
    query grouped by that column, in the order of the key's index (no sorting). A two-column
    key's ranges also get the sum of the second column's squares, unless a square or the sum
    does not fit in an integer (then they are taken without)."""
    squares = squares and len(pk_source(t)) == 2
    sql = grouped_sql(t, squares)
    try:
        rows = ctx.prefetch.rows(t.source.name, sql) if ctx.prefetch is not None else None
        if rows is None:
            rows = ctx.sconn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # sum() overflow
        # without the squares, or else range by range, marking what cannot be summed
        return _grouped_ranges(ctx, t, lo_all, squares=False) if squares else None
    out: dict[int, Agg] = {}
    for v, n, *sums in rows:
        if not isinstance(v, int):
            return None
        if squares and not isinstance(sums[-1], int):  # a square past 2**63 is taken as REAL
            return _grouped_ranges(ctx, t, lo_all, squares=False)
        out[v - lo_all] = [int(n), 0, *(int(x or 0) for x in sums)]
    return out


def _scan_query(
    t: TablePlan, extra_max: str | None, window: Window | None, lo_all: int | None
) -> Query | None:
    """The query behind :func:`_cursor_scan`, or None when there is nothing to scan for."""
    parts = [f"max({qi(extra_max)})" if extra_max else "NULL"]
    params: list[object] = []
    if window is not None:
        cols = ", ".join(qi(c) for c in pk_source(t))
        parts.append(f"group_concat(CASE WHEN {window[0]} THEN json_array({cols}) END)")
        params.extend(window[1])
    if lo_all is not None:
        scols = pk_source(t)
        parts += ["count(*)", f"sum({qi(scols[0])} - ?)", *(f"sum({qi(c)})" for c in scols[1:])]
        params.append(lo_all)
    elif extra_max is None and window is None:
        return None
    return f"SELECT {', '.join(parts)} FROM {qi(t.source.name)}", tuple(params)


def _cursor_scan(
    ctx: Context,
    t: TablePlan,
    extra_max: str | None,
    window: Window | None,
    lo_all: int | None = None,
) -> tuple[object, set[Key], list[int] | None]:
    """One pass over the table: the maximum of ``extra_max``, the keys meeting ``window`` and,
    with ``lo_all``, the count and key sums :func:`_totals_match` compares (None when a sum
    cannot be taken)."""
    query = _scan_query(t, extra_max, window, lo_all)
    if query is None:
        return None, set(), None
    sql, params = query
    n_totals = 1 + len(pk_source(t)) if lo_all is not None else 0
    try:
        ahead = ctx.prefetch.rows(t.source.name, sql, params) if ctx.prefetch else None
        row = ahead[0] if ahead else ctx.sconn.execute(sql, params).fetchone()
        totals = [int(v or 0) for v in row[len(row) - n_totals :]] if n_totals else None
    except (sqlite3.OperationalError, OverflowError, TypeError, ValueError):
        if lo_all is None:
            raise
        return (*_cursor_scan(ctx, t, extra_max, window)[:2], None)
    top, *found = row[: len(row) - n_totals]
    if not found or found[0] is None:
        return top, set(), totals
    if not isinstance(found[0], str) and window is not None:  # not UTF-8: read them as rows
        return top, _window_keys(ctx, t, window), totals
    return top, {tuple(k) for k in json.loads("[" + found[0] + "]")}, totals


class _NotIntegers(Exception):
    pass


def _sqlite_gt(a: object, b: object) -> bool:
    """SQLite's ordering across storage classes: NULL < numbers < text < blobs."""

    def rank(v: object) -> int:
        return (
            0 if v is None else 1 if isinstance(v, (int, float)) else 2 if isinstance(v, str) else 3
        )

    ra, rb = rank(a), rank(b)
    return ra > rb if ra != rb else a > b  # type: ignore[operator]


def _target_ranges(ctx: Context, t: TablePlan, lo_all: int, shift: int) -> dict[int, Agg]:
    """The same aggregates computed by PostgreSQL (no stored state yet: a first run), with the
    squares where the source's are taken (they are dropped again where the sides differ)."""
    tcols = pk_target(t)
    f = pqi(tcols[0])
    others = "".join(f", sum({pqi(c)})" for c in tcols[1:])
    if shift == 0 and len(tcols) == 2:
        others += f", sum({pqi(tcols[1])}::numeric * {pqi(tcols[1])})"
    ctx.cur.execute(
        f"SELECT ({f} - %s) >> {shift}, count(*), sum(({f} - %s) & {(1 << shift) - 1}){others} "
        f"FROM {ctx.target(t)} GROUP BY 1",
        (lo_all, lo_all),
    )
    return {int(r[0]): [int(v or 0) for v in r[1:]] for r in ctx.cur.fetchall()}


def _width(aggs: dict[int, Agg], t: TablePlan) -> int:
    """How many values each range of ``aggs`` has (all have as many)."""
    for agg in aggs.values():
        return len(agg)
    return 1 + len(t.source.primary_key)


def _same_width(t: TablePlan, *sides: dict[int, Agg]) -> list[dict[int, Agg]]:
    """The sides with their ranges cut to the narrowest side's values: squares that one side
    has and the other not (a state kept before they were, or too large to sum) are left out
    of the comparison."""
    width = min(_width(side, t) for side in sides)
    return [
        side if _width(side, t) == width else {r: a[:width] for r, a in side.items()}
        for side in sides
    ]


def _named_keys(ta: Agg, sa: Agg, lo: int, n_aggs: int) -> list[Key] | None:
    """The keys a range one row short (any key) or two rows short (a two-column key kept with
    its squares, one first-column value per range) is missing, from its count and sums; None
    when these do not name them. The keys are to be verified."""
    short = ta[0] - sa[0]
    if sa[0] < 0 or short not in (1, 2):
        return None
    if short == 1:
        return [(lo + ta[1] - sa[1], *(ta[2 + j] - sa[2 + j] for j in range(n_aggs - 1)))]
    if n_aggs != 2 or len(ta) != 4 or len(sa) != 4 or ta[1] != sa[1]:
        return None
    s1, s2 = ta[2] - sa[2], ta[3] - sa[3]  # a + b and a*a + b*b
    disc = 2 * s2 - s1 * s1  # (a - b) ** 2
    if disc <= 0:
        return None
    root = isqrt(disc)
    if root * root != disc or (s1 + root) % 2:
        return None
    return [(lo, (s1 + root) // 2), (lo, (s1 - root) // 2)]


def _layout(ctx: Context, t: TablePlan) -> tuple[int, int]:
    f_s, f_t = qi(pk_source(t)[0]), pqi(pk_target(t)[0])
    s_min, s_max, s_n = ctx.sconn.execute(
        f"SELECT (SELECT min({f_s}) FROM {qi(t.source.name)}), "
        f"(SELECT max({f_s}) FROM {qi(t.source.name)}), (SELECT count(*) FROM {qi(t.source.name)})"
    ).fetchone()
    ctx.cur.execute(f"SELECT min({f_t}), max({f_t}) FROM {ctx.target(t)}")
    t_min, t_max = ctx.cur.fetchone()  # type: ignore[misc]
    lows = [int(v) for v in (s_min, t_min) if isinstance(v, int)]
    highs = [int(v) for v in (s_max, t_max) if isinstance(v, int)]
    if not lows:
        return 0, 0
    lo, hi = min(lows), max(highs)
    span = hi - lo + 1
    shift = max(0, (span * RANGE_ROWS // max(int(s_n or 0), 1)).bit_length() - 1)
    return lo, shift


def _one_short(
    ctx: Context, t: TablePlan, candidates: Sequence[tuple[R, Key]], upserts: set[Key]
) -> tuple[list[Key], list[R]]:
    """Ranges one row short name their missing key: (the keys really deleted, the ranges to
    list because theirs was not: present in the source, absent from the target or upserted)."""
    if not candidates:
        return [], []
    keys = [c for _, c in candidates]
    in_target = _present_in_target(ctx, t, keys)
    in_source = existing_keys(ctx.sconn, t, keys)
    deleted: list[Key] = []
    rest: list[R] = []
    for item, c in candidates:
        if c in in_target and c not in in_source and c not in upserts:
            deleted.append(c)
        else:
            rest.append(item)
    return deleted, rest


def _int_key_diff(
    ctx: Context,
    t: TablePlan,
    upserts: set[Key],
    extra_max: str | None,
    window: Window | None = None,
) -> KeyDiff:
    """Integer keys, per range of the first key column: the count and sums of the key columns
    now, against those of the last sync (kept in the target, written with the data). A range
    one row short names its missing key (verified on both sides); other differing ranges are
    compared key by key. Only the source is scanned; PostgreSQL only for the ranges that
    differ (or once, when there is no kept state yet)."""
    ensure_state(ctx.cur)
    kept = _load_ranges(ctx, t)
    if kept is not None:
        lo_all, shift, tagg = kept
    else:
        lo_all, shift = _layout(ctx, t)
        tagg = _target_ranges(ctx, t, lo_all, shift)
    n_aggs = len(pk_source(t))
    try:
        if _alias(t) and window is not None:  # the window's rows come with the ranges' pass
            sagg, top, wkeys = _source_ranges(ctx, t, lo_all, shift, extra_max, window)
            upserts.update(wkeys)
            u_new = _absent_in_target(ctx, t, upserts)
            expected = _expected(tagg, u_new, lo_all, shift, n_aggs)
        else:
            # the whole table's count and sums first (cheap when nothing was deleted), unless
            # the ranges are grouped by the first key column: that pass costs the same
            wanted = kept is not None and not (shift == 0 and n_aggs > 1)
            scanned = extra_max is not None or window is not None  # a pass is made anyway
            top, wkeys, totals = _cursor_scan(
                ctx, t, extra_max, window, lo_all if wanted and scanned else None
            )
            upserts.update(wkeys)
            u_new = _absent_in_target(ctx, t, upserts)
            expected = _expected(tagg, u_new, lo_all, shift, n_aggs)
            if wanted and not scanned and _count_matches(ctx, t, expected):
                # the count (read from the b-tree's pages, ten times cheaper than the sums'
                # pass) leaves the sums to decide; a differing count decides alone
                totals = _cursor_scan(ctx, t, None, None, lo_all)[2]
            if totals is not None and _totals_match(totals, shift, expected):
                sagg = {r: a for r, a in expected.items() if a[0]}  # no key went missing
            else:
                sagg = _source_ranges(ctx, t, lo_all, shift, None)[0]
    except _NotIntegers:
        if window is not None:
            upserts.update(_window_keys(ctx, t, window))
        diff = _shipped_key_diff(ctx, t, upserts)
        diff.extra_max = _cursor_scan(ctx, t, extra_max, None)[0]
        return diff
    if kept is not None and len(sagg) > 4 * (sum(a[0] for a in sagg.values()) // RANGE_ROWS) + 1024:
        # the keys moved far from the kept layout: start a new one (state from PostgreSQL)
        lo_all, shift = _layout(ctx, t)
        tagg = _target_ranges(ctx, t, lo_all, shift)
        sagg = _source_ranges(ctx, t, lo_all, shift, None)[0]
        expected = _expected(tagg, u_new, lo_all, shift, n_aggs)
    keep = sagg  # the source's own aggregates, squares and all: the next run's state
    expected, sagg = _same_width(t, expected, sagg)
    zero = [0] * _width(sagg, t)
    candidates: list[tuple[int, Key]] = []
    listed: list[int] = []
    for r in expected.keys() | sagg.keys():
        ta, sa = expected.get(r, zero), sagg.get(r, zero)
        if ta == sa:
            continue
        named = _named_keys(ta, sa, lo_all + (r << shift), n_aggs)
        if named is None:
            listed.append(r)
        else:
            candidates.extend((r, k) for k in named)
    found, not_so = _one_short(ctx, t, candidates, upserts)
    unsure, confirmed = set(not_so), set(found)
    listed.extend(unsure)  # a range is listed whole when one of its keys is not confirmed
    deleted = [k for r, k in candidates if r not in unsure and k in confirmed]
    missing: list[Key] = []
    if listed:
        width = 1 << shift
        small: list[Box] = []  # listed key by key: cheaper than a bisection's round trips
        large: list[Box] = []
        for r in sorted(set(listed)):
            lo = lo_all + (r << shift)
            box = Box(lo, min(lo + width - 1, MAX_KEY))
            sa, ta = sagg.get(r, zero), expected.get(r, zero)
            fits = 0 <= sa[0] <= LIST_ROWS and 0 <= ta[0] <= LIST_ROWS
            (small if fits else large).append(box)
        for i in range(0, len(small), 500):
            d, m = _list_boxes(ctx, t, small[i : i + 500], upserts)
            deleted.extend(d)
            missing.extend(m)
        d, m = _bisect(ctx, t, large, u_new, upserts)
        deleted.extend(d)
        missing.extend(m)
    rows = sum(a[0] for a in sagg.values() if a[0] > 0)
    if any(a[0] < 0 for a in sagg.values()):
        rows = source_count(ctx.sconn, t)

    def save(cur: Cursor) -> None:
        _save_ranges(ctx, t, cur, lo_all, shift, keep)

    return KeyDiff(deleted, missing, source_rows=rows, extra_max=top, save=save)


def _expected(
    tagg: dict[int, Agg], u_new: list[Key], lo_all: int, shift: int, n_aggs: int
) -> dict[int, Agg]:
    """The target's aggregates with the keys this run copies anyway counted in."""
    expected = {r: list(a) for r, a in tagg.items()}
    width = max((len(a) for a in tagg.values()), default=1 + n_aggs)
    for k in u_new:
        v0 = int(k[0])  # type: ignore[call-overload]
        r = (v0 - lo_all) >> shift
        agg = expected.setdefault(r, [0] * width)
        if agg[0] < 0:
            continue
        agg[0] += 1
        agg[1] += v0 - (lo_all + (r << shift))
        for j, v in enumerate(k[1:]):
            agg[2 + j] += int(v)  # type: ignore[call-overload]
        if width > 1 + n_aggs:  # the squares of a two-column key's second column
            agg[3] += int(k[1]) ** 2  # type: ignore[call-overload]
    return expected


def _count_matches(ctx: Context, t: TablePlan, expected: dict[int, Agg]) -> bool:
    """The source's row count equals the expected one (all ranges' counts known)."""
    counts = [a[0] for a in expected.values()]
    return min(counts, default=0) >= 0 and source_count(ctx.sconn, t) == sum(counts)


def _totals_match(have: list[int], shift: int, expected: dict[int, Agg]) -> bool:
    """The cheap check first: the whole table's count and key sums (``have``, taken in the
    cursor's scan) equal the expected ones (so no range can differ but by keys that cancel
    out, which takes rows the cursor did not select)."""
    if any(a[0] < 0 for a in expected.values()):
        return False
    want = [0] * len(have)
    for r, a in expected.items():
        want[0] += a[0]
        want[1] += a[1] + a[0] * (r << shift)
        for j in range(2, len(want)):
            want[j] += a[j]
    return have == want


def _absent_in_target(ctx: Context, t: TablePlan, keys: set[Key]) -> list[Key]:
    if not keys:
        return []
    present = _present_in_target(ctx, t, list(keys))
    return [k for k in keys if k not in present]


def _present_in_target(ctx: Context, t: TablePlan, keys: list[Key]) -> set[Key]:
    """Which of these integer keys the target holds."""
    tcols = pk_target(t)
    found: set[Key] = set()
    arrays = ", ".join("%s::bigint[]" for _ in tcols)
    on = " AND ".join(f"t.{pqi(c)} = u.c{j}" for j, c in enumerate(tcols))
    names = ", ".join(f"c{j}" for j in range(len(tcols)))
    for i in range(0, len(keys), 50_000):
        chunk = keys[i : i + 50_000]
        # array literals: psycopg's list dumper costs more than the lookups it feeds
        params = [
            "{" + ",".join([str(int(k[j])) for k in chunk]) + "}"  # type: ignore[call-overload]
            for j in range(len(tcols))
        ]
        ctx.cur.execute(
            f"SELECT {', '.join('t.' + pqi(c) for c in tcols)} FROM unnest({arrays}) AS u({names}) "
            f"JOIN {ctx.target(t)} t ON {on}",
            params,
        )
        found.update(tuple(r) for r in ctx.cur.fetchall())
    return found


@dataclass(frozen=True)
class Box:
    """Keys with lo0 <= first column <= hi0 (and lo1 <= second column <= hi1, if set)."""

    lo0: int
    hi0: int
    lo1: int | None = None
    hi1: int | None = None

    def where(self, cols: Sequence[str], mark: str) -> tuple[str, list[int]]:
        if self.lo0 == self.hi0:  # an equality lets SQLite seek on the second column too
            sql, params = f"{cols[0]} = {mark}", [self.lo0]
        else:
            sql, params = f"{cols[0]} BETWEEN {mark} AND {mark}", [self.lo0, self.hi0]
        if self.lo1 is not None and self.hi1 is not None:
            sql += f" AND {cols[1]} BETWEEN {mark} AND {mark}"
            params += [self.lo1, self.hi1]
        return sql, params

    def holds(self, k: Key) -> bool:
        v0 = k[0]
        if not isinstance(v0, int) or not self.lo0 <= v0 <= self.hi0:
            return False
        if self.lo1 is None or self.hi1 is None:
            return True
        v1 = k[1]
        return isinstance(v1, int) and self.lo1 <= v1 <= self.hi1


SPLIT_BITS = 4  # a differing range is cut into 16
MANY_BUCKETS = 2000  # more differing buckets than this (and a quarter): compare the table whole
SMALL_RANGE = 64  # ranges this small are compared key by key


def _bisect(
    ctx: Context, t: TablePlan, boxes: list[Box], u_new: list[Key], upserts: set[Key]
) -> tuple[list[Key], list[Key]]:
    """Narrow differing key ranges down: each is cut into 16 (on the first key column, or on
    the second when the first is a single value), both sides aggregate the pieces (count and
    sums, PostgreSQL live, one query per step for all the ranges), a piece one row short names
    its key, small or uncuttable pieces are compared key by key. Cost follows the differences,
    not the size of the ranges."""
    two = len(pk_source(t)) == 2
    news = sorted(tuple(int(v) for v in k) for k in u_new)  # type: ignore[call-overload]
    candidates: list[tuple[Box, Key]] = []
    to_list: list[Box] = []
    work = boxes
    while work:
        if two:
            work = _with_second_bounds(ctx, t, work)
        cuts: list[_Cut] = []
        for box in work:
            cut = _cut(box, two)
            if cut is None:
                to_list.append(box)
            else:
                cuts.append(cut)
        tgt = _target_pieces(ctx, t, cuts)
        work = []
        for i, cut in enumerate(cuts):
            src = _source_pieces(ctx, t, cut)
            if src is None:
                to_list.append(cut.box)
                continue
            pieces = tgt.get(i, {})
            for k in _keys_in(news, cut.box):
                cut.count_in(pieces, k, two)
            for sub, sa, ta in cut.differing(src, pieces, two):
                if ta[0] - sa[0] == 1 and len(pk_source(t)) <= 2:
                    key: Key = (cut.box.lo0 + ta[1] - sa[1],)
                    if two:
                        key = (*key, cut.base1 + ta[2] - sa[2])
                    candidates.append((sub, key))
                elif max(sa[0], ta[0]) <= SMALL_RANGE:
                    to_list.append(sub)
                else:
                    work.append(sub)
    deleted, not_so = _one_short(ctx, t, candidates, upserts)
    to_list.extend(not_so)
    missing: list[Key] = []
    for i in range(0, len(to_list), 500):
        d, m = _list_boxes(ctx, t, to_list[i : i + 500], upserts)
        deleted.extend(d)
        missing.extend(m)
    return deleted, missing


@dataclass(frozen=True)
class _Cut:
    """A differing box cut into pieces of ``1 << shift`` values of key column ``j``."""

    box: Box
    j: int
    lo: int
    hi: int
    shift: int

    @property
    def base1(self) -> int:
        return self.box.lo1 if self.box.lo1 is not None else 0

    def count_in(self, pieces: dict[int, Agg], k: tuple[int, ...], two: bool) -> None:
        """Add a key the target will hold after this run (copied anyway) to its piece."""
        agg = pieces.setdefault((k[self.j] - self.lo) >> self.shift, [0] * (2 + two))
        agg[0] += 1
        agg[1] += k[0] - self.box.lo0
        if two:
            agg[2] += k[1] - self.base1

    def differing(
        self, src: dict[int, Agg], tgt: dict[int, Agg], two: bool
    ) -> Iterator[tuple[Box, Agg, Agg]]:
        """The pieces whose aggregates differ, with the source's and the target's."""
        zero = [0] * (2 + two)
        for piece in src.keys() | tgt.keys():
            sa, ta = src.get(piece, zero), tgt.get(piece, zero)
            if sa == ta:
                continue
            p_lo = self.lo + (piece << self.shift)
            p_hi = min(p_lo + (1 << self.shift) - 1, self.hi)
            b = self.box
            yield (Box(p_lo, p_hi) if self.j == 0 else Box(b.lo0, b.hi0, p_lo, p_hi)), sa, ta


def _cut(box: Box, two: bool) -> _Cut | None:
    """Cut along the first column, or the second when the first is one value; None when the
    box holds a single key."""
    if box.lo0 < box.hi0:
        j, lo, hi = 0, box.lo0, box.hi0
    elif two and box.lo1 is not None and box.hi1 is not None and box.lo1 < box.hi1:
        j, lo, hi = 1, box.lo1, box.hi1
    else:
        return None
    return _Cut(box, j, lo, hi, max(0, (hi - lo).bit_length() - SPLIT_BITS))


def _keys_in(news: list[tuple[int, ...]], box: Box) -> Iterator[tuple[int, ...]]:
    """The keys of ``news`` (sorted) inside ``box``, found by bisection."""
    start = (box.lo0,) if box.lo1 is None else (box.lo0, box.lo1)
    for i in range(bisect_left(news, start), len(news)):
        k = news[i]
        if k[0] > box.hi0:
            break
        if box.holds(k):
            yield k


def _source_pieces(ctx: Context, t: TablePlan, cut: _Cut) -> dict[int, Agg] | None:
    """The source's count and key sums per piece; None when a sum overflows."""
    s_cols = [qi(c) for c in pk_source(t)]
    two = len(s_cols) == 2
    where, params = cut.box.where(s_cols, "?")
    sums = f", sum({s_cols[1]} - ?)" if two else ""
    try:
        return {
            int(r[0]): [int(v or 0) for v in r[1:]]
            for r in ctx.sconn.execute(
                f"SELECT ({s_cols[cut.j]} - ?) >> {cut.shift}, count(*), sum({s_cols[0]} - ?)"
                f"{sums} FROM {qi(t.source.name)} WHERE {where} GROUP BY 1",
                [cut.lo, cut.box.lo0, *([cut.base1] if two else []), *params],
            )
        }
    except (sqlite3.OperationalError, OverflowError):
        return None


def _box_join(tcols: Sequence[str]) -> str:
    """Target rows ``t`` inside the boxes ``u(lo0, hi0, lo1, hi1)``. The row comparisons let
    the index start and stop at a box's corners; a range on the first column alone would read
    every key of a first-column value."""
    on = f"t.{tcols[0]} BETWEEN u.lo0 AND u.hi0"
    if len(tcols) == 2:
        pair = f"(t.{tcols[0]}, t.{tcols[1]})"
        on += (
            f" AND t.{tcols[1]} BETWEEN u.lo1 AND u.hi1"
            f" AND {pair} >= (u.lo0, u.lo1) AND {pair} <= (u.hi0, u.hi1)"
        )
    return on


def _box_arrays(boxes: Sequence[Box]) -> list[list[int]]:
    return [
        [b.lo0 for b in boxes],
        [b.hi0 for b in boxes],
        [b.lo1 if b.lo1 is not None else -(2**63) for b in boxes],
        [b.hi1 if b.hi1 is not None else MAX_KEY for b in boxes],
    ]


def _target_pieces(ctx: Context, t: TablePlan, cuts: list[_Cut]) -> dict[int, dict[int, Agg]]:
    """The target's count and key sums per piece of every cut, in one query; by cut index.
    Offsets are taken in bigint when no cut is wider than bigint holds (numeric is several
    times slower over millions of keys), and the sums' offsets in Python."""
    if not cuts:
        return {}
    tcols = [pqi(c) for c in pk_target(t)]
    two = len(tcols) == 2
    col = f"CASE WHEN u.j = 0 THEN t.{tcols[0]} ELSE t.{tcols[1]} END" if two else f"t.{tcols[0]}"
    if all(c.hi - c.lo <= MAX_KEY for c in cuts):
        piece = f"({col} - u.lo::bigint) / u.w::bigint"
    else:
        piece = f"div({col}::numeric - u.lo, u.w)"
    sums = f", sum(t.{tcols[1]})" if two else ""
    ctx.cur.execute(
        f"SELECT u.i, {piece}, count(*), sum(t.{tcols[0]}){sums} "
        "FROM unnest(%s::int[], %s::int[], %s::numeric[], %s::numeric[], %s::bigint[], "
        "%s::bigint[], %s::bigint[], %s::bigint[]) AS u(i, j, lo, w, lo0, hi0, lo1, hi1) "
        f"JOIN {ctx.target(t)} t ON {_box_join(tcols)} GROUP BY 1, 2",
        (
            list(range(len(cuts))),
            [c.j for c in cuts],
            [c.lo for c in cuts],
            [1 << c.shift for c in cuts],
            *_box_arrays([c.box for c in cuts]),
        ),
    )
    out: dict[int, dict[int, Agg]] = {}
    for i, p, n, *sums_ in ctx.cur.fetchall():
        c = cuts[int(i)]
        agg = [int(n), int(sums_[0]) - int(n) * c.box.lo0]
        if two:
            agg.append(int(sums_[1]) - int(n) * c.base1)
        out.setdefault(int(i), {})[int(p)] = agg
    return out


def _with_second_bounds(ctx: Context, t: TablePlan, boxes: list[Box]) -> list[Box]:
    """Boxes of one first-column value bounded on the second column by what either side holds
    (PostgreSQL asked once for all of them); such boxes with no rows on either side dropped."""
    bare = [b.lo0 for b in boxes if b.lo0 == b.hi0 and b.lo1 is None]
    if not bare:
        return boxes
    c0, c1 = qi(pk_source(t)[0]), qi(pk_source(t)[1])
    p0, p1 = pqi(pk_target(t)[0]), pqi(pk_target(t)[1])
    target = ctx.target(t)
    ctx.cur.execute(
        f"SELECT u.v, (SELECT min({p1}) FROM {target} WHERE {p0} = u.v), "
        f"(SELECT max({p1}) FROM {target} WHERE {p0} = u.v) FROM unnest(%s::bigint[]) AS u(v)",
        (bare,),
    )
    t_bounds = {int(v): (lo, hi) for v, lo, hi in ctx.cur.fetchall()}
    q = f"SELECT min({c1}), max({c1}) FROM {qi(t.source.name)} WHERE {c0} = ?"
    out: list[Box] = []
    for b in boxes:
        if b.lo0 != b.hi0 or b.lo1 is not None:
            out.append(b)
            continue
        s_lo, s_hi = ctx.sconn.execute(q, (b.lo0,)).fetchone()
        lows = [v for v in (s_lo, t_bounds[b.lo0][0]) if isinstance(v, int)]
        highs = [v for v in (s_hi, t_bounds[b.lo0][1]) if isinstance(v, int)]
        if lows:
            out.append(Box(b.lo0, b.hi0, min(lows), max(highs)))
    return out


def _list_boxes(
    ctx: Context, t: TablePlan, boxes: list[Box], upserts: set[Key]
) -> tuple[list[Key], list[Key]]:
    """Both sides' keys in the given (small) boxes, compared in Python."""
    scols = [qi(c) for c in pk_source(t)]
    tcols = [pqi(c) for c in pk_target(t)]
    source: set[Key] = set()
    target: set[Key] = set()
    for box in boxes:
        where, params = box.where(scols, "?")
        source.update(
            tuple(r)
            for r in ctx.sconn.execute(
                f"SELECT {', '.join(scols)} FROM {qi(t.source.name)} WHERE {where}", params
            )
        )
    ctx.cur.execute(
        f"SELECT {', '.join('t.' + c for c in tcols)} FROM unnest(%s::bigint[], %s::bigint[], "
        f"%s::bigint[], %s::bigint[]) AS u(lo0, hi0, lo1, hi1) JOIN {ctx.target(t)} t "
        f"ON {_box_join(tcols)}",
        _box_arrays(boxes),
    )
    target = {tuple(r) for r in ctx.cur.fetchall()}
    deleted = sorted(target - source, key=repr)
    missing = sorted((k for k in source - target if k not in upserts), key=repr)
    return deleted, missing


def _alias(t: TablePlan) -> bool:
    """The primary key is the rowid: a bucket's keys are its rowids, found in the target."""
    return t.source.rowid_alias is not None and list(t.source.primary_key) == [t.source.rowid_alias]


def bucket_reader(
    sconn: sqlite3.Connection, t: TablePlan, *, profiled: bool = False
) -> BucketReader:
    """``profiled``: ``t``'s profile is of this snapshot (see :func:`proven_clean`)."""
    cols = copied_source_columns(t)
    reals = [c.source.name for c in t.copy_columns if realish(c.source.declared_type)]
    if not profiled:
        return BucketReader(sconn, t.source.name, cols, pk_source(t), reals)
    clean, ints = proven_clean(t), proven_integers(t)
    return BucketReader(sconn, t.source.name, cols, pk_source(t), reals, clean, ints)


_INTEGER_KINDS = frozenset({"bigint", "integer", "smallint"})
_PLAIN_KINDS = _INTEGER_KINDS | {"text", "varchar"}


def proven_clean(t: TablePlan) -> tuple[str, ...]:
    """Source columns that the plan's full-table profile shows to hold no REAL and no BLOB.

    Only for a plan profiled in the snapshot being fingerprinted (the full load's): integer
    and text types count a value of another storage class as dirty, and an untyped column
    counts its REALs and BLOBs."""
    clean = []
    for c in t.copy_columns:
        prof = t.profiles.get(c.source.name)
        if (
            prof is not None
            and c.type.kind in _PLAIN_KINDS
            and prof.dirty == prof.reals == prof.blobs == 0
        ):
            clean.append(c.source.name)
    return tuple(clean)


def proven_integers(t: TablePlan) -> tuple[str, ...]:
    """Source columns that the plan's full-table profile shows to hold integers only, never
    NULL (an integer type counts a value of any other storage class as dirty); as for
    :func:`proven_clean`, only for a plan profiled in the snapshot being read."""
    return tuple(
        c.source.name
        for c in t.copy_columns
        if c.type.kind in _INTEGER_KINDS
        and (prof := t.profiles.get(c.source.name)) is not None
        and prof.nulls == prof.dirty == prof.reals == prof.blobs == 0
    )


def _bucket_rows(ctx: Context, t: TablePlan) -> Iterator[Bucket]:
    found = ctx.pre.records(t) if ctx.pre is not None else None
    if found is not None:
        yield from found
        return
    reader = bucket_reader(ctx.sconn, t)
    yield from reader.hashes(with_keys=not _alias(t))


class Precomputed:
    """The hash tables' bucket fingerprints for a full load's state, computed while this
    process is busy elsewhere: the larger tables by a helper process (see :mod:`fingerprints`)
    that starts before the copy, the others in a thread while PostgreSQL builds indexes and
    foreign keys (the snapshot's SQLite connection is idle then; sqlite3 releases the GIL
    while SQLite works). Spooled to temporary files, so memory stays flat; the caller must not
    use the connection between :meth:`start` and :meth:`join`."""

    def __init__(self, sconn: sqlite3.Connection, tables: Sequence[TablePlan]) -> None:
        self.sconn = sconn
        self.jobs = {j.table: j for j in hash_jobs(sconn, tables, profiled=True)}
        self.helper = Helper(sconn, list(self.jobs.values()), share=1.0, background=True)
        self.files: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def start(self, tables: Sequence[TablePlan]) -> None:
        """Fingerprint the tables the helper does not do, in a thread."""
        mine = [t for t in tables if t.source.name in self.jobs and not self._helped(t)]
        self.thread = threading.Thread(
            target=self._run, args=(mine,), name="sqlite2pg-buckets", daemon=True
        )
        self.thread.start()

    def _helped(self, t: TablePlan) -> bool:
        """The helper took this table, with the columns it was created with."""
        return t.source.name in self.helper.jobs and self.jobs[t.source.name] == table_job(
            self.sconn, t, self.jobs[t.source.name].rows, profiled=True
        )

    def _run(self, tables: Sequence[TablePlan]) -> None:
        try:
            for t in tables:
                f = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
                self.files[t.source.name] = f
                reader = bucket_reader(self.sconn, t, profiled=True)
                write_buckets(f, reader.hashes(with_keys=not _alias(t)))
        except BaseException as exc:  # re-raised in the caller's thread by join()
            self.error = exc

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error

    def records(self, t: TablePlan) -> Iterator[Bucket] | None:
        """The table's buckets in order, or None: compute them in place."""
        if t.source.name in self.files:
            return read_buckets(self.files[t.source.name])
        return self.helper.buckets(t.source.name) if self._helped(t) else None

    def close(self) -> None:
        self.helper.close()
        for f in self.files.values():
            f.close()


def table_job(
    sconn: sqlite3.Connection, t: TablePlan, rows: int | None = None, *, profiled: bool = False
) -> Job:
    """What fingerprinting ``t`` takes (``rows``: its size, read from the b-tree if None;
    ``profiled``: ``t``'s profile is of this snapshot, see :func:`proven_clean`)."""
    if rows is None:
        top = sconn.execute(f"SELECT max(rowid) FROM {qi(t.source.name)}").fetchone()[0]
        rows = top if isinstance(top, int) else 0
    reals = tuple(c.source.name for c in t.copy_columns if realish(c.source.declared_type))
    columns, keys = tuple(copied_source_columns(t)), tuple(pk_source(t))
    clean, ints = (proven_clean(t), proven_integers(t)) if profiled else ((), ())
    return Job(t.source.name, columns, keys, reals, not _alias(t), rows, clean, ints)


def hash_jobs(
    sconn: sqlite3.Connection, tables: Sequence[TablePlan], *, profiled: bool = False
) -> list[Job]:
    """The fingerprinting work of the tables the hash strategy compares by bucket."""
    return [
        table_job(sconn, t, profiled=profiled)
        for t in tables
        if t.source.primary_key and has_rowid(t) and strategy_for(t).name == "hash"
    ]


def fingerprint_helper(ctx: Context, tables: Sequence[TablePlan]) -> Helper:
    """Start fingerprinting the larger of ``tables`` that the hash strategy compares by
    bucket, in a helper process (see :mod:`fingerprints`); the rest stay with the caller."""
    jobs = [replace(j, with_keys=False) for j in hash_jobs(ctx.sconn, tables)]
    return Helper(ctx.sconn, jobs)


class HashStrategy:
    """Bucket fingerprints compared with the last sync's; differing 16-row sub-buckets re-read.

    A bucket's keys are kept with its fingerprint (to find deleted rows), except when the
    primary key is the rowid: then the target's keys in the bucket's range are the old keys.
    The comparison streams both sides in bucket order: memory grows with the changes only."""

    name: ClassVar[str] = "hash"
    COPY = (
        f"COPY {STATE_SCHEMA}.hash_buckets (target_schema, source_table, bucket, h, n, keys, sub) "
        "FROM STDIN"
    )

    def _reader(self, ctx: Context, t: TablePlan) -> BucketReader:
        return bucket_reader(ctx.sconn, t)

    def initial(self, ctx: Context, t: TablePlan, rejected: int) -> str | None:
        if not has_rowid(t):
            return None  # compared whole every run
        ensure_state(ctx.cur)
        ctx.cur.execute(
            f"DELETE FROM {STATE_SCHEMA}.hash_buckets WHERE target_schema = %s "
            "AND source_table = %s",
            (ctx.schema, t.source.name),
        )
        retry: set[int] = set()
        if rejected:
            retry = _buckets_of(ctx.sconn, t, missing_in_target(ctx, t))
        with ctx.cur.copy(self.COPY) as cp:
            for b in _bucket_rows(ctx, t):
                again = b.bucket in retry
                cp.write_row(
                    (
                        ctx.schema,
                        t.source.name,
                        b.bucket,
                        None if again else b.h,
                        b.n,
                        b.keys or b"",
                        None if again else b.subs,
                    )
                )
        return None

    def _rebuild(self, ctx: Context, t: TablePlan, rejected: int) -> None:
        self.initial(ctx, t, rejected)

    def _stored(self, ctx: Context, t: TablePlan) -> Generator[tuple[int, int | None], None, None]:
        with ctx.cur.connection.cursor(name="sqlite2pg_buckets") as sc:
            sc.itersize = 20_000
            sc.execute(
                f"SELECT bucket, h FROM {STATE_SCHEMA}.hash_buckets "
                "WHERE target_schema = %s AND source_table = %s ORDER BY bucket",
                (ctx.schema, t.source.name),
            )
            for bucket, h in sc:
                yield int(bucket), h

    def detect(self, ctx: Context, t: TablePlan, prev: SyncedTable) -> Detected:
        if not has_rowid(t):
            return CompareStrategy().detect(ctx, t, prev)
        ensure_state(ctx.cur)
        # merge the stored and the current fingerprints, both in bucket order
        ctx.cur.execute(
            f"SELECT count(*) FROM {STATE_SCHEMA}.hash_buckets "
            "WHERE target_schema = %s AND source_table = %s",
            (ctx.schema, t.source.name),
        )
        row = ctx.cur.fetchone()
        limit = max(MANY_BUCKETS, int(row[0] if row else 0) // 4)
        changed: dict[int, Bucket | None] = {}  # differing bucket -> now (None: no rows now)
        total = 0
        stored = self._stored(ctx, t)
        found = ctx.helper.buckets(t.source.name) if ctx.helper is not None else None
        now = found if found is not None else self._reader(ctx, t).hashes()
        s_item = next(stored, None)
        n_item = next(now, None)
        while s_item is not None or n_item is not None:
            if len(changed) > limit:
                # most of the table looks changed (rowids renumbered by VACUUM, a bulk
                # update, a new column): compare it whole, memory-flat, and start over
                stored.close()
                now.close()
                det = CompareStrategy().detect(ctx, t, prev)
                det.notes.append(
                    f"{t.source.name}: most buckets differ from the last sync (bulk change or "
                    "renumbered rowids): table compared whole"
                )
                det.save = lambda cur, rejected: self._rebuild(ctx, t, len(rejected))
                return det
            if n_item is None or (s_item is not None and s_item[0] < n_item.bucket):
                assert s_item is not None
                changed[s_item[0]] = None
                s_item = next(stored, None)
                continue
            total += n_item.n
            if s_item is None or n_item.bucket < s_item[0]:
                changed[n_item.bucket] = n_item
            else:
                if s_item[1] is None or s_item[1] != n_item.h:
                    changed[n_item.bucket] = n_item
                s_item = next(stored, None)
            n_item = next(now, None)
        det = Detected(source_rows=total)
        if not changed:
            return det
        differing = sorted(changed)
        ctx.cur.execute(
            f"SELECT h.bucket, h.sub, {'NULL' if _alias(t) else 'h.keys'} FROM "
            f"unnest(%s::bigint[]) AS d(b) JOIN {STATE_SCHEMA}.hash_buckets h ON h.bucket = d.b "
            "AND h.target_schema = %s AND h.source_table = %s",
            (differing, ctx.schema, t.source.name),
        )
        old_subs: dict[int, tuple[tuple[int, ...], tuple[int, ...]] | None] = {}
        old_key_texts: dict[int, bytes] = {}
        for bucket, sub, keys in ctx.cur.fetchall():
            old_subs[int(bucket)] = unpack_subs(bytes(sub) if sub is not None else None)
            if keys:
                old_key_texts[int(bucket)] = bytes(keys)
        # the 16-row sub-buckets that differ (all of a bucket's without a usable old state)
        subs: list[int] = []
        old_keys: set[Key] = set()
        for b in differing:
            item = changed[b]
            now_state = unpack_subs(item.subs) if item is not None else None
            before = old_subs.get(b)
            diff_idx = [
                i
                for i in range(SUBS)
                if before is None or (now_state[0][i] if now_state else 0) != before[0][i]
            ]
            subs.extend((b << (BUCKET_BITS - SUB_BITS)) + i for i in diff_idx)
            if b in old_key_texts:  # the old keys of just those sub-buckets
                keys = parse_keys(old_key_texts.pop(b))
                if before is None:
                    old_keys.update(keys)
                    continue
                starts = [0]
                for c in before[1]:
                    starts.append(starts[-1] + c)
                for i in diff_idx:
                    old_keys.update(keys[starts[i] : starts[i + 1]])
        reader = self._reader(ctx, t)
        now_keys: set[Key] = set()
        for keys in reader.sub_keys(subs).values():
            now_keys.update(parse_keys(keys))
        if _alias(t):
            # old keys: the target's, in those sub-buckets' rowid ranges (the key is the rowid)
            pk = pqi(pk_target(t)[0])
            ctx.cur.execute(
                f"SELECT t.{pk} FROM unnest(%s::bigint[]) AS b(n) JOIN {ctx.target(t)} t "
                f"ON t.{pk} BETWEEN b.n << {SUB_BITS} AND (b.n << {SUB_BITS}) + {SUB_ROWS - 1}",
                (subs,),
            )
            old_keys = {(int(r[0]),) for r in ctx.cur.fetchall()}
            det.deletes = sorted(old_keys - now_keys, key=repr)
        else:
            det.deletes = to_target_keys(t, sorted(old_keys - now_keys, key=repr))
        for i in range(0, len(subs), 20_000):
            det.selections.append(
                (
                    " WHERE rowid IN (SELECT s.rowid FROM json_each(?) AS b "
                    f"JOIN {qi(t.source.name)} "
                    f"AS s ON s.rowid BETWEEN b.value << {SUB_BITS} AND "
                    f"(b.value << {SUB_BITS}) + {SUB_ROWS - 1})",
                    (json.dumps(subs[i : i + 20_000]),),
                )
            )

        def save(cur: Cursor, rejected: list[Key]) -> None:
            retry = _buckets_of(ctx.sconn, t, rejected)
            cur.execute(
                f"DELETE FROM {STATE_SCHEMA}.hash_buckets h USING unnest(%s::bigint[]) AS d(b) "
                "WHERE h.target_schema = %s AND h.source_table = %s AND h.bucket = d.b",
                (differing, ctx.schema, t.source.name),
            )
            present = [b for b in differing if changed[b] is not None]
            with cur.copy(self.COPY) as cp:
                for i in range(0, len(present), 1000):
                    chunk = present[i : i + 1000]
                    keys = {} if _alias(t) else reader.keys_of(chunk)
                    for b in chunk:
                        item = changed[b]
                        assert item is not None
                        again = b in retry
                        cp.write_row(
                            (
                                ctx.schema,
                                t.source.name,
                                b,
                                None if again else item.h,
                                item.n,
                                keys.get(b, b""),
                                None if again else item.subs,
                            )
                        )

        det.save = save
        return det


def _buckets_of(sconn: sqlite3.Connection, t: TablePlan, keys: Sequence[Key]) -> set[int]:
    if not keys:
        return set()
    cols = pk_source(t)
    out: set[int] = set()
    cond = " AND ".join(f"{qi(c)} IS ?" for c in cols)
    for k in keys:
        row = sconn.execute(
            f"SELECT rowid FROM {qi(t.source.name)} WHERE {cond}", tuple(k)
        ).fetchone()
        if row is not None:
            out.add(int(row[0]) >> BUCKET_BITS)
    return out


class CompareStrategy:
    """Every row staged; PostgreSQL keeps only real differences. The fallback when nothing
    cheaper is known to be exact (WITHOUT ROWID under hash, a strategy change, a new column,
    ``full`` on a table with a primary key)."""

    name: ClassVar[str] = "full"

    def initial(self, ctx: Context, t: TablePlan, rejected: int) -> str | None:
        return None

    def detect(self, ctx: Context, t: TablePlan, prev: SyncedTable) -> Detected:
        return Detected(selections=[("", ())], compare=True, source_rows=source_count(ctx.sconn, t))


class FullStrategy:
    """Tables without a primary key: replaced whole, unless their fingerprint is unchanged.
    Tables with one: compared whole (same result, but writes only the differences)."""

    name: ClassVar[str] = "full"

    def _fingerprint(self, ctx: Context, t: TablePlan) -> str | None:
        if t.source.primary_key or not has_rowid(t):
            return None
        reals = [c.source.name for c in t.copy_columns if realish(c.source.declared_type)]
        return table_fingerprint(ctx.sconn, t.source.name, copied_source_columns(t), reals)

    def initial(self, ctx: Context, t: TablePlan, rejected: int) -> str | None:
        if rejected:
            return None
        fp = self._fingerprint(ctx, t)
        return None if fp is None else json.dumps(fp)

    def detect(self, ctx: Context, t: TablePlan, prev: SyncedTable) -> Detected:
        if t.source.primary_key:
            return CompareStrategy().detect(ctx, t, prev)
        fp = self._fingerprint(ctx, t)
        hw = None if fp is None else json.dumps(fp)
        if hw is not None and prev.high_water == hw and prev.strategy == self.name:
            n = int(fp.split(":", 1)[0]) if fp else 0
            return Detected(high_water=hw, source_rows=n)
        det = Detected(
            selections=[("", ())],
            reload=True,
            high_water=hw,
            source_rows=source_count(ctx.sconn, t),
        )

        def save(cur: Cursor, rejected: list[Key]) -> None:
            if rejected:
                det.high_water = None  # rows were rejected: reload again next run

        det.save = save
        return det


class _CursorStrategy:
    """Shared by ``timestamp`` and ``append``: a high-water mark plus key-set deletes."""

    name: ClassVar[str] = ""
    same_scan: ClassVar[bool] = False  # find the window's rows in the key comparison's scan

    def column(self, t: TablePlan) -> str:
        raise NotImplementedError

    def high_water(self, ctx: Context, t: TablePlan) -> object:
        row = ctx.sconn.execute(
            f"SELECT max({qi(self.column(t))}) FROM {qi(t.source.name)}"
        ).fetchone()
        return None if row is None else row[0]

    def window(self, ctx: Context, t: TablePlan, prev_hw: object) -> tuple[str, tuple[object, ...]]:
        raise NotImplementedError

    def extra_max(self, t: TablePlan) -> str | None:
        """The cursor column, when its maximum should come with the key comparison's scan."""
        return None

    def scanned_max(self, ctx: Context, t: TablePlan) -> str | None:
        """:meth:`extra_max`, unless an index on the cursor column answers max() without a
        scan (then the high-water mark is read from the index)."""
        col = self.extra_max(t)
        if col is None or searches_index(
            ctx.sconn, f"SELECT max({qi(col)}) FROM {qi(t.source.name)}", ()
        ):
            return None
        return col

    def _high_water(
        self, ctx: Context, t: TablePlan, diff: KeyDiff | None, scanned: str | None
    ) -> object:
        if diff is not None and scanned is not None:
            return diff.extra_max
        return self.high_water(ctx, t)

    def initial(self, ctx: Context, t: TablePlan, rejected: int) -> str | None:
        self.column(t)  # validates
        ensure_state(ctx.cur)
        ctx.cur.execute(
            f"DELETE FROM {STATE_SCHEMA}.key_ranges WHERE target_schema = %s AND source_table = %s",
            (ctx.schema, t.source.name),
        )
        diff: KeyDiff | None = None
        scanned = self.scanned_max(ctx, t)
        if integer_key(t) and not rejected:
            # the target holds exactly the source's keys: keep the source's range aggregates
            with lenient_text(ctx.sconn):
                lo, shift = _layout(ctx, t)
                try:
                    sagg, top, _ = _source_ranges(ctx, t, lo, shift, scanned)
                except _NotIntegers:
                    sagg = None
            if sagg is not None:
                _save_ranges(ctx, t, ctx.cur, lo, shift, sagg)
                diff = KeyDiff([], [], extra_max=top)
        elif rejected:
            diff = key_diff(ctx, t, set(), extra_max=scanned)
            if diff.save is not None:
                diff.save(ctx.cur)
        save_pending(ctx, t, diff.missing if diff is not None else [])
        return _json_value(self._high_water(ctx, t, diff, scanned))

    def detect(self, ctx: Context, t: TablePlan, prev: SyncedTable) -> Detected:
        ensure_state(ctx.cur)
        prev_hw = _from_json(prev.high_water)
        pending = load_pending(ctx, t)
        if prev_hw is not None:
            cond, params = self.window(ctx, t, prev_hw)
        else:  # the column was empty (or all NULL) at the last sync
            cond, params = "", ()
        where = f" WHERE {cond}" if cond else ""
        upserts: set[Key] = set()
        scanned = self.scanned_max(ctx, t)
        indexed = bool(cond) and _window_searched(ctx, t, cond, params)
        if cond and self.same_scan and integer_key(t) and not indexed:
            # the window's keys come with the key comparison's scan: one pass over the table
            diff = key_diff(ctx, t, upserts, extra_max=scanned, window=(cond, params))
        else:  # by an index on the cursor column (or every row: there is no window)
            with lenient_text(ctx.sconn):
                upserts = _window_keys(ctx, t, (cond, params))
            diff = key_diff(ctx, t, upserts, extra_max=scanned)
        det = Detected(
            high_water=_json_value(self._high_water(ctx, t, diff, scanned)),
            source_rows=diff.source_rows,
            deletes=diff.deleted,
        )
        retry = sorted({*pending, *diff.missing} - upserts, key=repr)
        if diff.missing:
            det.notes.append(
                f"{t.source.name}: {len(diff.missing)} row(s) the {self.name} cursor did not "
                "select were missing in the target and are copied now"
            )
        if indexed or len(upserts) > 50_000:  # read them by the cursor condition itself
            det.selections.append((where, params))
        else:  # few, found by a scan: read them by key, through the primary-key index
            retry = sorted({*retry, *upserts}, key=repr)
        det.selections.extend(where_keys(t, retry))

        def save(cur: Cursor, rejected: list[Key]) -> None:
            save_pending(ctx, t, rejected)
            if diff.save is not None:
                diff.save(cur)

        det.save = save
        return det


class TimestampStrategy(_CursorStrategy):
    """Rows whose cursor is at or after (last high-water mark - look-back), plus NULL cursors.

    The lower bound is also moved back a day and cut to a date for text timestamps, so that
    values written with 'T' or ' ', with or without fractions or offsets compare safely as
    text (and an index on the column can still be used). The exact bound is used instead when
    the index shows every value between the two to be plain text (see :func:`_plain_band`)."""

    name: ClassVar[str] = "timestamp"
    same_scan: ClassVar[bool] = True  # a cursor column rarely has an index: one pass, not two

    def column(self, t: TablePlan) -> str:
        col = t.strategy_column or timestamp_column(t.source)
        if col is None or col not in [c.name for c in t.source.columns]:
            raise PlanError(
                f"table {t.source.name!r}: strategy timestamp needs a column",
                f"set tables: {{{t.source.name}: {{strategy: timestamp, column: COLUMN}}}}",
            )
        return col

    def extra_max(self, t: TablePlan) -> str | None:
        return self.column(t)

    def window(self, ctx: Context, t: TablePlan, prev_hw: object) -> tuple[str, tuple[object, ...]]:
        name = self.column(t)
        col = qi(name)
        nulls = _null_term(t, name)
        lookback = ctx.cfg.table(t.source.name).lookback_seconds
        if isinstance(prev_hw, (int, float)) and not isinstance(prev_hw, bool):
            scale = 1000 if abs(prev_hw) > 100_000_000_000 else 1  # epoch milliseconds
            lo_num = prev_hw - (lookback + 86400) * scale
            return f"({col} >= ?{nulls})", (lo_num,)
        try:
            ts = parse_timestamp(str(prev_hw))
        except (Reject, ValueError):
            return "", ()  # not a timestamp: every row is looked at
        ts = ts.replace(tzinfo=None)
        lo = (ts - timedelta(seconds=lookback, days=1)).date().isoformat()
        if PLAIN_STAMP.fullmatch(str(prev_hw)):
            exact = (ts - timedelta(seconds=lookback)).strftime("%Y-%m-%d %H:%M:%S")
            if _plain_band(ctx, t, name, lo, exact):
                lo = exact
        return (
            f"({col} >= ?{nulls} OR {col} < '')",  # numbers sort before text
            (lo,),
        )


PLAIN_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?")
_DIGITS_19 = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"


def _plain_band(ctx: Context, t: TablePlan, name: str, lo: str, exact: str) -> bool:
    """Whether every cursor value from ``lo`` (the day's margin) up to ``exact`` (high-water
    mark - look-back) is plain 'YYYY-MM-DD HH:MM:SS[.fff]' text, answered through an index on
    the column (False without one: that would be a scan). Plain values sort as their instants,
    so a row below ``exact`` was stamped before the look-back, with or without the margin; a
    value with 'T', an offset or another form in the band keeps the margin."""
    col = f"{qi(name)} COLLATE BINARY"
    plain = (
        f"(length({col}) = 19 AND {col} GLOB '{_DIGITS_19}') OR (substr({col}, 1, 20) GLOB "
        f"'{_DIGITS_19}.' AND length({col}) > 20 AND substr({col}, 21) NOT GLOB '*[^0-9]*')"
    )
    query = (
        f"SELECT 1 FROM {qi(t.source.name)} WHERE {qi(name)} >= ? AND {qi(name)} < ? "
        f"AND NOT ({plain}) LIMIT 1"
    )
    params = (lo, exact)
    if not searches_index(ctx.sconn, query, params):
        return False
    return ctx.sconn.execute(query, params).fetchone() is None


def _null_term(t: TablePlan, col: str) -> str:
    """The window's part for NULL cursors, for a nullable column only. A column declared NOT
    NULL holds a NULL only in a file written with the constraint off; SQLite folds ``IS NULL``
    to false for it, and the target's column is NOT NULL too, so such a row is rejected
    (with its reason) and retried by key on every run until it has a value."""
    if next(c for c in t.source.columns if c.name == col).notnull:
        return ""
    return f" OR {qi(col)} IS NULL"


class AppendStrategy(_CursorStrategy):
    """Insert-only tables: rows whose growing integer key is above the last high-water mark."""

    name: ClassVar[str] = "append"

    def column(self, t: TablePlan) -> str:
        col = t.strategy_column
        if col is None:
            if len(t.source.primary_key) == 1 and integer_key(t):
                col = t.source.primary_key[0]
            else:
                raise PlanError(
                    f"table {t.source.name!r}: strategy append needs a growing integer column",
                    f"set tables: {{{t.source.name}: {{strategy: append, column: COLUMN}}}}",
                )
        if col not in [c.name for c in t.source.columns]:
            raise PlanError(f"table {t.source.name!r} has no column {col!r} for strategy append")
        return col

    def window(self, ctx: Context, t: TablePlan, prev_hw: object) -> tuple[str, tuple[object, ...]]:
        col = self.column(t)
        if col == t.source.rowid_alias:  # never NULL; the OR would cost a full scan
            return f"{qi(col)} > ?", (prev_hw,)
        return f"({qi(col)} > ? OR {qi(col)} IS NULL)", (prev_hw,)


class TriggersStrategy:
    """Keys recorded by AFTER INSERT/UPDATE/DELETE triggers in the source's change log."""

    name: ClassVar[str] = "triggers"

    def _position(self, ctx: Context) -> int | None:
        """The last sequence number the log handed out, as of the snapshot (AUTOINCREMENT
        keeps counting in sqlite_sequence after trimmed entries are gone)."""
        try:
            row = ctx.sconn.execute(f"SELECT max(seq) FROM {qi(CHANGE_LOG_TABLE)}").fetchone()
        except sqlite3.OperationalError:
            return None  # no change log
        counter = ctx.sconn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (CHANGE_LOG_TABLE,)
        ).fetchone()
        return max(int(row[0] or 0), int(counter[0]) if counter and counter[0] is not None else 0)

    def initial(self, ctx: Context, t: TablePlan, rejected: int) -> str | None:
        pos = self._position(ctx)
        if pos is None:
            raise SourceError(
                f"table {t.source.name!r} uses strategy triggers but the source has no change log",
                "this is a bug: the triggers are installed before the snapshot",
            )
        ensure_state(ctx.cur)
        save_pending(ctx, t, missing_in_target(ctx, t) if rejected else [])
        return json.dumps(pos)

    def detect(self, ctx: Context, t: TablePlan, prev: SyncedTable) -> Detected:
        ensure_state(ctx.cur)
        pos = self._position(ctx)
        prev_pos = _from_json(prev.high_water)
        if pos is None or not isinstance(prev_pos, int) or pos < prev_pos:
            det = CompareStrategy().detect(ctx, t, prev)
            det.high_water = json.dumps(pos or 0)
            det.save = lambda cur, rejected: save_pending(ctx, t, rejected)
            det.notes.append(
                f"{t.source.name}: change log not usable (new, reset or replaced source file): "
                "table compared whole"
            )
            return det
        keys: set[Key] = set()
        old = ctx.sconn.text_factory
        ctx.sconn.text_factory = bytes
        try:
            for (k,) in ctx.sconn.execute(
                f"SELECT DISTINCT key FROM {qi(CHANGE_LOG_TABLE)} "
                "WHERE tbl = ? AND seq > ? AND seq <= ?",
                (t.source.name, prev_pos, pos),
            ):
                keys.update(parse_keys(k))
        finally:
            ctx.sconn.text_factory = old
        keys.update(load_pending(ctx, t))
        det = Detected(high_water=json.dumps(pos), source_rows=source_count(ctx.sconn, t))
        if keys:
            ordered = sorted(keys, key=repr)
            present = existing_keys(ctx.sconn, t, ordered)
            det.selections = where_keys(t, sorted(present, key=repr))
            det.deletes = to_target_keys(t, [k for k in ordered if k not in present])
        det.save = lambda cur, rejected: save_pending(ctx, t, rejected)
        path, name = ctx.source_path, t.source.name

        def trim() -> None:
            trim_change_log(path, name, pos)

        det.after_commit = trim
        return det


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        HashStrategy(),
        TimestampStrategy(),
        AppendStrategy(),
        TriggersStrategy(),
        FullStrategy(),
    )
}


def strategy_for(t: TablePlan) -> Strategy:
    """The strategy that runs for ``t``: without a primary key only ``full`` can be exact."""
    if not t.source.primary_key:
        return STRATEGIES["full"]
    return STRATEGIES[t.strategy]


def effective_name(t: TablePlan) -> str:
    return strategy_for(t).name


# --------------------------------------------------------------------------- the full load


def initial_state(
    cur: Cursor,
    sconn: sqlite3.Connection,
    t: TablePlan,
    schema: str,
    cfg: Config,
    source_path: str,
    rejected: int,
    pre: Precomputed | None = None,
) -> str | None:
    """Called by the full load for every table it created, in its transaction and snapshot:
    writes what the table's strategy needs for the first incremental run."""
    ctx = Context(cur, sconn, schema, cfg, source_path, pre)
    return strategy_for(t).initial(ctx, t, rejected)


def precompute(sconn: sqlite3.Connection, tables: Sequence[TablePlan]) -> Precomputed:
    """Start computing the full load's hash state in a helper process (see Precomputed);
    :meth:`Precomputed.start` does the rest once the tables are loaded."""
    return Precomputed(sconn, tables)


def forget(cur: Cursor, schema: str, source_table: str) -> None:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{STATE_SCHEMA}.hash_buckets",))
    row = cur.fetchone()
    if not row or not row[0]:
        return
    for tbl in ("hash_buckets", "pending_rows", "key_ranges"):
        cur.execute(
            f"DELETE FROM {STATE_SCHEMA}.{tbl} WHERE target_schema = %s AND source_table = %s",
            (schema, source_table),
        )


# --------------------------------------------------------------------------- change-log triggers


def trigger_tables(catalog: SourceCatalog, cfg: Config) -> list[str]:
    return [
        t.name
        for t in catalog.tables
        if cfg.table(t.name).strategy == "triggers"
        and cfg.table(t.name).include
        and (cfg.include is None or t.name in cfg.include)
        and t.name not in cfg.exclude
    ]


def _trigger_sql(table: str, pk: Sequence[str]) -> list[str]:
    log = qi(CHANGE_LOG_TABLE)
    tbl = qi(table)
    lit = "'" + table.replace("'", "''") + "'"
    new_key = text_expr(pk, "NEW.")
    old_key = text_expr(pk, "OLD.")
    changed = " OR ".join(f"NEW.{qi(c)} IS NOT OLD.{qi(c)}" for c in pk)

    def name(op: str) -> str:
        return qi(f"_sqlite2pg_{table}_{op}")

    return [
        f"CREATE TRIGGER IF NOT EXISTS {name('ins')} AFTER INSERT ON {tbl} BEGIN "
        f"INSERT INTO {log} (tbl, key, op) VALUES ({lit}, {new_key}, 'I'); END",
        f"CREATE TRIGGER IF NOT EXISTS {name('upd')} AFTER UPDATE ON {tbl} BEGIN "
        f"INSERT INTO {log} (tbl, key, op) VALUES ({lit}, {new_key}, 'U'); "
        f"INSERT INTO {log} (tbl, key, op) SELECT {lit}, {old_key}, 'U' WHERE {changed}; END",
        f"CREATE TRIGGER IF NOT EXISTS {name('del')} AFTER DELETE ON {tbl} BEGIN "
        f"INSERT INTO {log} (tbl, key, op) VALUES ({lit}, {old_key}, 'D'); END",
    ]


def _rw(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def prepare_source(path: str, catalog: SourceCatalog, cfg: Config, warnings: list[str]) -> None:
    """Before the snapshot: install the change log and its triggers for ``triggers`` tables.

    This is the only time sqlite2pg writes to the source file (opt-in, reported). Installing
    before the snapshot means every change after the snapshot is in the log."""
    names = trigger_tables(catalog, cfg)
    if not names:
        return
    by_name = {t.name: t for t in catalog.tables}
    todo: list[str] = []
    conn = _rw(path)
    try:
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        for name in names:
            t = by_name[name]
            if not t.primary_key:
                warnings.append(f"{name}: strategy triggers needs a primary key; reloaded whole")
                continue
            if not {f"_sqlite2pg_{name}_{op}" for op in ("ins", "upd", "del")} <= have:
                todo.append(name)
        if not todo:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {qi(CHANGE_LOG_TABLE)} (seq INTEGER PRIMARY KEY "
                "AUTOINCREMENT, tbl TEXT NOT NULL, key BLOB NOT NULL, op TEXT NOT NULL)"
            )
            for name in todo:
                for sql in _trigger_sql(name, by_name[name].primary_key):
                    conn.execute(sql)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise SourceError(
            f"cannot install the change-log triggers in {path}: {exc}",
            "strategy triggers writes to the source file: it must be writable "
            "(or choose another strategy)",
        ) from exc
    finally:
        conn.close()
    warnings.append(
        f"strategy triggers: installed change-log triggers on {', '.join(todo)} and the table "
        f"{CHANGE_LOG_TABLE} in the source file {Path(path).name} (the only change sqlite2pg "
        "makes to a source)"
    )


def trim_change_log(path: str, table: str, upto: int) -> None:
    """After the target committed: drop the log entries that commit covers."""
    conn = _rw(path)
    try:
        conn.execute(
            f"DELETE FROM {qi(CHANGE_LOG_TABLE)} WHERE tbl = ? AND seq <= ?", (table, upto)
        )
    finally:
        conn.close()


def remove_triggers(path: str) -> list[str]:
    """Remove every sqlite2pg trigger and the change log from a source file."""
    conn = _rw(path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE '\\_sqlite2pg\\_%' ESCAPE '\\'"
            )
        ]
        conn.execute("BEGIN IMMEDIATE")
        for n in names:
            conn.execute(f"DROP TRIGGER IF EXISTS {qi(n)}")
        conn.execute(f"DROP TABLE IF EXISTS {qi(CHANGE_LOG_TABLE)}")
        conn.execute("COMMIT")
        return names
    finally:
        conn.close()
