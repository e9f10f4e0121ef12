"""Declared SQLite type + the values actually stored -> PostgreSQL type.

Mapping follows SQLite's affinity rules first and the declared name second, then the profile of the
stored values narrows or widens it (SMALLINT only when the values fit; VARCHAR(n) widened to text
when SQLite, which ignores lengths, holds longer values). Each type also has a "dirty" predicate:
an SQL test, run inside SQLite, for values that cannot go to COPY as they are. Columns with no
dirty values stream untouched; the others go through the converters in ``convert.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import ColumnProfile, PgType, SourceColumn


@dataclass(frozen=True)
class TypeOptions:
    varchar_as_text: bool = False
    timestamptz: bool = False
    int32: bool = False  # INT/INTEGER -> integer when every value fits


_LEN = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")

_INT_SMALL = ("TINYINT", "SMALLINT", "INT2")
_BOOL = ("BOOL", "BOOLEAN", "BIT")
_UUID = ("UUID", "GUID", "UNIQUEIDENTIFIER")
_JSON = ("JSON", "JSONB")
_BYTES = ("BLOB", "BYTEA", "BINARY", "VARBINARY", "IMAGE", "BYTE[]", "LONGBLOB", "BYTES", "RAW")
_MONEY = ("MONEY", "SMALLMONEY", "CURRENCY")
_STRINGS_WITH_LENGTH = ("VARCHAR", "NVARCHAR", "CHARACTER", "CHAR", "NCHAR", "VARYING", "TEXT")


def candidate_type(col: SourceColumn, opts: TypeOptions) -> tuple[PgType | None, str]:
    """The type the declared name asks for, before looking at values (None: decide from them)."""
    declared = col.declared_type.upper().strip()
    base = _LEN.sub("", declared).strip()
    m = _LEN.search(declared)
    n1 = int(m.group(1)) if m else None
    n2 = int(m.group(2)) if m and m.group(2) else None
    if not declared:
        return None, "no declared type: chosen from the stored values"
    if base in _BOOL:
        return PgType("boolean"), "BOOLEAN"
    if base in _UUID:
        return PgType("uuid"), "UUID"
    if base in _JSON:
        return PgType("jsonb"), "JSON -> jsonb"
    if base in ("DATETIME", "TIMESTAMP", "TIMESTAMPTZ") or base.startswith("TIMESTAMP "):
        tz = opts.timestamptz or base == "TIMESTAMPTZ" or "WITH TIME ZONE" in base
        return PgType("timestamptz" if tz else "timestamp"), f"{base} -> timestamp"
    if base == "DATE":
        return PgType("date"), "DATE"
    if base == "TIME":
        return PgType("time"), "TIME"
    if base in _MONEY:
        return PgType("numeric", precision=19, scale=4), "money-like -> numeric(19,4)"
    # SQLite affinity rules, in SQLite's order.
    if "INT" in base:
        if base in _INT_SMALL:
            return PgType("smallint"), f"{base}: smallint when the values fit"
        return PgType("bigint"), "INTEGER affinity: SQLite integers are 64-bit"
    if any(s in base for s in ("CHAR", "CLOB", "TEXT")) or base in ("STRING", "NTEXT", "ENUM"):
        words = base.split()
        if (
            n1 is not None
            and not opts.varchar_as_text
            and any(w in _STRINGS_WITH_LENGTH for w in words)
        ):
            return PgType("varchar", length=n1), f"{base}({n1}) -> varchar({n1})"
        return PgType("text"), "TEXT affinity"
    if base in _BYTES or "BLOB" in base:
        return PgType("bytea"), "BLOB -> bytea"
    if any(s in base for s in ("REAL", "FLOA", "DOUB")):
        return PgType("double"), "REAL affinity -> double precision"
    if base in ("NUMERIC", "DECIMAL", "NUMBER", "DEC"):
        if n1 is not None and n1 <= 1000:
            scale = n2 if n2 is not None else 0
            return PgType("numeric", precision=n1, scale=scale), f"{base}({n1},{scale})"
        return PgType("numeric"), f"{base} -> numeric"
    return None, f"unknown type name {col.declared_type!r}: chosen from the stored values"


def dirty_sql(t: PgType, c: str) -> str:
    """SQL true for a non-NULL value that cannot be streamed to COPY unchanged for type ``t``.

    A NULL value is never dirty; for any other value the test is never NULL: SQLite's date
    functions return NULL for text they cannot read, and a NULL test would let 'yesterday'
    through to COPY."""
    return f"({c} IS NOT NULL AND coalesce({_dirty_test(t, c)}, 1))"


# Kinds whose dirty test is false for NULL and never NULL for a value: in a WHERE clause (where
# NULL counts as false) they need no guard, which makes the quick profile's scan cheaper.
_PLAIN_TESTS = frozenset(
    ("bigint", "integer", "smallint", "double", "numeric", "text", "varchar", "bytea", "boolean")
)


def dirty_where(t: PgType, c: str) -> str:
    """:func:`dirty_sql` for a WHERE clause."""
    return f"({_dirty_test(t, c)})" if t.kind in _PLAIN_TESTS else dirty_sql(t, c)


def _dirty_test(t: PgType, c: str) -> str:
    k = t.kind
    if k in ("bigint", "integer", "smallint"):
        return f"typeof({c}) NOT IN ('integer','null')"
    # No abs() here: abs(-9223372036854775808) is an "integer overflow" error in SQLite.
    if k == "double":
        return (
            f"(typeof({c}) NOT IN ('integer','real','null') OR (typeof({c}) = 'integer' AND "
            f"({c} > 9007199254740992 OR {c} < -9007199254740992)))"
        )
    if k == "numeric":
        return (
            f"(typeof({c}) NOT IN ('integer','real','null') OR (typeof({c}) = 'real' AND "
            f"({c} > 1.7976931348623157e308 OR {c} < -1.7976931348623157e308)))"
        )
    if k in ("text", "varchar"):
        return f"(typeof({c}) NOT IN ('text','null') OR instr({c}, char(0)) > 0)"
    if k == "bytea":
        return f"typeof({c}) NOT IN ('blob','null')"
    if k == "boolean":
        return f"NOT ({c} IS NULL OR (typeof({c}) = 'integer' AND {c} IN (0, 1)))"
    # Dates go through julianday() so that SQLite normalises impossible ones ('2023-02-30'
    # formats as itself, but its julian day is March 2nd); year 0 exists in SQLite only.
    if k in ("timestamp", "timestamptz"):
        return (
            f"NOT ({c} IS NULL OR (typeof({c}) = 'text' AND {c} >= '0001-01-01' AND ("
            f"{c} = strftime('%Y-%m-%d %H:%M:%S', julianday({c})) OR "
            f"{c} = strftime('%Y-%m-%d %H:%M:%f', julianday({c})) OR "
            f"{c} = date(julianday({c})))))"
        )
    if k == "date":
        return (
            f"NOT ({c} IS NULL OR (typeof({c}) = 'text' AND {c} >= '0001-01-01' AND "
            f"{c} = date(julianday({c}))))"
        )
    if k == "time":
        return (
            f"NOT ({c} IS NULL OR (typeof({c}) = 'text' AND ({c} = time({c}) OR "
            f"{c} = strftime('%H:%M:%f', {c}))))"
        )
    if k == "jsonb":
        # PostgreSQL's jsonb refuses \u0000 and unpaired surrogate escapes that json_valid
        # accepts: such documents (and any document JSON5 might let through) are checked in
        # Python. SQLite 3.42 to 3.44 accept JSON5 in json_valid() and have no strict mode.
        valid = _strict_json_valid(c)
        if valid is None:
            return f"{c} IS NOT NULL"
        return (
            f"NOT ({c} IS NULL OR (typeof({c}) = 'text' AND {valid} AND "
            f"instr(CAST({c} AS BLOB), x'00') = 0 AND "
            f"instr({c}, '\\u0000') = 0 AND {c} NOT GLOB '*\\u[dD][89a-fA-F]*'))"
        )
    if k == "uuid":
        hx = "[0-9a-fA-F]"
        pattern = "-".join(hx * n for n in (8, 4, 4, 4, 12))
        return (
            f"NOT ({c} IS NULL OR (typeof({c}) = 'text' AND {c} GLOB '{pattern}' AND "
            f"instr(CAST({c} AS BLOB), x'00') = 0))"
        )
    raise ValueError(k)


def _strict_json_valid(c: str) -> str | None:
    """SQL true for RFC 8259 JSON in this SQLite version (None: no such test)."""
    import sqlite3

    version = sqlite3.sqlite_version_info
    if version >= (3, 45, 0):
        return f"json_valid({c}, 1)"
    if version >= (3, 42, 0):
        return None
    return f"json_valid({c})"


@dataclass(frozen=True)
class ProfileQuery:
    """Aggregates for one table's columns, computed in one scan of the source."""

    sql: str
    layout: list[tuple[str, str]]  # (column, aggregate name) in select order

    def parse(self, row: tuple[object, ...]) -> tuple[int, dict[str, ColumnProfile]]:
        values: dict[str, dict[str, object]] = {}
        for (col, agg), v in zip(self.layout, row[1:], strict=True):
            values.setdefault(col, {})[agg] = v
        count = _int(row[0])
        profiles: dict[str, ColumnProfile] = {}
        for col, aggs in values.items():
            profiles[col] = ColumnProfile(
                nulls=count - _int(aggs.get("nonnull")),
                integers=_int(aggs.get("integers")),
                reals=_int(aggs.get("reals")),
                texts=_int(aggs.get("texts")),
                blobs=_int(aggs.get("blobs")),
                int_min=_opt_int(aggs.get("int_min")),
                int_max=_opt_int(aggs.get("int_max")),
                max_text_chars=_opt_int(aggs.get("max_chars")),
                dirty=_int(aggs.get("dirty")),
            )
        return count, profiles


def _int(v: object) -> int:
    """An SQLite aggregate as an int (sum() of no rows is NULL)."""
    return int(v) if isinstance(v, (int, float)) else 0


def _opt_int(v: object) -> int | None:
    return int(v) if isinstance(v, (int, float)) else None


def profile_query(
    table_sql: str,
    columns: list[tuple[str, PgType | None]],
    ranges: frozenset[str] = frozenset(),
) -> ProfileQuery:
    """Only what each candidate type needs is aggregated, to keep the scan cheap: the integer
    range only where it decides something (smallint/integer fit, untyped columns, and the
    columns in ``ranges``: the identity's next value, the int32 option)."""
    from .source import qi

    exprs: list[str] = []
    layout: list[tuple[str, str]] = []

    def add(col: str, agg: str, expr: str) -> None:
        layout.append((col, agg))
        exprs.append(expr)

    for name, cand in columns:
        # Comparisons name BINARY: a column declared with the application's own collation
        # (registered in its process, not ours) would otherwise fail the whole query.
        c = f"({qi(name)} COLLATE BINARY)"
        add(name, "nonnull", f"count({c})")
        if cand is None or cand.kind in ("smallint", "integer") or name in ranges:
            add(name, "int_min", f"min(CASE WHEN typeof({c}) = 'integer' THEN {c} END)")
            add(name, "int_max", f"max(CASE WHEN typeof({c}) = 'integer' THEN {c} END)")
        if cand is None:
            for cls, agg in (("integer", "integers"), ("real", "reals"), ("text", "texts")):
                add(name, agg, f"sum(typeof({c}) = '{cls}')")
            add(name, "blobs", f"sum(typeof({c}) = 'blob')")
            continue
        if cand.kind == "varchar":
            add(name, "max_chars", f"max(CASE WHEN typeof({c}) = 'text' THEN length({c}) END)")
        if cand.kind == "numeric" and cand.precision is not None:
            # "texts" reused: the count of numbers that do not fit numeric(p,s)
            number = f"typeof({c}) IN ('integer','real')"
            add(name, "texts", f"sum({number} AND ({_numeric_misfit(cand, c)}))")
        add(name, "dirty", f"sum({dirty_sql(cand, c)})")
    select = ", ".join(["count(*)", *exprs])
    return ProfileQuery(f"SELECT {select} FROM {table_sql}", layout)


def _numeric_misfit(cand: PgType, c: str) -> str:
    """SQL true for an integer or REAL that does not fit ``numeric(p,s)`` (``cand`` has a
    precision); the caller has ruled out the other storage classes.

    A REAL fits when it is the double nearest to a decimal with ``s`` places. Up to 15 digits
    that is ``round(x * 10^s) / 10^s = x`` (integer rounding and one correctly rounded
    division, both exact there, also for an integer below the limit), twice as fast as
    ``round(x, s)``, which prints the number (and would round a large integer)."""
    precision, scale = cand.precision or 0, cand.scale or 0
    limit = 10 ** (precision - scale)
    if precision <= 15:
        unit = 10**scale
        inexact = f"round({c} * {unit}) / {unit}.0 <> {c}"
    else:
        inexact = f"(typeof({c}) = 'real' AND round({c}, {scale}) <> {c})"
    return f"{c} >= {limit} OR {c} <= -{limit} OR {inexact}"


def affinity(declared: str) -> str:
    """The column affinity SQLite gives a declared type (its rules, in its order)."""
    d = declared.upper()
    if "INT" in d:
        return "integer"
    if any(k in d for k in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in d or not d:
        return "blob"
    if any(k in d for k in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


UnusualColumn = tuple[str, PgType, bool, str]  # name, candidate, must not be NULL, affinity


def unusual_query(table_sql: str, columns: list[UnusualColumn]) -> str:
    """SQL answering 1 when any row holds a value the quick plan cannot assume away.

    For columns whose type is declared, one EXISTS scan (stopping at the first hit, each row's
    tests short-circuiting) usually replaces the profile's aggregates: a value is *unusual*
    when it is dirty for the candidate type, is NULL in a column that must not hold NULL, or
    would change the type :func:`decide` picks (text longer than varchar(n), a number outside
    numeric(p,s) or smallint). When no row is unusual the profile is known without counting:
    nothing dirty, nothing to widen. ``affinity``: what SQLite converted the stored values
    to (see :func:`affinity`), "" when not known (a generated column)."""
    from .source import balanced, qi

    tests = [
        _unusual_test(cand, f"({qi(name)} COLLATE BINARY)", notnull, aff)
        for name, cand, notnull, aff in columns
    ]
    where = balanced(tests, "OR") if tests else "0"
    return f"SELECT EXISTS (SELECT 1 FROM {table_sql} WHERE {where})"


def _unusual_test(cand: PgType, c: str, notnull: bool, aff: str) -> str:
    """One column's part of :func:`unusual_query`.

    Function calls are most of the scan's cost, so the storage class is tested with
    comparisons where the affinity allows it: numbers sort before text, text before blobs;
    in an INTEGER or NUMERIC column a REAL is stored only when it is not integral, and
    ``c <> CAST(c AS INTEGER)`` holds for any value but an integer. A NULL is caught by
    ``coalesce(test, 1)`` in a column that must not hold one (not by ``IS NULL``, which SQLite
    folds to false for a NOT NULL column). The tests after the first may assume a value of the
    expected class or NULL, which no comparison counts."""
    k = cand.kind
    null = "" if notnull else ",'null'"

    def is_not(cheap: str | None, classes: str) -> str:
        if cheap is None:
            return f"typeof({c}) NOT IN ({classes}{null})"
        return f"coalesce({cheap}, 1)" if notnull else cheap

    if k in ("bigint", "integer", "smallint"):
        cast = f"{c} <> CAST({c} AS INTEGER)" if aff in ("integer", "numeric") else None
        tests = [is_not(cast, "'integer'")]
        if k == "smallint":
            tests += [f"{c} < -32768", f"{c} > 32767"]
    elif k in ("text", "varchar"):
        blob = f"{c} >= x''" if aff == "text" else None  # numbers are text there
        tests = [is_not(blob, "'text'"), f"instr({c}, char(0)) > 0"]
        if k == "varchar" and cand.length is not None:
            tests.append(f"length({c}) > {cand.length}")
    elif k == "numeric":
        tests = [is_not(f"{c} >= ''", "'integer','real'")]  # text or blob, any affinity
        if cand.precision is None:
            tests += [f"{c} > 1.7976931348623157e308", f"{c} < -1.7976931348623157e308"]
        else:
            tests.append(_numeric_misfit(cand, c))
    else:
        tests = [dirty_where(cand, c)] + ([f"typeof({c}) = 'null'"] if notnull else [])
    return "(" + " OR ".join(tests) + ")"


def decide(
    col: SourceColumn, cand: PgType | None, why: str, prof: ColumnProfile, opts: TypeOptions
) -> tuple[PgType, str, list[str]]:
    """Final type from the candidate and the profile; returns (type, reason, warnings)."""
    warnings: list[str] = []
    if cand is None:
        return (*_from_values(prof), warnings)
    if cand.kind == "smallint":
        lo, hi = prof.int_min, prof.int_max
        if lo is not None and hi is not None and not (lo >= -32768 and hi <= 32767):
            return PgType("bigint"), f"{why}; values exceed smallint -> bigint", warnings
    if cand.kind == "bigint" and opts.int32:
        lo, hi = prof.int_min, prof.int_max
        if lo is None or (lo >= -(2**31) and hi is not None and hi < 2**31):
            return PgType("integer"), f"{why}; int32 option and values fit -> integer", warnings
    if (
        cand.kind == "varchar"
        and cand.length is not None
        and prof.max_text_chars is not None
        and prof.max_text_chars > cand.length
    ):
        warnings.append(
            f"{col.declared_type} holds values up to {prof.max_text_chars} characters "
            "(SQLite ignores declared lengths): mapped to text"
        )
        return PgType("text"), f"{why}; longer values present -> text", warnings
    if cand.kind == "numeric" and cand.precision is not None and prof.texts:
        warnings.append(
            f"{prof.texts} value(s) do not fit {cand.sql} (SQLite does not enforce it): "
            "mapped to numeric without precision so nothing is rounded"
        )
        return PgType("numeric"), f"{why}; values exceed the precision -> numeric", warnings
    return cand, why, warnings


def _from_values(prof: ColumnProfile) -> tuple[PgType, str]:
    classes = [
        n
        for n, k in (
            ("integer", prof.integers),
            ("real", prof.reals),
            ("text", prof.texts),
            ("blob", prof.blobs),
        )
        if k
    ]
    if not classes:
        return PgType("text"), "no values to judge by -> text"
    if classes == ["integer"]:
        return PgType("bigint"), "only integers stored -> bigint"
    if set(classes) <= {"integer", "real"}:
        big = max(abs(prof.int_min or 0), abs(prof.int_max or 0)) > 2**53
        if big:
            return PgType("numeric"), "integers and reals, some beyond 2^53 -> numeric"
        return PgType("double"), "integers and reals stored -> double precision"
    if classes == ["blob"]:
        return PgType("bytea"), "only blobs stored -> bytea"
    if "blob" in classes:
        return PgType("bytea"), "blobs mixed with other values -> bytea (text as UTF-8 bytes)"
    return PgType("text"), f"{'/'.join(classes)} values stored -> text"
