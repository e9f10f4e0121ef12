"""Verification: does the target hold exactly the source's rows, in the schema the plan says?

``verify_tables`` builds the plan from the source (inside one read snapshot, so it sees the same
moment as the data it checks), reads the target's catalog, and then per table:

* **Schema**: the target table exists with the planned columns and types (``format_type``),
  NOT NULL, primary key, indexes and foreign keys, under the names the plan gives them.
* **counts**: ``count(*)`` on both sides; rows the sync rejects are expected to be absent.
* **checksum**: both sides render every row as the same canonical text (``canonical.py``) and
  hash it. Tables whose primary key is made of integer columns are cut into key ranges of about
  20,000 rows, from the source's key distribution; each range is hashed on both sides in one
  indexed, ordered query (``md5`` of the rows' texts in key order: ``string_agg`` on PostgreSQL,
  ``group_concat`` in SQLite, so no Python call per row for most column types). One pass per
  side per table, both sides at the same time (SQLite in a worker thread). A range that differs
  is bisected at the median key of the side with more rows, both halves re-hashed on both sides,
  down to ranges of at most 64 rows, whose rows are then fetched and compared value by value.
  Other tables (text, UUID or timestamp keys, whose order differs between the two databases, and
  tables without a primary key) are hashed per row into buckets by the hash of their key (of the
  whole row without a key: a multiset), two passes: bucket sums, then the rows of the differing
  buckets only.
* **rows**: every row of both sides, streamed in key order (for non-integer keys, in byte order of
  the canonical key text) and merged; rows are compared by their full canonical texts (no hash),
  and only rows whose texts differ have their values rendered in Python, column by column.

Rows the sync rejected are not surprises: a source row absent from the target whose values the
column converters reject (or whose key the caller passes in ``rejected_keys``, e.g. from the
state database) is counted and listed as *rejected*, not *missing*. Only the checksums are
approximate (a 128-bit hash per range, a 64-bit sum per bucket); everything reported is
confirmed row by row, so a checksum that differs for a harmless reason costs time, never a
false report. Memory stays flat: rows stream, ranges are bounded, lists are capped.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from queue import Queue
from typing import Any, TypeVar

import psycopg

from . import canonical as cn
from .config import Config, VerifyLevel
from .convert import Converter, PolicyApplied, Reject, column_converter
from .errors import InputError, RunFailed
from .model import ColumnPlan, MigrationPlan, PgType, Rejection, TablePlan
from .naming import generated_name
from .plan import build_plan
from .source import RawText, open_source, qi, read_catalog, snapshot
from .sqlite_sql import quote_ident
from .target import Target
from .typemap import dirty_sql

Key = tuple[Any, ...]
Range = tuple[Key | None, Key | None]  # [lo, hi): key tuples (or key prefixes); None is open
T = TypeVar("T")

LEAF_ROWS = 64  # bisect until a differing range holds at most this many rows, then compare rows
CHUNK_ROWS = 20_000  # rows per top-level range (fewer for wide rows: CHUNK_BYTES)
CHUNK_BYTES = 8 << 20
MAX_LISTED = 1000  # keys listed per table and kind of difference (all are counted)
BUCKET_ROWS = 256  # average rows per hash bucket
PASS2_MAX_ROWS = 400_000  # more rows than this in differing buckets: compare all rows instead
SHOWN_CHARS = 80
INT_KINDS = ("smallint", "integer", "bigint")
PG_INT_TYPES = ("smallint", "integer", "bigint")
SESSION = (  # a verification reads for a long time: no server-side timeouts for it
    "SET statement_timeout TO 0",
    "SET idle_in_transaction_session_timeout TO 0",
)
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


# --------------------------------------------------------------------------- results


def shorten(value: Any) -> Any:
    """A value as shown in a diff: text longer than ~80 characters is cut."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return value[: SHOWN_CHARS - 3] + "..."
    return value


@dataclass
class RowDifference:
    key: dict[str, Any]
    columns: dict[str, tuple[Any, Any]]  # source column -> (source text, target text)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "columns": {c: list(v) for c, v in self.columns.items()}}


@dataclass
class TableVerification:
    table: str  # source name
    target: str
    level: str
    method: str = ""  # ranges | buckets | multiset | counts
    source_rows: int | None = None
    target_rows: int | None = None
    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    different: list[RowDifference] = field(default_factory=list)
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    missing_count: int = 0
    extra_count: int = 0
    different_count: int = 0
    rejected: int = 0
    schema: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ranges: int = 0  # top-level ranges or buckets compared
    ranges_differing: int = 0
    seconds: float = 0.0
    max_listed: int = MAX_LISTED

    @property
    def data_identical(self) -> bool:
        if self.target_rows is None:
            return False
        if self.level == "counts":
            return self.source_rows == self.target_rows + self.rejected
        return not (self.missing_count or self.extra_count or self.different_count)

    @property
    def identical(self) -> bool:
        return not self.schema and self.data_identical

    @property
    def truncated(self) -> bool:
        return (
            len(self.missing) < self.missing_count
            or len(self.extra) < self.extra_count
            or len(self.different) < self.different_count
            or len(self.rejected_rows) < self.rejected
        )

    def add_missing(self, key: dict[str, Any]) -> None:
        self.missing_count += 1
        if len(self.missing) < self.max_listed:
            self.missing.append(key)

    def add_extra(self, key: dict[str, Any]) -> None:
        self.extra_count += 1
        if len(self.extra) < self.max_listed:
            self.extra.append(key)

    def add_different(self, diff: RowDifference) -> None:
        self.different_count += 1
        if len(self.different) < self.max_listed:
            self.different.append(diff)

    def add_rejected(self, key: dict[str, Any], column: str | None, reason: str) -> None:
        self.rejected += 1
        if len(self.rejected_rows) < self.max_listed:
            self.rejected_rows.append({"key": key, "column": column, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "identical": self.identical,
            "method": self.method,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "missing": self.missing,
            "extra": self.extra,
            "different": [d.as_dict() for d in self.different],
            "rejected": self.rejected,
            "rejected_rows": self.rejected_rows,
            "missing_count": self.missing_count,
            "extra_count": self.extra_count,
            "different_count": self.different_count,
            "truncated": self.truncated,
            "schema": self.schema,
            "warnings": self.warnings,
            "ranges": self.ranges,
            "ranges_differing": self.ranges_differing,
            "seconds": round(self.seconds, 3),
        }

    def summary(self, details: int = 5) -> list[str]:
        """Human lines: what differs, then the first few differences."""
        parts = []
        if self.target_rows is None:
            parts.append("target table missing")
        for n, what in (
            (self.missing_count, "missing in target"),
            (self.extra_count, "extra in target"),
            (self.different_count, "different"),
            (self.rejected, "rejected by the sync"),
        ):
            if n:
                parts.append(f"{n:,} {what}")
        if self.level == "counts" and not self.data_identical and self.target_rows is not None:
            parts.append(f"{self.source_rows:,} source rows vs {self.target_rows:,} target rows")
        if self.schema:
            parts.append(f"{len(self.schema)} schema difference(s)")
        lines = [f"{self.table} -> {self.target}: {', '.join(parts) or 'identical'}"]
        shown = [f"  schema: {s}" for s in self.schema]
        shown += [f"  missing {_key_text(k)}" for k in self.missing]
        shown += [f"  extra {_key_text(k)}" for k in self.extra]
        for d in self.different:
            cols = "; ".join(f"{c}: {s!r} -> {t!r}" for c, (s, t) in d.columns.items())
            shown.append(f"  different {_key_text(d.key)}: {cols}")
        shown += [f"  rejected {_key_text(r['key'])}: {r['reason']}" for r in self.rejected_rows]
        if len(shown) > details:
            total = (
                len(self.schema) + self.missing_count + self.extra_count + self.different_count
                + self.rejected
            )  # fmt: skip
            shown = [*shown[:details], f"  ... {total - details:,} more in the report"]
        return lines + shown


def _key_text(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in key.items())


@dataclass
class VerifyResult:
    level: str
    tables: dict[str, TableVerification]
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return all(t.identical for t in self.tables.values())

    @property
    def exit_code(self) -> int:
        return 0 if self.identical else 1

    @property
    def schema_differences(self) -> list[str]:
        return [f"{t.table}: {s}" for t in self.tables.values() for s in t.schema]

    def summary_lines(self, details: int = 5) -> list[str]:
        differing = [t for t in self.tables.values() if not t.identical]
        rows = sum(t.source_rows or 0 for t in self.tables.values())
        head = f"{len(self.tables)} table(s), {rows:,} source rows checked ({self.level}): " + (
            "identical" if not differing else f"{len(differing)} table(s) differ"
        )
        lines = [head]
        for t in differing:
            lines.extend(t.summary(details))
        for t in self.tables.values():
            if t.identical and t.rejected:
                lines.extend(t.summary(details))
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "identical": self.identical,
            "tables": {name: t.as_dict() for name, t in self.tables.items()},
            "schema_differences": self.schema_differences,
            "summary_lines": self.summary_lines(),
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- target catalog


@dataclass
class TargetTable:
    name: str
    columns: dict[str, tuple[str, bool]]  # name -> (format_type, not null), in column order
    constraints: dict[str, dict[str, Any]]
    indexes: dict[str, dict[str, Any]]

    def has_index_on(self, columns: Sequence[str]) -> bool:
        n = len(columns)
        return any(tuple(i["columns"][:n]) == tuple(columns) for i in self.indexes.values())


def read_target_catalog(cur: psycopg.Cursor[Any], schema: str) -> dict[str, TargetTable]:
    """Tables, columns, constraints and indexes of ``schema`` from pg_catalog."""
    cur.execute(
        "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        (schema,),
    )
    names = {oid: name for oid, name in cur.fetchall()}
    oids = list(names)
    attnames: dict[tuple[int, int], str] = {}
    tables = {oid: TargetTable(name, {}, {}, {}) for oid, name in names.items()}
    cur.execute(
        "SELECT attrelid, attnum, attname, format_type(atttypid, atttypmod), attnotnull "
        "FROM pg_attribute WHERE attrelid = ANY(%s) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attrelid, attnum",
        (oids,),
    )
    for oid, num, name, typ, notnull in cur.fetchall():
        attnames[(oid, num)] = name
        tables[oid].columns[name] = (typ, notnull)
    cur.execute(
        "SELECT conrelid, conname, contype, conkey, confrelid, confkey, confupdtype, "
        "confdeltype, convalidated FROM pg_constraint WHERE conrelid = ANY(%s)",
        (oids,),
    )
    for oid, name, kind, key, foid, fkey, upd, dele, valid in cur.fetchall():
        tables[oid].constraints[name] = {
            "type": kind,
            "columns": [attnames.get((oid, n), "?") for n in key or []],
            "ref_table": names.get(foid) if foid else None,
            "ref_columns": [attnames.get((foid, n), "?") for n in fkey or []],
            "on_update": _ACTIONS.get(upd, upd),
            "on_delete": _ACTIONS.get(dele, dele),
            "validated": valid,
        }
    cur.execute(
        "SELECT i.indrelid, ic.relname, i.indisunique, i.indisprimary, i.indkey::int2[] "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = ANY(%s)",
        (oids,),
    )
    for oid, name, unique, primary, key in cur.fetchall():
        tables[oid].indexes[name] = {
            "unique": unique,
            "primary": primary,
            "columns": [attnames.get((oid, n)) for n in key],
        }
    return {t.name: t for t in tables.values()}


def pg_type_name(t: PgType) -> str:
    """The plan's type as ``format_type`` prints it."""
    if t.kind == "varchar":
        return f"character varying({t.length})" if t.length else "character varying"
    if t.kind == "numeric" and t.precision is not None:
        return f"numeric({t.precision},{t.scale or 0})"
    return {
        "double": "double precision",
        "timestamp": "timestamp without time zone",
        "timestamptz": "timestamp with time zone",
        "time": "time without time zone",
    }.get(t.kind, t.kind)


def schema_differences(t: TablePlan, plan: MigrationPlan, tt: TargetTable | None) -> list[str]:
    """Every way the target table departs from the plan: columns, types, NOT NULL, primary key,
    indexes and foreign keys, by the names the plan gives them."""
    if tt is None:
        return [f"missing table {plan.schema}.{t.name}"]
    out: list[str] = []
    for c in t.columns:
        want = pg_type_name(c.type)
        if c.name not in tt.columns:
            out.append(f"missing column {c.name} ({want})")
            continue
        have, notnull = tt.columns[c.name]
        if have != want:
            out.append(f"column {c.name}: type {have}, plan says {want}")
        if c.notnull and not notnull:
            out.append(f"column {c.name}: nullable, plan says NOT NULL")
        elif notnull and not c.notnull:
            out.append(f"column {c.name}: NOT NULL, plan says nullable")
    if t.primary_key:
        name = generated_name(t.name, suffix="pkey")
        want_cols = list(t.primary_key)
        pk = tt.constraints.get(name)
        if pk is None or pk["type"] != "p":
            other = next((n for n, c in tt.constraints.items() if c["type"] == "p"), None)
            if other is None:
                out.append(f"missing primary key {name} ({', '.join(want_cols)})")
            else:
                got = tt.constraints[other]["columns"]
                out.append(
                    f"primary key is {other} ({', '.join(got)}), plan says {name} "
                    f"({', '.join(want_cols)})"
                )
        elif pk["columns"] != want_cols:
            out.append(
                f"primary key {name} is on ({', '.join(pk['columns'])}), plan says "
                f"({', '.join(want_cols)})"
            )
    for idx in t.indexes:
        have_idx = tt.indexes.get(idx.name)
        if have_idx is None:
            out.append(f"missing {'unique ' if idx.unique else ''}index {idx.name}")
        elif bool(have_idx["unique"]) != idx.unique:
            out.append(
                f"index {idx.name} is {'' if have_idx['unique'] else 'not '}unique, plan says "
                f"{'' if idx.unique else 'not '}unique"
            )
    by_source = {p.source.name: p for p in plan.tables}
    for fk in t.foreign_keys:
        parent = by_source.get(fk.source.ref_table)
        if parent is None:
            continue
        ref_cols = [parent.column_by_source(c).name for c in fk.source.ref_columns]
        want_text = f"({', '.join(fk.columns)}) -> {parent.name} ({', '.join(ref_cols)})"
        con = tt.constraints.get(fk.name)
        if con is None or con["type"] != "f":
            out.append(f"missing foreign key {fk.name} {want_text}")
            continue
        have_text = (
            f"({', '.join(con['columns'])}) -> {con['ref_table']} ({', '.join(con['ref_columns'])})"
        )
        if have_text != want_text:
            out.append(f"foreign key {fk.name} is {have_text}, plan says {want_text}")
        for what in ("on_update", "on_delete"):
            want_action = getattr(fk, what).upper()
            if con[what] != want_action:
                out.append(
                    f"foreign key {fk.name}: {what.replace('_', ' ').upper()} {con[what]}, "
                    f"plan says {want_action}"
                )
    return out


# --------------------------------------------------------------------------- table layout


@dataclass
class Layout:
    """Everything both sides need to render, hash, range and fetch one table's rows."""

    plan: TablePlan
    columns: list[ColumnPlan]  # compared: copied by the sync and present in the target
    clean: list[bool]
    method: str  # ranges | buckets | multiset
    key_pos: list[int]  # positions of the primary key columns within ``columns``
    texts: list[cn.ValueText]  # canonical text per column (Python)
    strict: list[Converter]  # the sync's converter per column (who gets rejected)
    s_table: str
    s_keys: list[str]
    s_cols: list[str]
    s_row: str
    s_key: str
    p_table: str
    p_keys: list[str]
    p_values: list[str]  # per column, as it goes into ROW(...)
    p_row: str
    p_key: str
    rowid: bool  # no primary key, but SQLite rowids identify rejected rows

    @property
    def key_names(self) -> list[str]:
        if self.key_pos:
            return [self.columns[i].source.name for i in self.key_pos]
        return ["rowid"] if self.rowid else []

    def key_dict(self, key: Sequence[Any]) -> dict[str, Any]:
        return {n: shorten(_plain(v)) for n, v in zip(self.key_names, key, strict=False)}

    def row_dict(self, texts: Sequence[Any]) -> dict[str, Any]:
        return {c.source.name: shorten(v) for c, v in zip(self.columns, texts, strict=True)}


def _plain(v: Any) -> Any:
    if isinstance(v, RawText):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, (bytes, memoryview)):
        return "x'" + bytes(v).hex() + "'"
    return v


def _is_clean(t: TablePlan, c: ColumnPlan) -> bool:
    prof = t.profiles.get(c.source.name)
    return prof is not None and prof.dirty == 0


def _no_nulls(t: TablePlan, c: ColumnPlan) -> bool:
    prof = t.profiles.get(c.source.name)
    return prof is not None and prof.nulls == 0


def build_layout(t: TablePlan, schema: str, tt: TargetTable) -> Layout:
    cols = [c for c in t.copy_columns if c.name in tt.columns]
    clean = [_is_clean(t, c) for c in cols]
    names = [c.source.name for c in cols]
    key_pos = [names.index(k) for k in t.source.primary_key if k in names]
    if len(key_pos) != len(t.source.primary_key):
        key_pos = []  # a key column is missing in the target: compare rows as a multiset
    pg_types = [tt.columns[c.name][0] for c in cols]
    p_values = [cn.pg_value(c.name, typ) for c, typ in zip(cols, pg_types, strict=True)]
    elements = [
        cn.sqlite_element(c, i, ok) for i, (c, ok) in enumerate(zip(cols, clean, strict=True))
    ]
    if not key_pos:
        method = "multiset"
    elif (
        all(cols[i].type.kind in INT_KINDS and clean[i] for i in key_pos)
        and all(_no_nulls(t, cols[i]) for i in key_pos)
        and all(pg_types[i] in PG_INT_TYPES for i in key_pos)
        and tt.has_index_on([cols[i].name for i in key_pos])
    ):
        method = "ranges"
    else:
        method = "buckets"
    s_row = cn.sqlite_row(elements) if cols else "'()'"
    p_row = cn.pg_row(p_values) if cols else "'()'"
    return Layout(
        plan=t,
        columns=cols,
        clean=clean,
        method=method,
        key_pos=key_pos,
        texts=[cn.value_text(c) for c in cols],
        strict=[column_converter(c) for c in cols],
        s_table=qi(t.source.name),
        s_keys=[qi(cols[i].source.name) for i in key_pos],
        s_cols=[qi(n) for n in names],
        s_row=s_row,
        s_key=cn.sqlite_row([elements[i] for i in key_pos]) if key_pos else s_row,
        p_table=f"{quote_ident(schema)}.{quote_ident(t.name)}",
        p_keys=[quote_ident(cols[i].name) for i in key_pos],
        p_values=p_values,
        p_row=p_row,
        p_key=cn.pg_row([p_values[i] for i in key_pos]) if key_pos else p_row,
        rowid=not t.source.primary_key and not t.source.without_rowid,
    )


def range_sql(keys: Sequence[str], rng: Range, mark: str) -> tuple[str, list[Any]]:
    """WHERE clause for keys in [lo, hi); a bound shorter than the key bounds its first columns."""
    parts: list[str] = []
    params: list[Any] = []
    for bound, op in ((rng[0], ">="), (rng[1], "<")):
        if bound is None:
            continue
        n = len(bound)
        if n == 1:
            parts.append(f"{keys[0]} {op} {mark}")
        else:
            parts.append(f"({', '.join(keys[:n])}) {op} ({', '.join([mark] * n)})")
        params.extend(bound)
    return " AND ".join(parts) or "1 = 1", params


def _in_range(key: Key, rng: Range) -> bool:
    lo, hi = rng
    return (lo is None or key[: len(lo)] >= lo) and (hi is None or key[: len(hi)] < hi)


def _careful_text(b: bytes) -> str | RawText:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return RawText(b)


# --------------------------------------------------------------------------- the two sides


class SqliteSide:
    """The source, read inside the caller's snapshot."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.element: Callable[[int, object], str] = lambda i, v: cn.REJECTED_MARK
        conn.create_function(
            cn.SQLITE_FUNCTION, 2, lambda i, v: self.element(i, v), deterministic=True
        )

    def use(self, layout: Layout) -> None:
        self.element = cn.element_function(layout.columns)

    def query(self, sql: str, params: Sequence[Any] = (), *, raw: bool = False) -> sqlite3.Cursor:
        self.conn.text_factory = bytes if raw else _careful_text
        return self.conn.execute(sql, params)

    def count(self, L: Layout) -> int:
        return int(self.query(f"SELECT count(*) FROM {L.s_table}").fetchone()[0])

    def key_stats(self, L: Layout) -> tuple[int, Any, Any]:
        k = L.s_keys[0]
        n, lo, hi = self.query(f"SELECT count(*), min({k}), max({k}) FROM {L.s_table}").fetchone()
        return int(n), lo, hi

    def key_groups(self, L: Layout) -> Iterator[tuple[Any, int]]:
        k = L.s_keys[0]
        cur = self.query(f"SELECT {k}, count(*) FROM {L.s_table} GROUP BY {k} ORDER BY {k}")
        yield from _stream(cur)

    def keys_within(self, L: Layout, first: Any) -> Iterator[Key]:
        rest = ", ".join(L.s_keys[1:])
        cur = self.query(
            f"SELECT {rest} FROM {L.s_table} WHERE {L.s_keys[0]} = ? ORDER BY {rest}", (first,)
        )
        for row in _stream(cur):
            yield tuple(row)

    def _exclusion(self, L: Layout, rng: Range, excluded: list[Key]) -> tuple[str, list[Any]]:
        lo = 0 if rng[0] is None else bisect_left(excluded, rng[0])
        inside = [k for k in excluded[lo:] if _in_range(k, rng)] if excluded else []
        if not inside:
            return "", []
        if len(L.s_keys) == 1:
            return f" AND {L.s_keys[0]} NOT IN (SELECT value FROM json_each(?))", [
                json.dumps([k[0] for k in inside])
            ]
        cols = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(L.s_keys)))
        return f" AND ({', '.join(L.s_keys)}) NOT IN (SELECT {cols} FROM json_each(?))", [
            json.dumps([list(k) for k in inside])
        ]

    def checksums(
        self, L: Layout, ranges: Sequence[Range], excluded: list[Key], cap: int
    ) -> list[tuple[int, str | None]]:
        out: list[tuple[int, str | None]] = []
        order = ", ".join(L.s_keys)
        for rng in ranges:
            where, params = range_sql(L.s_keys, rng, "?")
            extra, more = self._exclusion(L, rng, excluded)
            where += extra
            try:
                n, text = self.query(
                    f"SELECT count(*), group_concat(x, char(10)) FROM (SELECT {L.s_row} AS x "
                    f"FROM {L.s_table} WHERE {where} ORDER BY {order} LIMIT {cap})",
                    [*params, *more],
                    raw=True,
                ).fetchone()
                out.append((int(n), hashlib.md5(text).hexdigest() if text is not None else ""))
            except sqlite3.Error:  # e.g. text that is not UTF-8 given to s2p_canon
                n = self.query(
                    f"SELECT count(*) FROM (SELECT 1 FROM {L.s_table} WHERE {where} LIMIT {cap})",
                    [*params, *more],
                ).fetchone()[0]
                out.append((int(n), None))
        return out

    def medians(
        self, L: Layout, asks: Sequence[tuple[Range, int]], excluded: list[Key]
    ) -> list[Key]:
        out = []
        for rng, offset in asks:
            where, params = range_sql(L.s_keys, rng, "?")
            extra, more = self._exclusion(L, rng, excluded)
            row = self.query(
                f"SELECT {', '.join(L.s_keys)} FROM {L.s_table} WHERE {where}{extra} "
                f"ORDER BY {', '.join(L.s_keys)} LIMIT 1 OFFSET {int(offset)}",
                [*params, *more],
            ).fetchone()
            out.append(tuple(row))
        return out

    def rows(
        self, L: Layout, rng: Range | None, order: str | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """(key..., row text, raw values...) in key order (or ``order``), ``rng`` limiting the
        keys. The row text is the canonical one, rendered in SQL as for the checksums."""
        where, params = ("1 = 1", []) if rng is None else range_sql(L.s_keys, rng, "?")
        keys = L.s_keys or (["rowid"] if L.rowid else [])
        select = ", ".join([*keys, L.s_row, *L.s_cols])
        sql = f"SELECT {select} FROM {L.s_table} WHERE {where}"
        if order or keys:
            sql += f" ORDER BY {order or ', '.join(keys)}"
        yield from _stream(self.query(sql, params))


class PgSide:
    """The target, read in one REPEATABLE READ transaction with the canonical settings."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.pipeline = psycopg.Pipeline.is_supported()
        self.cursors = 0

    def run(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Run several queries in one round trip (pipeline mode) and return all rows of each."""
        if not queries:
            return []
        if len(queries) == 1 or not self.pipeline:
            return [self.conn.execute(q, p).fetchall() for q, p in queries]
        curs = []
        with self.conn.pipeline():
            for q, p in queries:
                cur = self.conn.cursor()
                cur.execute(q, p)
                curs.append(cur)
        return [cur.fetchall() for cur in curs]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None
        return tuple(row)

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        self.cursors += 1
        with self.conn.cursor(name=f"s2p_verify_{self.cursors}") as cur:
            cur.itersize = 5000
            cur.execute(sql, params)
            yield from cur

    def checksums(
        self, L: Layout, ranges: Sequence[Range], cap: int
    ) -> list[tuple[int, str | None]]:
        order = ", ".join(L.p_keys)
        queries = []
        for rng in ranges:
            where, params = range_sql(L.p_keys, rng, "%s")
            queries.append((
                f"SELECT count(*), md5(string_agg(x, E'\\n')) FROM (SELECT {L.p_row} AS x "
                f"FROM {L.p_table} WHERE {where} ORDER BY {order} LIMIT {cap}) s",
                params,
            ))  # fmt: skip
        return [(int(r[0][0]), r[0][1] or "") for r in self.run(queries)]

    def medians(self, L: Layout, asks: Sequence[tuple[Range, int]]) -> list[Key]:
        order = ", ".join(L.p_keys)
        queries = []
        for rng, offset in asks:
            where, params = range_sql(L.p_keys, rng, "%s")
            queries.append((
                f"SELECT {order} FROM {L.p_table} WHERE {where} ORDER BY {order} "
                f"LIMIT 1 OFFSET {int(offset)}",
                params,
            ))  # fmt: skip
        return [tuple(r[0]) for r in self.run(queries)]

    def rows(self, L: Layout, rng: Range) -> list[tuple[Any, ...]]:
        """(key..., row text) of the keys in ``rng``, in key order."""
        where, params = range_sql(L.p_keys, rng, "%s")
        keys = ", ".join(L.p_keys)
        sql = f"SELECT {keys}, {L.p_row} FROM {L.p_table} WHERE {where} ORDER BY {keys}"
        return self.run([(sql, params)])[0]


def _stream(cur: sqlite3.Cursor, size: int = 5000) -> Iterator[Any]:
    while True:
        batch = cur.fetchmany(size)
        if not batch:
            return
        yield from batch


# --------------------------------------------------------------------------- per-table checks


class TableCheck:
    """Verification of one table: holds the layout, both sides and the result being built."""

    def __init__(
        self,
        s: SqliteSide,
        p: PgSide,
        pool: ThreadPoolExecutor,
        L: Layout,
        tv: TableVerification,
        known_rejected: set[Key],
    ) -> None:
        self.s, self.p, self.pool, self.L, self.tv = s, p, pool, L, tv
        self.rejects = self.find_rejects(known_rejected)
        for key, problem in self.rejects.items():  # counted once here, skipped when met
            self.reject(key, problem)
        self.excluded = sorted(self.rejects) if L.method == "ranges" else []

    def both(self, on_source: Callable[[], T], on_target: Callable[[], Any]) -> tuple[T, Any]:
        """Run the source side in the worker thread while the target side runs here."""
        fut = self.pool.submit(on_source)
        try:
            target = on_target()
        finally:
            source = fut.result()
        return source, target

    # -- rejected rows

    def find_rejects(self, known: set[Key]) -> dict[Key, tuple[str | None, str]]:
        """Rows the sync rejects, found up front so the checksums can leave them out: values that
        need converting (``typemap.dirty_sql``) which the column's converter refuses, and the
        keys the caller knows were rejected."""
        L = self.L
        keys = L.s_keys or (["rowid"] if L.rowid else [])
        out: dict[Key, tuple[str | None, str]] = {
            k: (None, "recorded as rejected by the sync") for k in self.present(keys, known)
        }
        dirty = [i for i, ok in enumerate(L.clean) if not ok]
        if not dirty or not keys:
            return out
        cond = " OR ".join(
            f"({L.s_cols[i]} IS NOT NULL AND {dirty_sql(L.columns[i].type, L.s_cols[i])})"
            for i in dirty
        )  # values a clean-looking column holds that the converter refuses: found by bisection
        cur = self.s.query(
            f"SELECT {', '.join(keys)}, {', '.join(L.s_cols[i] for i in dirty)} "
            f"FROM {L.s_table} WHERE {cond}"
        )
        nk = len(keys)
        for row in _stream(cur):
            for j, i in enumerate(dirty):
                v = row[nk + j]
                if v is None:
                    continue
                try:
                    L.strict[i](v)
                except PolicyApplied:
                    pass
                except Reject as exc:
                    out[tuple(row[:nk])] = (L.columns[i].source.name, str(exc))
                    break
        return out

    def present(self, keys: list[str], wanted: set[Key]) -> set[Key]:
        """The keys in ``wanted`` that the source holds."""
        wanted = {k for k in wanted if len(k) == len(keys)}
        if not wanted or not keys:
            return set()
        if len(keys) == 1:
            cond = f"{keys[0]} IN (SELECT value FROM json_each(?))"
        else:
            cols = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(keys)))
            cond = f"({', '.join(keys)}) IN (SELECT {cols} FROM json_each(?))"
        found: set[Key] = set()
        todo = sorted(wanted, key=repr)
        for start in range(0, len(todo), 10_000):
            batch = json.dumps(
                [list(k) for k in todo[start : start + 10_000]]
                if len(keys) > 1
                else [k[0] for k in todo[start : start + 10_000]],
                default=str,
            )
            sql = f"SELECT {', '.join(keys)} FROM {self.L.s_table} WHERE {cond}"
            found.update(tuple(r) for r in self.s.query(sql, (batch,)))
        return found

    def source_problem(self, raw: Sequence[Any]) -> tuple[str | None, str] | None:
        """Why the sync would reject this source row, or None."""
        for i, conv in enumerate(self.L.strict):
            v = raw[i]
            if v is None:
                continue
            try:
                conv(v)
            except PolicyApplied:
                pass
            except Reject as exc:
                return self.L.columns[i].source.name, str(exc)
        return None

    def reject(self, key: Key, problem: tuple[str | None, str]) -> None:
        self.tv.add_rejected(self.L.key_dict(key), problem[0], problem[1])

    # -- comparing rows

    def source_texts(self, raw: Sequence[Any]) -> list[str | None] | None:
        try:
            return [f(v) for f, v in zip(self.L.texts, raw, strict=True)]
        except Reject:
            return None

    def compare(self, key: Key, raw: Sequence[Any], target_row: str, source_row: Any) -> None:
        """A key present on both sides. Equal row texts (rendered in SQL on both sides) are equal
        rows; otherwise every value is rendered in Python from the source value and the columns
        whose canonical texts differ are recorded."""
        if source_row == target_row or key in self.rejects:
            return
        problem = self.source_problem(raw)
        if problem is not None:
            self.reject(key, problem)
            return
        texts = self.source_texts(raw)
        if texts is None:
            self.reject(key, (None, "a value cannot be rendered as PostgreSQL would store it"))
            return
        target = cn.parse_record(target_row)
        cols = {
            c.source.name: (shorten(s), shorten(t))
            for c, s, t in zip(self.L.columns, texts, target, strict=True)
            if s != t
        }
        if cols:
            self.tv.add_different(RowDifference(self.L.key_dict(key), cols))

    def source_only(
        self, key: Key, raw: Sequence[Any], shown: dict[str, Any] | None = None
    ) -> None:
        if key in self.rejects:
            return
        problem = self.source_problem(raw)
        if problem is not None:
            self.reject(key, problem)
        else:
            self.tv.add_missing(self.L.key_dict(key) if shown is None else shown)

    def target_only(self, key: Key, shown: dict[str, Any] | None = None) -> None:
        if key in self.rejects:  # the target kept a version the sync could not replace
            return
        self.tv.add_extra(self.L.key_dict(key) if shown is None else shown)

    def merge(
        self, source: Iterable[tuple[Any, ...]], target: Iterable[tuple[Any, ...]], nk: int
    ) -> None:
        """Merge (key..., row text, raw values...) from the source with (key..., row text)
        from the target, both sorted by key."""
        src, tgt = iter(source), iter(target)
        a, b = next(src, None), next(tgt, None)
        while a is not None or b is not None:
            ka = tuple(a[:nk]) if a is not None else None
            kb = tuple(b[:nk]) if b is not None else None
            if kb is None or (ka is not None and ka < kb):
                assert a is not None and ka is not None
                self.source_only(ka, a[nk + 1 :])
                a = next(src, None)
            elif ka is None or kb < ka:
                assert b is not None and kb is not None
                self.target_only(kb)
                b = next(tgt, None)
            else:
                assert a is not None and b is not None and ka is not None
                self.compare(ka, a[nk + 1 :], b[nk], a[nk])
                a, b = next(src, None), next(tgt, None)

    # -- counts

    def counts(self) -> None:
        L, tv = self.L, self.tv
        tv.method = "counts"
        n_s, (n_t,) = self.both(
            lambda: self.s.count(L), lambda: self.p.one(f"SELECT count(*) FROM {L.p_table}")
        )
        tv.source_rows, tv.target_rows = n_s, int(n_t)

    # -- checksums over key ranges (integer keys)

    def chunk_rows(self) -> int:
        row = self.p.one("SELECT pg_table_size(%s::regclass)", (self.L.p_table,))
        per_row = (row[0] or 0) / max(self.L.plan.row_count, 1)
        return max(LEAF_ROWS * 4, min(CHUNK_ROWS, int(CHUNK_BYTES / max(per_row, 1.0))))

    def top_ranges(self, size: int) -> list[Range]:
        """Ranges of about ``size`` source rows each, from the source's key distribution; the
        first and last are open so target rows beyond the source's keys are covered too."""
        L = self.L
        n, lo, hi = self.s.key_stats(L)
        bounds: list[Key] = []
        if n == 0:
            return [(None, None)]
        if len(L.s_keys) == 1 and hi - lo + 1 <= 4 * max(n, size):
            bounds = [(v,) for v in range(lo + size, hi + 1, size)]
        else:
            acc = 0
            for value, count in self.s.key_groups(L):
                if acc and acc + count > size:
                    bounds.append((value,))
                    acc = 0
                if count > size and len(L.s_keys) > 1:
                    for j, rest in enumerate(self.s.keys_within(L, value)):
                        if j and j % size == 0:
                            bounds.append((value, *rest))
                    acc = count % size
                else:
                    acc += count
        return list(zip([None, *bounds], [*bounds, None], strict=True))

    def checksum_ranges(self) -> None:
        L, tv = self.L, self.tv
        size = self.chunk_rows()
        cap = 4 * size
        ranges = self.top_ranges(size)
        tv.ranges = len(ranges)
        (src, n_s), tgt = self.both(
            lambda: (self.s.checksums(L, ranges, self.excluded, cap), self.s.count(L)),
            lambda: self.p.checksums(L, ranges, cap),
        )
        tv.source_rows = n_s
        if any(n >= cap for n, _ in tgt):
            tv.target_rows = int(self.p.one(f"SELECT count(*) FROM {L.p_table}")[0])
        else:
            tv.target_rows = sum(n for n, _ in tgt)
        pending = [(r, a, b) for r, a, b in zip(ranges, src, tgt, strict=True) if a != b]
        tv.ranges_differing = len(pending)
        self.bisect(pending, cap)

    def bisect(
        self, pending: list[tuple[Range, tuple[int, str | None], tuple[int, str | None]]], cap: int
    ) -> None:
        L = self.L
        while pending:
            split: list[tuple[Range, int, int]] = []
            for rng, (n_s, _), (n_t, _) in pending:
                if max(n_s, n_t) <= LEAF_ROWS:
                    self.compare_range(rng)
                else:
                    split.append((rng, n_s, n_t))
            if not split:
                return
            on_source = [(r, n_s // 2) for r, n_s, n_t in split if n_s >= n_t]
            on_target = [(r, n_t // 2) for r, n_s, n_t in split if n_s < n_t]
            mids_s, mids_t = self.both(
                partial(self.s.medians, L, on_source, self.excluded),
                partial(self.p.medians, L, on_target),
            )
            mids = dict(zip([r for r, _ in on_source], mids_s, strict=True))
            mids.update(zip([r for r, _ in on_target], mids_t, strict=True))
            halves: list[Range] = []
            for rng, _, _ in split:
                mid = mids[rng]
                halves += [(rng[0], mid), (mid, rng[1])]
            src, tgt = self.both(
                partial(self.s.checksums, L, halves, self.excluded, cap),
                partial(self.p.checksums, L, halves, cap),
            )
            pending = [(r, a, b) for r, a, b in zip(halves, src, tgt, strict=True) if a != b]

    def compare_range(self, rng: Range) -> None:
        nk = len(self.L.key_pos)
        source, target = self.both(
            lambda: list(self.s.rows(self.L, rng)), lambda: self.p.rows(self.L, rng)
        )
        self.merge(source, target, nk)

    # -- every row, in key order

    def rows_ranges(self) -> None:
        L, tv = self.L, self.tv
        tv.source_rows = 0
        tv.target_rows = 0
        nk = len(L.key_pos)

        def counted(it: Iterable[tuple[Any, ...]], side: str) -> Iterator[tuple[Any, ...]]:
            for row in it:
                setattr(tv, side, getattr(tv, side) + 1)
                yield row

        keys = ", ".join(L.p_keys)
        target = self.p.stream(f"SELECT {keys}, {L.p_row} FROM {L.p_table} ORDER BY {keys}")
        with closing(_threaded(self.pool, lambda: self.s.rows(L, None))) as source:
            self.merge(counted(source, "source_rows"), counted(target, "target_rows"), nk)

    # -- hash buckets (other keys) and multisets (no key)

    def bucket_digits(self, rows: int) -> int:
        digits = 1
        while 16**digits * BUCKET_ROWS < rows and digits < 6:
            digits += 1
        return digits

    def source_buckets(self, digits: int) -> tuple[dict[str, list[int]], int]:
        L = self.L
        keys = L.s_keys or (["rowid"] if L.rowid else [])
        nk = len(keys)
        excluded = self.rejects
        multiset = L.method == "multiset"
        select = ", ".join([*keys, L.s_row] + ([] if multiset else [L.s_key]))
        md5 = hashlib.md5
        buckets: dict[str, list[int]] = {}
        total = 0
        for row in _stream(self.s.query(f"SELECT {select} FROM {L.s_table}", raw=True)):
            total += 1
            if excluded and tuple(row[:nk]) in excluded:
                continue
            digest = md5(row[nk]).digest()
            bucket = (digest if multiset else md5(row[nk + 1]).digest()).hex()[:digits]
            h = int.from_bytes(digest[:8], "big", signed=True)
            acc = buckets.get(bucket)
            if acc is None:
                buckets[bucket] = [1, h]
            else:
                acc[0] += 1
                acc[1] += h
        return buckets, total

    def target_buckets(self, digits: int) -> dict[str, list[int]]:
        L = self.L
        sql = (
            f"SELECT left(md5(k), {digits}), count(*), "
            f"sum(('x' || left(md5(x), 16))::bit(64)::bigint) "
            f"FROM (SELECT {L.p_key} AS k, {L.p_row} AS x FROM {L.p_table}) s GROUP BY 1"
        )
        return {b: [int(n), int(h)] for b, n, h in self.p.stream(sql)}

    def checksum_buckets(self) -> None:
        L, tv = self.L, self.tv
        digits = self.bucket_digits(L.plan.row_count)
        (src, n_s), tgt = self.both(
            lambda: self.source_buckets(digits), lambda: self.target_buckets(digits)
        )
        tv.source_rows = n_s
        tv.target_rows = sum(n for n, _ in tgt.values())
        tv.ranges = len(set(src) | set(tgt))
        differing = sorted(b for b in set(src) | set(tgt) if src.get(b) != tgt.get(b))
        tv.ranges_differing = len(differing)
        if not differing:
            return
        rows = sum(max(src.get(b, [0])[0], tgt.get(b, [0])[0]) for b in differing)
        if rows > PASS2_MAX_ROWS:
            self.rows_sorted(count=False)
            return
        self.compare_buckets(set(differing), digits)

    def compare_buckets(self, buckets: set[str], digits: int) -> None:
        """Second pass: the rows of the differing buckets only, matched by key text."""
        L = self.L
        keys = L.s_keys or (["rowid"] if L.rowid else [])
        nk = len(keys)
        multiset = L.method == "multiset"
        row_sql = "NULL" if multiset else L.s_row  # a multiset's key is its row text

        def source() -> dict[bytes, list[tuple[Any, ...]]]:
            out: dict[bytes, list[tuple[Any, ...]]] = {}
            select = ", ".join([L.s_key, *keys, row_sql, *L.s_cols])
            for row in _stream(self.s.query(f"SELECT {select} FROM {L.s_table}")):
                k = _as_bytes(row[0])
                if hashlib.md5(k).hexdigest()[:digits] in buckets:
                    out.setdefault(k, []).append(tuple(row[1:]))
            return out

        def target() -> list[tuple[Any, ...]]:
            sql = (
                f"SELECT k, x FROM (SELECT {L.p_key} AS k, {L.p_row} AS x FROM {L.p_table}) s "
                f"WHERE left(md5(k), {digits}) = ANY(%s)"
            )
            return list(self.p.stream(sql, (sorted(buckets),)))

        src, tgt = self.both(source, target)
        if multiset:
            self.compare_multiset(src, tgt, nk)
            return
        for k, x in tgt:
            matches = src.pop(k.encode("utf-8"), None)
            if not matches:
                self.target_only(tuple(_key_from_texts(L, cn.parse_record(x))))
                continue
            row = matches[0]
            self.compare(tuple(row[:nk]), row[nk + 1 :], x, row[nk])
        for rows in src.values():
            for row in rows:
                self.source_only(tuple(row[:nk]), row[nk + 1 :])

    def compare_multiset(
        self, src: dict[bytes, list[tuple[Any, ...]]], tgt: list[tuple[Any, ...]], nk: int
    ) -> None:
        """Rows without a key: a row text present more often on one side is missing or extra."""
        have = Counter(k.encode("utf-8") for k, _ in tgt)
        for k, rows in src.items():
            rows = [r for r in rows if tuple(r[:nk]) not in self.rejects]
            surplus = len(rows) - have.pop(k, 0)
            for row in rows[: max(surplus, 0)]:
                raw = row[nk + 1 :]
                self.source_only(tuple(row[:nk]), raw, self.shown_row(raw))
            if surplus < 0:
                have[k] = -surplus
        for k, n in have.items():
            for _ in range(n):
                self.tv.add_extra(self.L.row_dict(cn.parse_record(k.decode("utf-8"))))

    def shown_row(self, raw: Sequence[Any]) -> dict[str, Any]:
        texts = self.source_texts(raw)
        if texts is None:
            return {
                c.source.name: shorten(_plain(v)) for c, v in zip(self.L.columns, raw, strict=True)
            }
        return self.L.row_dict(texts)

    def rows_sorted(self, count: bool = True) -> None:
        """Every row, both sides ordered by the bytes of the canonical key text (of the row text
        for a multiset): byte order is the same in SQLite (BINARY) and PostgreSQL (COLLATE "C")."""
        L, tv = self.L, self.tv
        keys = L.s_keys or (["rowid"] if L.rowid else [])
        nk = len(keys)
        multiset = L.method == "multiset"
        row_sql = "NULL" if multiset else L.s_row
        if count:
            tv.source_rows = tv.target_rows = 0

        def source() -> Iterator[tuple[Any, ...]]:
            select = ", ".join([L.s_key, *keys, row_sql, *L.s_cols])
            for row in _stream(self.s.query(f"SELECT {select} FROM {L.s_table} ORDER BY 1")):
                yield (_as_bytes(row[0]), *row[1:])

        def target() -> Iterator[tuple[bytes, str]]:
            sql = (
                f"SELECT k, x FROM (SELECT {L.p_key} AS k, {L.p_row} AS x FROM {L.p_table}) s "
                'ORDER BY k COLLATE "C"'
            )
            for k, x in self.p.stream(sql):
                yield k.encode("utf-8"), x

        with closing(_threaded(self.pool, source)) as src:
            self.merge_sorted(src, target(), nk, multiset, count)

    def merge_sorted(
        self,
        src: Iterator[tuple[Any, ...]],
        tgt: Iterator[tuple[bytes, str]],
        nk: int,
        multiset: bool,
        count: bool,
    ) -> None:
        """Merge (key text, key..., row text, raw...) with (key text, row text) by key text."""
        L, tv = self.L, self.tv
        a, b = next(src, None), next(tgt, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a[0] < b[0]):
                assert a is not None
                key, raw = tuple(a[1 : 1 + nk]), a[2 + nk :]
                self.source_only(key, raw, self.shown_row(raw) if multiset else None)
                a = next(src, None)
                tv.source_rows = (tv.source_rows or 0) + count
            elif a is None or b[0] < a[0]:
                texts = cn.parse_record(b[1])
                if multiset:
                    self.tv.add_extra(L.row_dict(texts))
                else:
                    self.target_only(tuple(_key_from_texts(L, texts)))
                b = next(tgt, None)
                tv.target_rows = (tv.target_rows or 0) + count
            else:
                if not multiset:  # equal row texts of a multiset match
                    self.compare(tuple(a[1 : 1 + nk]), a[2 + nk :], b[1], a[1 + nk])
                a, b = next(src, None), next(tgt, None)
                tv.source_rows = (tv.source_rows or 0) + count
                tv.target_rows = (tv.target_rows or 0) + count


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8")
    return bytes(v)


def _key_from_texts(L: Layout, texts: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for i in L.key_pos:
        v = texts[i]
        out.append(int(v) if v is not None and L.columns[i].type.kind in INT_KINDS else v)
    return out


_DONE = object()


def _threaded(
    pool: ThreadPoolExecutor, make: Callable[[], Iterable[T]]
) -> Generator[T, None, None]:
    """Produce ``make()``'s items in the worker thread, in batches, while the caller consumes."""
    q: Queue[Any] = Queue(maxsize=8)
    stop = threading.Event()

    def produce() -> None:
        batch: list[T] = []
        try:
            for item in make():
                if stop.is_set():
                    return
                batch.append(item)
                if len(batch) >= 1000:
                    q.put(batch)
                    batch = []
            q.put(batch)
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    fut = pool.submit(produce)
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        while not fut.done():
            try:
                q.get_nowait()
            except Exception:
                time.sleep(0.001)
        fut.result()


# --------------------------------------------------------------------------- entry point


def verify_tables(
    cfg: Config,
    source: str,
    target: Target,
    *,
    level: VerifyLevel,
    tables: list[str] | None = None,
    rejected_keys: dict[str, set[tuple[Any, ...]]] | None = None,
    max_listed: int = MAX_LISTED,
) -> VerifyResult:
    """Compare the source with the target at ``level``; see the module docstring.

    ``rejected_keys`` maps a source table to the primary-key tuples (source key order) of rows
    the sync recorded as rejected; rows the converters reject are recognised without it.
    """
    if level not in ("counts", "checksum", "rows"):
        raise InputError(
            f"verification level {level!r} does not verify anything", "use counts, checksum or rows"
        )
    started = time.perf_counter()
    sconn = open_source(source)
    try:
        catalog = read_catalog(sconn, str(source))
        pg = target.connect()
        try:
            pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            pg.read_only = True
            with snapshot(sconn):
                plan = build_plan(sconn, catalog, cfg)
                selected = _selected(plan, tables)
                result = _verify(plan, selected, sconn, pg, level, rejected_keys or {}, max_listed)
            pg.rollback()
        except psycopg.Error as exc:
            raise RunFailed(
                f"verification failed: {str(exc).strip().splitlines()[0]}",
                "run again with --debug for details",
            ) from exc
        finally:
            pg.close()
    except sqlite3.Error as exc:
        raise RunFailed(f"verification failed reading the source: {exc}") from exc
    finally:
        sconn.close()
    result.seconds = time.perf_counter() - started
    return result


def rejected_keys_from(rejections: Iterable[Rejection]) -> dict[str, set[Key]]:
    """``rejected_keys`` for ``verify_tables`` from recorded rejections (``StateDB.rejects``):
    their keys are {primary key column: value} in key order, or {"rowid": n}."""
    out: dict[str, set[Key]] = {}
    for r in rejections:
        out.setdefault(r.table, set()).add(tuple(r.key.values()))
    return out


def _selected(plan: MigrationPlan, tables: list[str] | None) -> list[TablePlan]:
    if not tables:
        return list(plan.tables)
    known = {t.source.name: t for t in plan.tables}
    unknown = [n for n in tables if n not in known]
    if unknown:
        raise InputError(
            f"no table {', '.join(map(repr, unknown))} in the source (or it is excluded)",
            f"tables: {', '.join(known) or '(none)'}",
        )
    return [known[n] for n in tables]


def _verify(
    plan: MigrationPlan,
    selected: list[TablePlan],
    sconn: sqlite3.Connection,
    pg: psycopg.Connection[Any],
    level: str,
    rejected_keys: dict[str, set[Key]],
    max_listed: int,
) -> VerifyResult:
    with pg.cursor() as cur:
        for setting in (*cn.PG_SESSION, *SESSION):
            cur.execute(setting)
        catalog = read_target_catalog(cur, plan.schema)
        cur.execute("SHOW server_encoding")
        encoding = str(cur.fetchone()[0])  # type: ignore[index]
    result = VerifyResult(level=level, tables={})
    if encoding.upper() not in ("UTF8", "UTF-8"):
        result.warnings.append(
            f"the target's encoding is {encoding}, not UTF8: checksums of text differ, so every "
            "range is compared row by row (slow, still exact)"
        )
    s_side, p_side = SqliteSide(sconn), PgSide(pg)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2p-verify") as pool:
        for t in selected:
            started = time.perf_counter()
            tv = TableVerification(t.source.name, t.name, level, max_listed=max_listed)
            result.tables[t.source.name] = tv
            tt = catalog.get(t.name)
            tv.schema = schema_differences(t, plan, tt)
            if tt is None:
                tv.source_rows = t.row_count
                continue
            extra_cols = [c for c in tt.columns if c not in {p.name for p in t.columns}]
            if extra_cols:
                tv.warnings.append(
                    f"target has column(s) the plan does not: {', '.join(extra_cols)}"
                )
            L = build_layout(t, plan.schema, tt)
            tv.method = L.method
            s_side.use(L)
            known = rejected_keys.get(t.source.name, set())
            check = TableCheck(s_side, p_side, pool, L, tv, known)
            if level == "counts":
                check.counts()
            elif level == "checksum" and L.method == "ranges":
                check.checksum_ranges()
            elif level == "checksum":
                check.checksum_buckets()
            elif L.method == "ranges":
                check.rows_ranges()
            else:
                check.rows_sorted()
            tv.seconds = time.perf_counter() - started
    return result
