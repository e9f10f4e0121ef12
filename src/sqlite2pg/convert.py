"""Value converters: one SQLite value in, the value for the PostgreSQL column out, or ``Reject``.

Pure functions, chosen once per column. They only run on columns whose profile found values that
cannot stream to COPY untouched, so the common case pays nothing per value. Nothing is altered
silently: a value is converted only where the result is the same datum (the integer 1 to true,
ISO text with an offset to the same instant in UTC, epoch seconds to the same instant), otherwise
it is rejected with a reason, unless the column's policy says otherwise (and then it is counted).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from .model import ColumnPlan, PgType

Converter = Callable[[object], object]


class Reject(Exception):
    """The value cannot be stored faithfully in the target column; the message says why."""


class PolicyApplied(Exception):
    """Raised by policy wrappers to report a value changed by a configured policy."""

    def __init__(self, value: object) -> None:
        self.value = value


INT_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
# re.ASCII: \d would also take other scripts' digits ('٣' is not the integer 3 to SQLite or
# PostgreSQL), which would turn unreadable text into a number.
_INT_TEXT = re.compile(r"[+-]?\d+\Z", re.ASCII)
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\Z",
    re.IGNORECASE | re.ASCII,
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\Z", re.ASCII)
_TRUE = {"1", "t", "true", "y", "yes", "on"}
_FALSE = {"0", "f", "false", "n", "no", "off"}
_EPOCH = datetime(1970, 1, 1)


def describe(value: object) -> str:
    """The original value as the user should see it in a rejection record (shortened)."""
    if isinstance(value, bytes):
        shown = value[:32].hex()
        kind = "text bytes" if type(value) is not bytes else "blob"
        return f"{kind} x'{shown}{'...' if len(value) > 32 else ''}' ({len(value)} bytes)"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _text(value: object) -> object:
    """Decode TEXT read as raw bytes in careful mode; other values pass."""
    from .source import RawText

    if isinstance(value, RawText):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Reject(f"text is not valid UTF-8 (byte {exc.start})") from None
    return value


def to_int(kind: str) -> Converter:
    lo, hi = INT_RANGES[kind]

    def conv(v: object) -> object:
        v = _text(v)
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            if lo <= v <= hi:
                return v
            raise Reject(f"{v} is out of range for {kind}")
        if isinstance(v, float):
            if math.isfinite(v) and v.is_integer() and lo <= v <= hi:
                return int(v)
            raise Reject(f"real {v!r} in an integer column")
        if isinstance(v, str):
            if _INT_TEXT.match(v) and lo <= int(v) <= hi:
                return int(v)
            raise Reject(f"text in an integer ({kind}) column")
        raise Reject(f"binary data in an integer ({kind}) column")

    return conv


def to_double(v: object) -> object:
    v = _text(v)
    if isinstance(v, float):
        return v
    if isinstance(v, int):
        f = float(v)
        if int(f) == v:
            return f
        raise Reject("integer cannot be represented exactly in double precision")
    if isinstance(v, str):
        raise Reject("text in a double precision column")
    raise Reject("binary data in a double precision column")


def to_numeric(t: PgType) -> Converter:
    def conv(v: object) -> object:
        v = _text(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Reject(f"{'text' if isinstance(v, str) else 'binary data'} in a numeric column")
        if isinstance(v, float) and math.isnan(v):
            raise Reject("NaN in a numeric column")
        d = Decimal(v) if isinstance(v, int) else Decimal(repr(v))
        if t.precision is not None:
            if not d.is_finite():
                raise Reject(f"{v!r} does not fit {t.sql}")
            scale = t.scale or 0
            exp = d.as_tuple().exponent
            assert isinstance(exp, int)
            if -exp > scale or d.adjusted() >= t.precision - scale:
                raise Reject(f"{v!r} does not fit {t.sql} without rounding")
        return d

    return conv


def to_text(t: PgType, nul: str) -> Converter:
    limit = t.length if t.kind == "varchar" else None

    def conv(v: object) -> object:
        v = _text(v)
        if isinstance(v, str):
            s = v
        elif isinstance(v, bool) or v is None:
            raise Reject("unexpected value")
        elif isinstance(v, int):
            s = str(v)
        elif isinstance(v, float):
            s = repr(v)
        else:
            assert isinstance(v, bytes)
            raise Reject(f"binary data ({len(v)} bytes) in a text column")
        if "\x00" in s:
            if nul != "strip":
                raise Reject("text contains a NUL byte, which PostgreSQL text cannot hold")
            s = s.replace("\x00", "")
            if limit is not None and len(s) > limit:
                raise Reject(f"{len(s)} characters exceed {t.sql}")
            raise PolicyApplied(s)
        if limit is not None and len(s) > limit:
            raise Reject(f"{len(s)} characters exceed {t.sql}")
        return s

    return conv


def to_bytea(v: object) -> object:
    from .source import RawText

    if isinstance(v, RawText):
        return bytes(v)
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise Reject("number in a binary (bytea) column")


def to_bool(v: object) -> object:
    v = _text(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if v in (0, 1):
            return bool(v)
        raise Reject(f"{v!r} is not a boolean (0 or 1)")
    if isinstance(v, str):
        low = v.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise Reject("text is not a boolean")
    raise Reject("binary data in a boolean column")


def parse_timestamp(s: str) -> datetime:
    """ISO 8601 text in SQLite's common forms; an offset moves the instant to UTC (naive)."""
    m = _ISO.match(s.strip())
    if not m:
        raise Reject("text is not an ISO 8601 date/time")
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    micro = 0
    if frac:
        if len(frac) > 6 and int(frac[6:]) != 0:
            raise Reject("fraction of a second finer than PostgreSQL's microseconds")
        micro = int(frac[:6].ljust(6, "0"))
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), micro)
    except ValueError as exc:
        raise Reject(f"impossible date/time ({exc})") from None
    if off and off.upper() != "Z":
        sign = 1 if off[0] == "+" else -1
        digits = off[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 15 or minutes > 59:
            raise Reject(f"impossible UTC offset {off}")
        try:
            dt = dt - sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:
            raise Reject("the instant in UTC is outside the range of years 1 to 9999") from None
    return dt


def epoch_to_datetime(v: int | float) -> datetime:
    """Unix epoch seconds, or milliseconds/microseconds recognised by magnitude."""
    if not math.isfinite(v):
        raise Reject(f"{v!r} is not a point in time")
    mag = abs(v)
    if mag < 1e11:
        seconds = v
    elif mag < 1e14:
        seconds = v / 1000
    elif mag < 1e17:
        seconds = v / 1_000_000
    else:
        raise Reject(f"number {v!r} is too large to be an epoch timestamp")
    try:
        if isinstance(v, int):  # exact: no float division for integer milli/microseconds
            unit = "seconds" if mag < 1e11 else "milliseconds" if mag < 1e14 else "microseconds"
            return _EPOCH + timedelta(**{unit: v})
        whole = int(seconds)
        micro = round((seconds - whole) * 1_000_000)
        return _EPOCH + timedelta(seconds=whole, microseconds=micro)
    except OverflowError:
        raise Reject(f"number {v!r} is outside the timestamp range") from None


JULIAN_DAY_RANGE = (1721425.5, 5373484.5)  # 0001-01-01 to 10000-01-01
_JD_EPOCH_MS = 210_866_760_000_000  # julian day 2440587.5 (1970-01-01) in milliseconds


def number_to_datetime(v: int | float) -> datetime:
    """A number in a date/time column, read by SQLite's own conventions: INTEGER is Unix time
    (seconds, or milliseconds/microseconds by magnitude), a REAL between the julian days of
    the years 1 and 9999 is a julian day number (what julianday() stores), other REALs are
    Unix time with a fraction (what time.time() stores). An INTEGER in the julian-day range
    could be either, and is rejected rather than guessed."""
    if JULIAN_DAY_RANGE[0] <= v < JULIAN_DAY_RANGE[1]:
        if isinstance(v, int):
            # NUMERIC affinity (DATETIME) stores julianday() of a noon as an INTEGER
            raise Reject(
                f"{v} is ambiguous: a julian day (SQLite stores whole ones as integers) or "
                "Unix time in early 1970"
            )
        # to the millisecond, as SQLite itself reads julian days
        ms = round(v * 86_400_000) - _JD_EPOCH_MS
        return _EPOCH + timedelta(milliseconds=ms)
    return epoch_to_datetime(v)


def _to_datetime(v: object, column: str) -> datetime:
    """ISO text or a number (Unix time / julian day) as a naive UTC datetime."""
    v = _text(v)
    if isinstance(v, str):
        return parse_timestamp(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return number_to_datetime(v)
    raise Reject(f"binary data in a {column} column")


def to_timestamp(with_tz: bool) -> Converter:
    def conv(v: object) -> object:
        dt = _to_datetime(v, "timestamp")
        return dt.replace(tzinfo=timezone.utc) if with_tz else dt

    return conv


def to_date(v: object) -> object:
    dt = _to_datetime(v, "date")
    if dt.time() != time(0):
        raise Reject("value has a time of day, which a date column would drop")
    return dt.date()


def to_time(v: object) -> object:
    v = _text(v)
    if not isinstance(v, str):
        raise Reject("not a time of day")
    m = _TIME.match(v.strip())
    if not m:
        raise Reject("text is not a time of day (HH:MM[:SS[.fff]])")
    hh, mi, ss, frac = m.groups()
    if frac and len(frac) > 6 and int(frac[6:]) != 0:
        raise Reject("fraction of a second finer than PostgreSQL's microseconds")
    try:
        return time(int(hh), int(mi), int(ss or 0), int((frac or "0")[:6].ljust(6, "0")))
    except ValueError as exc:
        raise Reject(f"impossible time ({exc})") from None


def _no_constant(name: str) -> object:
    raise ValueError(name)


def to_jsonb(v: object) -> object:
    v = _text(v)
    if isinstance(v, bool) or v is None:
        raise Reject("unexpected value")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise Reject(f"{v!r} is not valid JSON")
        return repr(v)
    if isinstance(v, bytes):
        raise Reject("binary data in a JSON column")
    assert isinstance(v, str)
    if "\x00" in v:
        raise Reject("text is not valid JSON (it contains a NUL byte)")
    try:
        doc = json.loads(v, parse_constant=_no_constant)
    except ValueError:
        raise Reject("text is not valid JSON") from None
    except RecursionError:
        raise Reject("JSON nested too deeply to check (and for PostgreSQL's jsonb)") from None
    problem = _jsonb_problem(doc)
    if problem:
        raise Reject(problem)
    return v


def _jsonb_problem(doc: object) -> str | None:
    """What jsonb refuses in a parsed document: \\u0000 and unpaired UTF-16 surrogates."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "JSON contains \\u0000, which jsonb cannot hold"
            if _SURROGATE.search(item):
                return "JSON contains an unpaired UTF-16 surrogate escape, which jsonb refuses"
    return None


def to_uuid(v: object) -> object:
    from .source import RawText

    if isinstance(v, bytes) and not isinstance(v, RawText):
        if len(v) == 16:
            return uuid.UUID(bytes=bytes(v))
        raise Reject(f"{len(v)}-byte blob is not a UUID (16 bytes)")
    v = _text(v)
    if isinstance(v, str):
        try:
            return uuid.UUID(v)
        except ValueError:
            raise Reject("text is not a UUID") from None
    raise Reject("number in a UUID column")


def converter_for(t: PgType, nul: str = "reject") -> Converter:
    k = t.kind
    if k in INT_RANGES:
        return to_int(k)
    table: dict[str, Converter] = {
        "double": to_double,
        "bytea": to_bytea,
        "boolean": to_bool,
        "date": to_date,
        "time": to_time,
        "jsonb": to_jsonb,
        "uuid": to_uuid,
    }
    if k in table:
        return table[k]
    if k == "numeric":
        return to_numeric(t)
    if k in ("text", "varchar"):
        return to_text(t, nul)
    if k in ("timestamp", "timestamptz"):
        return to_timestamp(k == "timestamptz")
    raise ValueError(k)


def column_converter(col: ColumnPlan) -> Converter:
    """The column's converter with its invalid-value policy applied around it."""
    base = converter_for(col.type, col.nul)
    if col.on_invalid != "null":
        return base

    def lenient(v: object) -> object:
        try:
            return base(v)
        except Reject:
            if col.notnull:
                raise
            raise PolicyApplied(None) from None

    return lenient
