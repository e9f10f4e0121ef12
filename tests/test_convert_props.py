"""Property tests: any value SQLite can hold, in a column of any kind, either arrives in
PostgreSQL equal (in the canonical sense of the column's type) or is rejected with a reason.

End to end: each example is a list of values written into one SQLite table per declared type,
migrated for real into a fresh schema, and compared value by value with what SQLite stored.
Then pure properties of the converters."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

import sqlite2pg.api as api
from sqlite2pg.convert import (
    PolicyApplied,
    Reject,
    converter_for,
    epoch_to_datetime,
    parse_timestamp,
    to_bool,
    to_int,
    to_text,
)
from sqlite2pg.model import PgType
from sqlite2pg.source import RawText

# --------------------------------------------------------------------------- values

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# SQLite stores NaN as NULL, so a NaN never reaches us as a value.
FLOATS = st.floats(allow_nan=False)
DATETIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
OFFSETS = st.integers(min_value=-15 * 60 + 1, max_value=15 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m))
)


def _iso(dt: datetime, sep: str, spec: str) -> str:
    return dt.isoformat(sep=sep, timespec=spec)


LOOKALIKES = st.one_of(
    st.builds(_iso, DATETIMES, st.sampled_from(["T", " "]), st.sampled_from(
        ["seconds", "milliseconds", "microseconds", "minutes"]
    )),
    st.builds(lambda dt, tz: dt.replace(tzinfo=tz).isoformat(), DATETIMES, OFFSETS),
    st.builds(lambda dt: dt.isoformat() + "Z", DATETIMES),
    st.builds(lambda d: d.isoformat(), st.dates()),
    st.builds(lambda t: t.isoformat(), st.times()),
    st.builds(str, st.uuids()),
    st.builds(json.dumps, st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=6,
    )),
    st.sampled_from([
        "true", "false", "TRUE", "no", "yes", "t", "f", " on ", "2", "0", "1", "-0", "+5", "007",
        "1e3", "0x10", "1.50", "  12  ", "\u0663", "\u0661\u0662:\u0663\u0660",
        "\u0662\u0660\u0662\u0660-\u0660\u0661-\u0660\u0662", "2023-02-30", "0000-01-01",
        "2020-01-02 24:00:00", "2020-01-02T03:04:05.1234567", "2020-01-02T03:04:05+99:00",
        "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", '"\\ud800"', '{"a":"\\u0000"}',
        "NaN", "Infinity", "[1,]", "{a:1}", "12345678123456781234567812345678", "",
        "9223372036854775808", "-9223372036854775809", "\x00", "a\x00b", "😀", "\u202e",
    ]),
)  # fmt: skip

SQLITE_VALUES = st.one_of(
    st.none(),
    INT64,
    st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 32767, -32768, 32768]),
    FLOATS,
    st.sampled_from([math.inf, -math.inf, 5e-324, 1.7976931348623157e308, -0.0, 0.1, 1e16]),
    st.floats(min_value=1721425.5, max_value=5373484.4),  # julian day numbers
    st.text(),
    LOOKALIKES,
    st.binary(),
    st.sampled_from([b"", b"\x00", uuid.uuid4().bytes, b"\xc3\x28"]),
)

KINDS = {
    "int": "INTEGER",
    "small": "SMALLINT",
    "real": "REAL",
    "num": "NUMERIC",
    "num102": "NUMERIC(10,2)",
    "text": "TEXT",
    "vc": "VARCHAR(5)",
    "blob": "BLOB",
    "bool": "BOOLEAN",
    "dt": "DATETIME",
    "date": "DATE",
    "time": "TIME",
    "json": "JSON",
    "uuid": "UUID",
    "none": "",
}

# --------------------------------------------------------------------------- canonical equality

_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?\s*(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.IGNORECASE,
)
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?")
_BOOLS = {
    **dict.fromkeys(["1", "t", "true", "y", "yes", "on"], True),
    **dict.fromkeys(["0", "f", "false", "n", "no", "off"], False),
}


def _micro(frac: str | None) -> int:
    if not frac:
        return 0
    assert len(frac) <= 6 or int(frac[6:]) == 0, f"fraction {frac} was not exact"
    return int(frac[:6].ljust(6, "0"))


def expected_timestamp(v: object) -> datetime:
    """What a careful reader takes the SQLite value to mean (written independently)."""
    if isinstance(v, str):
        m = _ISO.fullmatch(v.strip())
        assert m, f"{v!r} is not ISO 8601, yet it was accepted"
        y, mo, d, hh, mi, ss, frac, off = m.groups()
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
        dt += timedelta(microseconds=_micro(frac))
        if off and off.upper() != "Z":
            digits = off[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
            dt = dt - delta if off[0] == "+" else dt + delta
        return dt
    assert isinstance(v, (int, float)) and not isinstance(v, bool), v
    assert not (isinstance(v, int) and 1721425.5 <= v < 5373484.5), "ambiguous, yet accepted"
    if isinstance(v, float) and 1721425.5 <= v < 5373484.5:  # a julian day (REAL), to the ms
        return datetime(1970, 1, 1) + timedelta(milliseconds=round(v * 86400000) - 210866760000000)
    mag = abs(v)
    if mag < 1e11:
        scale = 1
    elif mag < 1e14:
        scale = 1_000
    else:
        scale = 1_000_000
    if isinstance(v, int):
        return datetime(1970, 1, 1) + timedelta(microseconds=v * (1_000_000 // scale))
    return datetime(1970, 1, 1) + timedelta(microseconds=round(v * 1_000_000 / scale))


def assert_canonically_equal(pg_type: str, stored: object, got: object, conn: Any) -> None:
    if stored is None:
        assert got is None
        return
    if pg_type in ("bigint", "integer", "smallint"):
        if isinstance(stored, str):
            assert re.fullmatch(r"[+-]?[0-9]+", stored), stored
            stored = int(stored)
        assert isinstance(stored, (int, float)) and got == stored and int(got) == stored
    elif pg_type == "double precision":
        assert isinstance(stored, (int, float))
        assert got == stored and float(stored) == stored  # nothing rounded
    elif pg_type.startswith("numeric"):
        assert isinstance(stored, (int, float)) and isinstance(got, Decimal)
        want = Decimal(stored) if isinstance(stored, int) else Decimal(repr(stored))
        assert got == want, (got, want)
    elif pg_type == "text" or pg_type.startswith("character varying"):
        if isinstance(stored, str):
            assert got == stored
        elif isinstance(stored, int):
            assert got == str(stored)
        else:
            assert isinstance(stored, float) and float(got) == stored
        if pg_type.startswith("character varying("):
            assert len(got) <= int(pg_type[18:-1])
    elif pg_type == "bytea":
        assert got == (stored.encode() if isinstance(stored, str) else stored)
    elif pg_type == "boolean":
        if isinstance(stored, str):
            assert got is _BOOLS[stored.strip().lower()]
        else:
            assert stored in (0, 1) and got is bool(stored)
    elif pg_type == "timestamp without time zone":
        assert got == expected_timestamp(stored)
    elif pg_type == "date":
        dt = expected_timestamp(stored)
        assert dt.time() == time(0) and got == dt.date()
    elif pg_type == "time without time zone":
        assert isinstance(stored, str)
        m = _TIME.fullmatch(stored.strip())
        assert m, stored
        hh, mi, ss, frac = m.groups()
        assert got == time(int(hh), int(mi), int(ss or 0), _micro(frac))
    elif pg_type == "jsonb":
        text = stored if isinstance(stored, str) else json.dumps(stored)
        # equal as PostgreSQL itself reads the original text
        same = conn.execute("SELECT %s::jsonb = %s::jsonb", (json.dumps(got), text)).fetchone()
        assert same == (True,), (stored, got)
    elif pg_type == "uuid":
        if isinstance(stored, bytes):
            assert got == uuid.UUID(bytes=stored)
        else:
            assert isinstance(stored, str) and got == uuid.UUID(stored)
    else:  # pragma: no cover - a type this test does not know
        raise AssertionError(f"unknown PostgreSQL type {pg_type}")


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def fresh_schemas(pg_url: str) -> Iterator[Iterator[str]]:
    """Schema names for one test's examples (all in one fresh database)."""
    yield (f"ex{n}" for n in range(10**6))


def _build(path: Path, values: list[object]) -> None:
    conn = sqlite3.connect(path)
    for kind, declared in KINDS.items():
        conn.execute(f"CREATE TABLE t_{kind} (id INTEGER PRIMARY KEY, v {declared})")
        conn.executemany(f"INSERT INTO t_{kind} VALUES (?, ?)", list(enumerate(values, 1)))
    conn.commit()
    conn.close()


# SQLITE2PG_PROP_EXAMPLES=500 for a long hunt; the default keeps the suite fast.
EXAMPLES = int(os.environ.get("SQLITE2PG_PROP_EXAMPLES", "30"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(SQLITE_VALUES, min_size=1, max_size=12))
@example(values=["2023-02-30", "2020-01-02 03:04:05", 1577934245, "٣", None])
@example(values=[2**63 - 1, -(2**63), math.inf, -math.inf, "x\x00y", b"\xff"])
@example(values=['{"a": 1}', '"\\ud800"', "[1,]", 5, 2.5])
def test_every_value_arrives_equal_or_is_rejected_with_a_reason(
    pg_url: str, fresh_schemas: Iterator[str], values: list[object]
) -> None:
    schema = next(fresh_schemas)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.db"
        _build(src, values)
        state = str(Path(tmp) / "state.db")
        report = api.sync(src, pg_url, state=state, verify="off", schema=schema)
        _, rejects = api.rejects(state=state, limit=None)
        sconn = sqlite3.connect(src)
        stored = {
            kind: dict(sconn.execute(f"SELECT id, v FROM t_{kind}").fetchall()) for kind in KINDS
        }
        sconn.close()
    rejected = {(r.table, r.key["id"]): r for r in rejects}
    assert report.exit_code == (1 if rejected else 0)
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for kind in KINDS:
            table = f"t_{kind}"
            res = report.tables[table]
            assert res.read == len(values)
            assert res.written + res.rejected == res.read
            pg_type = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attname = 'v'",
                (f"{schema}.{table}",),
            ).fetchone()[0]  # type: ignore[index]
            rows = dict(
                conn.execute(
                    sql.SQL("SELECT id, v FROM {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                ).fetchall()
            )
            assert len(rows) == res.written
            for row_id, original in stored[kind].items():
                rej = rejected.get((table, row_id))
                if rej is not None:
                    assert row_id not in rows
                    assert rej.column == "v" and rej.reason and rej.value, rej
                    continue
                assert row_id in rows, (kind, original)
                try:
                    assert_canonically_equal(pg_type, original, rows[row_id], conn)
                except AssertionError as exc:
                    raise AssertionError(
                        f"{kind} ({pg_type}): SQLite {original!r} arrived as {rows[row_id]!r}"
                    ) from exc


# --------------------------------------------------------------------------- unit properties

ALL_KINDS = [
    PgType("smallint"), PgType("integer"), PgType("bigint"), PgType("double"), PgType("numeric"),
    PgType("numeric", precision=6, scale=2), PgType("text"), PgType("varchar", length=3),
    PgType("bytea"), PgType("boolean"), PgType("timestamp"), PgType("timestamptz"),
    PgType("date"), PgType("time"), PgType("jsonb"), PgType("uuid"),
]  # fmt: skip
RAW_VALUES = st.one_of(SQLITE_VALUES, st.binary().map(RawText))


@settings(max_examples=10 * EXAMPLES)
@given(value=RAW_VALUES.filter(lambda v: v is not None), kind=st.sampled_from(ALL_KINDS))
def test_converters_return_or_reject_never_crash(value: object, kind: PgType) -> None:
    conv = converter_for(kind, nul="strip")
    try:
        out = conv(value)
    except Reject as exc:
        assert str(exc)
        return
    except PolicyApplied as applied:
        out = applied.value
        assert isinstance(value, (str, RawText)) and kind.kind in ("text", "varchar")
    assert out is not None


@given(dt=DATETIMES, sep=st.sampled_from(["T", " "]),
       spec=st.sampled_from(["seconds", "milliseconds", "microseconds", "minutes"]))  # fmt: skip
def test_parse_timestamp_round_trips_isoformat(dt: datetime, sep: str, spec: str) -> None:
    text = dt.isoformat(sep=sep, timespec=spec)
    assert parse_timestamp(text) == datetime.fromisoformat(text)


@given(dt=DATETIMES, tz=OFFSETS)
def test_parse_timestamp_moves_offsets_to_the_same_instant_in_utc(
    dt: datetime, tz: timezone
) -> None:
    aware = dt.replace(tzinfo=tz)
    try:
        utc = aware.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:
        with pytest.raises(Reject):
            parse_timestamp(aware.isoformat())
        return
    assert parse_timestamp(aware.isoformat()) == utc
    assert parse_timestamp(aware.isoformat().replace("+00:00", "Z")) == utc


@given(d=st.dates())
def test_date_only_text_is_midnight(d: date) -> None:
    assert parse_timestamp(d.isoformat()) == datetime(d.year, d.month, d.day)
    assert converter_for(PgType("date"))(d.isoformat()) == d


@given(seconds=st.integers(min_value=-(10**10), max_value=10**10))
def test_epoch_seconds_and_milliseconds_name_the_same_instant(seconds: int) -> None:
    dt = epoch_to_datetime(seconds)
    assert dt == datetime(1970, 1, 1) + timedelta(seconds=seconds)
    if abs(seconds) * 1000 >= 1e11:  # milliseconds are recognised by their magnitude
        assert epoch_to_datetime(seconds * 1000) == dt


@given(value=INT64)
def test_integers_are_never_changed(value: int) -> None:
    for kind in ("smallint", "integer", "bigint"):
        try:
            assert to_int(kind)(value) == value
        except Reject as exc:
            assert "out of range" in str(exc)


@given(text=st.text())
def test_text_without_nul_is_untouched_and_nul_is_counted_when_stripped(text: str) -> None:
    keep = to_text(PgType("text"), "reject")
    strip = to_text(PgType("text"), "strip")
    if "\x00" not in text:
        assert keep(text) == text and strip(text) == text
        return
    with pytest.raises(Reject):
        keep(text)
    with pytest.raises(PolicyApplied) as applied:
        strip(text)
    assert applied.value.value == text.replace("\x00", "")


BOOL_WORDS = st.sampled_from(sorted(_BOOLS)).flatmap(
    lambda w: st.sampled_from([w, w.upper(), f" {w} ", w.title()])
)


@given(value=st.one_of(INT64, FLOATS, st.text(), BOOL_WORDS, st.sampled_from([0.0, 1.0])))
def test_booleans_only_from_unambiguous_values(value: object) -> None:
    if isinstance(value, str):
        want = _BOOLS.get(value.strip().lower())
    else:
        want = bool(value) if value in (0, 1) else None
    if want is None:
        with pytest.raises(Reject):
            to_bool(value)
    else:
        assert to_bool(value) is want


OTHER_DIGITS = st.characters(whitelist_categories=["Nd"]).filter(lambda ch: not ch.isascii())


@given(d=st.lists(OTHER_DIGITS, min_size=8, max_size=8))
def test_digits_of_other_scripts_are_not_numbers_or_dates(d: list[str]) -> None:
    """2020-01-02 in Arabic-Indic digits is no date to SQLite or PostgreSQL: rejected, not
    read as 2020-01-02 (nor a run of them as an integer)."""
    texts = {
        PgType("bigint"): "".join(d),
        PgType(
            "timestamp"
        ): f"{''.join(d[:4])}-{d[4]}{d[5]}-{d[6]}{d[7]} {d[0]}{d[1]}:{d[2]}{d[3]}",
        PgType("date"): f"{''.join(d[:4])}-{d[4]}{d[5]}-{d[6]}{d[7]}",
        PgType("time"): f"{d[0]}{d[1]}:{d[2]}{d[3]}",
    }
    for kind, text in texts.items():
        with pytest.raises(Reject):
            converter_for(kind)(text)
