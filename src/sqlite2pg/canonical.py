"""The canonical text of a value: the same string on both sides of a verification.

PostgreSQL's own text output (in a session with fixed settings, see ``PG_SESSION``) is the
canonical form, so the PostgreSQL side needs no per-type code: ``ROW(c1, c2, ...)::text``
renders a row, ``c::text`` a value. Only ``numeric`` is normalised (``trim_scale``), because
``numeric(10,2)`` prints 1 as ``1.00`` while the source holds ``1``: equal values, different text.

The SQLite side produces the same strings from the *source* values:

* In Python (``value_text``), from the value the sync would store: the column's converter
  (ISO text or epoch numbers to timestamps, 0/1 to booleans, ...) and then PostgreSQL's output
  format for the type: shortest round-trip doubles as ``float8out`` writes them, ``trim_scale``'d
  numerics, ISO timestamps with trailing fraction zeros trimmed, ``\\x``-hex bytea, ``t``/``f``,
  jsonb's normal form (keys ordered by length then bytes, ``", "`` and ``": "`` separators, numbers
  as numerics). Numerics are the source's exact decimal (``Decimal(repr(real))``), never rounded
  to the column's scale: if the target rounded a value, that is a difference.
* In SQL (``sqlite_element``), for the columns whose stored values all stream to COPY untouched
  (the plan's profile found no "dirty" value): integers, text, ISO timestamps, dates, times,
  blobs, 0/1 booleans and UUIDs are rewritten by SQLite's own string functions, so checksumming a
  table costs no Python call per row. Doubles, numerics stored as REAL and JSON go through one
  registered function per value (``s2p_canon``); so does every value of a "dirty" column.

Rows are rendered like PostgreSQL's ``record_out``: ``(v1,v2,...)``, NULL as nothing, a value
quoted with ``"`` when it is empty or holds ``"``, ``\\``, ``(``, ``)``, ``,`` or white space, and
``"``/``\\`` doubled inside quotes. The encoding is unambiguous, so a checksum over row texts
compares rows exactly (up to the hash).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timezone
from decimal import Decimal
from fractions import Fraction

from .convert import PolicyApplied, Reject, column_converter
from .model import ColumnPlan, PgType
from .source import RawText, qi
from .sqlite_sql import quote_ident

#: Settings that make PostgreSQL's text output the canonical form described above.
PG_SESSION = (
    "SET DateStyle TO ISO, YMD",
    "SET IntervalStyle TO postgres",
    "SET TimeZone TO 'UTC'",
    "SET extra_float_digits TO 1",
    "SET bytea_output TO hex",
)

#: Name of the SQLite function that renders one value (registered by ``register``).
SQLITE_FUNCTION = "s2p_canon"
#: What ``s2p_canon`` returns for a value the target cannot hold: never equal to PG text.
REJECTED_MARK = "\x00rejected\x00"

ValueText = Callable[[object], "str | None"]

_NEEDS_QUOTES = re.compile(r'["\\(),\s]|\A\Z', re.ASCII)
_QUOTE_CHARS = '"\\(), \t\n\x0b\x0c\r'


# --------------------------------------------------------------------------- record_out


def record_element(text: str | None) -> str:
    """One field of ``ROW(...)::text``: NULL is empty, specials are quoted as record_out does."""
    if text is None:
        return ""
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '""') + '"'
    return text


def record_text(texts: list[str | None]) -> str:
    return "(" + ",".join(record_element(t) for t in texts) + ")"


def parse_record(text: str) -> list[str | None]:
    """The fields of a ``record_out`` text (the inverse of ``record_text``)."""
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"not a row text: {text[:40]!r}")
    fields: list[str | None] = []
    i, end = 1, len(text) - 1
    while True:
        if i < end and text[i] == '"':
            buf: list[str] = []
            i += 1
            while True:
                ch = text[i]
                if ch == "\\":
                    buf.append(text[i + 1])
                    i += 2
                elif ch == '"' and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
            fields.append("".join(buf))
        else:
            j = text.find(",", i, end)
            j = end if j < 0 else j
            fields.append(text[i:j] or None)
            i = j
        if i >= end:
            return fields
        i += 1  # the comma


# --------------------------------------------------------------------------- scalar formats


def float8_text(v: float) -> str:
    """``float8out`` with extra_float_digits >= 1 (PostgreSQL's Ryu): the shortest decimal strictly
    inside the value's rounding interval, in fixed notation for decimal exponents -4..14, else
    ``d.ddde+XX``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    ds, exp = _shortest(abs(v))
    point = len(ds) + exp - 1  # decimal exponent of the first digit
    if -4 <= point < 15:
        text = _fixed(ds, exp)
    else:
        text = ds[0] + ("." + ds[1:] if len(ds) > 1 else "") + f"e{'-' if point < 0 else '+'}"
        text += f"{abs(point):02d}"
    return ("-" if v < 0 else "") + text


def _shortest(v: float) -> tuple[str, int]:
    """Digits (no trailing zeros) and exponent of the last digit, as PostgreSQL's Ryu picks them.

    Python's repr is the shortest string that reads back as ``v`` *including* the interval's
    bounds (read back with ties-to-even); Ryu as PostgreSQL builds it excludes the bounds. Both
    pick the candidate nearest to ``v``. So repr is the answer unless it lies exactly on a bound,
    which needs it to be a binary fraction: a decimal d * 10^e with e < 0 is one only if 5^-e
    divides d. Those rare values take the exact search.
    """
    _, digits, exp = Decimal(repr(v)).as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    stripped = ds.rstrip("0")
    exp += len(ds) - len(stripped)
    if exp < 0 and int(stripped) % 5**-exp:
        return stripped, exp
    return _shortest_exact(v)


def _shortest_exact(v: float) -> tuple[str, int]:
    x = Fraction(v)
    up = math.nextafter(v, math.inf)
    high = (x + Fraction(up)) / 2 if math.isfinite(up) else x + Fraction(math.ulp(v)) / 2
    low = (x + Fraction(math.nextafter(v, 0.0))) / 2
    p10 = len(str(int(x))) - 1 if x >= 1 else -len(str(int(1 / x)))
    while Fraction(10) ** p10 > x:
        p10 -= 1
    while Fraction(10) ** (p10 + 1) <= x:
        p10 += 1
    for k in range(1, 19):
        p = p10 - k + 1
        scale = Fraction(10) ** p
        lo_d = math.floor(low / scale) + 1
        hi_d = math.ceil(high / scale) - 1
        if lo_d > hi_d:
            continue
        t = x / scale
        d = math.floor(t)
        rest = t - d
        if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and d % 2):
            d += 1
        d = min(max(d, lo_d), hi_d)
        text = str(d)
        stripped = text.rstrip("0")
        return stripped, p + len(text) - len(stripped)
    raise AssertionError(f"no decimal for {v!r}")  # pragma: no cover - 17 digits always do


def _fixed(ds: str, exp: int) -> str:
    if exp >= 0:
        return ds + "0" * exp
    cut = len(ds) + exp
    if cut > 0:
        return ds[:cut] + "." + ds[cut:]
    return "0." + "0" * -cut + ds


def numeric_text(d: Decimal) -> str:
    """``trim_scale(n)::text``: no exponent, no trailing fraction zeros, zero without sign."""
    if d.is_nan():
        return "NaN"
    if d.is_infinite():
        return "Infinity" if d > 0 else "-Infinity"
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _fraction(micro: int) -> str:
    return "." + f"{micro:06d}".rstrip("0") if micro else ""


def timestamp_text(dt: datetime) -> str:
    text = (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}{_fraction(dt.microsecond)}"
    )
    if dt.tzinfo is not None:
        off = dt.utcoffset()
        if off:  # converters always give UTC; anything else is shown as UTC
            return timestamp_text(dt.astimezone(timezone.utc))
        text += "+00"
    return text


def time_text(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}{_fraction(t.microsecond)}"


def jsonb_text(text: str) -> str:
    """jsonb's output form of a JSON document, as PostgreSQL prints ``'...'::jsonb::text``."""
    return _jsonb(json.loads(text, parse_float=Decimal, parse_int=Decimal))


def _jsonb(v: object) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Decimal):
        text = format(v, "f")
        return text[1:] if v.is_zero() and text.startswith("-") else text
    if isinstance(v, str):
        return _json_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_jsonb(x) for x in v) + "]"
    assert isinstance(v, dict)
    keys = sorted(v, key=lambda k: (len(k.encode("utf-8", "surrogatepass")), k))
    return "{" + ", ".join(f"{_json_string(k)}: {_jsonb(v[k])}" for k in keys) + "}"


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                 "\t": "\\t"}  # fmt: skip
_JSON_SPECIAL = re.compile(r'["\\\x00-\x1f]')


def _json_string(s: str) -> str:
    def esc(m: re.Match[str]) -> str:
        ch = m.group(0)
        return _JSON_ESCAPES.get(ch) or f"\\u{ord(ch):04x}"

    return '"' + _JSON_SPECIAL.sub(esc, s) + '"'


def _text_of(v: object) -> str:
    if isinstance(v, RawText):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Reject(f"text is not valid UTF-8 (byte {exc.start})") from None
    if isinstance(v, str):
        return v
    raise Reject(f"unexpected {type(v).__name__} value")


_FORMATS: dict[str, Callable[[object], str]] = {
    "smallint": lambda v: str(int(v)),  # type: ignore[call-overload]
    "integer": lambda v: str(int(v)),  # type: ignore[call-overload]
    "bigint": lambda v: str(int(v)),  # type: ignore[call-overload]
    "double": lambda v: float8_text(float(v)),  # type: ignore[arg-type]
    "numeric": lambda v: numeric_text(v if isinstance(v, Decimal) else Decimal(str(v))),
    "text": _text_of,
    "varchar": _text_of,
    "bytea": lambda v: "\\x" + bytes(v).hex(),  # type: ignore[call-overload]
    "boolean": lambda v: "t" if v else "f",
    "timestamp": lambda v: timestamp_text(v),  # type: ignore[arg-type]
    "timestamptz": lambda v: timestamp_text(v),  # type: ignore[arg-type]
    "date": lambda v: v.isoformat() if isinstance(v, date) else str(v),
    "time": lambda v: time_text(v),  # type: ignore[arg-type]
    "jsonb": lambda v: jsonb_text(_text_of(v)),
    "uuid": lambda v: str(v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))),
}


def value_text(col: ColumnPlan) -> ValueText:
    """Source value -> canonical text of what the target should hold (None for NULL).

    Raises ``Reject`` when the target cannot hold the value (the sync rejects such rows).
    Numerics keep the source's exact decimal: no rounding to the column's scale.
    """
    plan = col
    if col.type.kind == "numeric":
        plan = replace(col, type=PgType("numeric"))
    conv = column_converter(plan)
    fmt = _FORMATS[col.type.kind]

    def text(v: object) -> str | None:
        if v is None:
            return None
        try:
            out = conv(v)
        except PolicyApplied as applied:
            out = applied.value
        if out is None:
            return None
        try:
            return fmt(out)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise Reject(f"cannot be represented: {exc}") from None

    return text


# --------------------------------------------------------------------------- SQL expressions

_QUOTE_CHARS_BY_FREQUENCY = ' ,()"\\\t\n\r\x0b\x0c'  # the same set, most frequent first


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def sqlite_element(col: ColumnPlan, index: int, clean: bool) -> str:
    """SQLite expression for one field of the row text (``record_element`` of the canonical
    text). ``index`` is the column's slot in the registered ``s2p_canon`` function.

    Integers, text, blobs, 0/1 booleans and most REALs are recognised per value by ``typeof`` and
    rendered in SQL whatever else the column holds. Dates, times, timestamps and UUIDs are
    rendered in SQL only when ``clean`` (the plan's profile found every stored value in a form
    COPY takes as it is); otherwise, and for anything else, ``s2p_canon`` renders the value.
    A value SQL renders differently from what the sync stored (text with a NUL byte, say) makes
    its range differ and is then compared row by row in Python: slower, never wrong."""
    c = qi(col.source.name)
    udf = f"{SQLITE_FUNCTION}({index}, {c})"
    k = col.type.kind

    def case(*whens: str) -> str:
        return f"CASE WHEN {c} IS NULL THEN '' {' '.join(whens)} ELSE {udf} END"

    if k in ("smallint", "integer", "bigint"):
        return case(f"WHEN typeof({c}) = 'integer' THEN {c}")
    if k in ("text", "varchar"):
        special = " OR ".join(f"instr({c}, {_sql_literal(ch)})" for ch in _QUOTE_CHARS_BY_FREQUENCY)
        return case(
            f"WHEN typeof({c}) = 'text' THEN CASE WHEN {c} = '' OR {special} THEN "
            f"'\"' || replace(replace({c}, '\\', '\\\\'), '\"', '\"\"') || '\"' ELSE {c} END"
        )
    if k == "bytea":
        return case(f"WHEN typeof({c}) = 'blob' THEN '\"\\\\x' || lower(hex({c})) || '\"'")
    if k == "boolean":
        return case(
            f"WHEN typeof({c}) = 'integer' AND {c} IN (0, 1) THEN "
            f"CASE {c} WHEN 1 THEN 't' ELSE 'f' END"
        )
    # SQLite writes a REAL as printf('%!.15g'): when that text reads back as the same double,
    # it holds the shortest round-trip digits, and in [1e-4, 1e15) both %g and float8out write
    # it in fixed notation; SQL then only trims the trailing zeros. Other REALs go to Python.
    as_text = f"CAST({c} AS TEXT)"
    fixed = (
        f"WHEN typeof({c}) = 'real' AND ({c} BETWEEN 0.0001 AND 999999999999999.9 OR "
        f"{c} BETWEEN -999999999999999.9 AND -0.0001) "
        f"AND CAST({as_text} AS REAL) = {c} THEN rtrim(rtrim({as_text}, '0'), '.')"
    )
    if k == "double":
        small = f"{c} BETWEEN -999999999999999 AND 999999999999999"
        return case(f"WHEN typeof({c}) = 'integer' AND {small} THEN {c}", fixed)
    if k == "numeric":
        return case(f"WHEN typeof({c}) = 'integer' THEN {c}", f"WHEN {c} = 0 THEN '0'", fixed)
    if not clean or k == "jsonb":
        return case()
    if k == "date":
        return f"coalesce({c}, '')"
    if k == "uuid":
        return f"coalesce(lower({c}), '')"
    if k in ("timestamp", "timestamptz"):
        tz = " || '+00'" if k == "timestamptz" else ""
        return (
            f"CASE WHEN {c} IS NULL THEN '' ELSE '\"' || CASE length({c}) "
            f"WHEN 10 THEN {c} || ' 00:00:00' WHEN 19 THEN {c} "
            f"ELSE rtrim(rtrim({c}, '0'), '.') END{tz} || '\"' END"
        )
    if k == "time":
        return (
            f"CASE WHEN {c} IS NULL THEN '' WHEN length({c}) = 8 THEN {c} "
            f"ELSE rtrim(rtrim({c}, '0'), '.') END"
        )
    return case()


def sqlite_row(elements: list[str]) -> str:
    """The row text from its fields: one printf (cheaper than chained ||) when SQLite's limit
    on function arguments allows."""
    if len(elements) < 100:
        return f"printf('({','.join(['%s'] * len(elements))})', {', '.join(elements)})"
    return "'(' || " + " || ',' || ".join(f"({e})" for e in elements) + " || ')'"


def pg_value(name: str, pg_type: str) -> str:
    """PostgreSQL expression whose text is the canonical text of column ``name``."""
    col = quote_ident(name)
    return f"trim_scale({col})" if pg_type.startswith("numeric") else col


def pg_row(values: list[str]) -> str:
    return f"ROW({', '.join(values)})::text"


def element_function(columns: list[ColumnPlan]) -> Callable[[int, object], str]:
    """The ``s2p_canon(index, value)`` function for SQLite: the record field of one value."""
    texts = [value_text(c) for c in columns]

    def canon(index: int, value: object) -> str:
        try:
            return record_element(texts[index](value))
        except Exception:  # an exception inside SQLite would end the whole query
            return REJECTED_MARK

    return canon
