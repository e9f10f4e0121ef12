"""The quick profile (one EXISTS scan) must never let through what the full profile would catch.

For any values in a column of any declared type: when the quick profile answers, the full
profile finds nothing dirty and picks the same PostgreSQL type, the same row count and the same
identity range; whenever the full profile finds a dirty value or widens the type, the quick
profile declines (and the full one runs)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sqlite2pg.model import ColumnProfile, PgType
from sqlite2pg.plan import _profile, _quick_profile
from sqlite2pg.source import read_catalog
from sqlite2pg.typemap import TypeOptions, _numeric_misfit, candidate_type, decide
from test_convert_props import KINDS, SQLITE_VALUES

OPTS = TypeOptions()


def _table(values: list[object], declared: str, notnull: bool) -> sqlite3.Connection:
    """A NOT NULL column gets its NULLs as a file written with the constraint off would."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared})")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in values])
    if notnull:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE name = 't'",
            (f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared} NOT NULL)",),
        )
        conn.execute("PRAGMA writable_schema = RESET")
    return conn


_TEXT = st.text().filter(lambda s: "\x00" not in s)
# Values each kind takes as they are, so that the quick profile gets to answer often.
CLEAN: dict[str, st.SearchStrategy[object]] = {
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "small": st.integers(min_value=-32768, max_value=32767),
    "real": st.floats(allow_nan=False, allow_infinity=False),
    "num": st.floats(allow_nan=False, allow_infinity=False),
    "num102": st.integers(min_value=-(10**10) + 1, max_value=10**10 - 1).map(lambda k: k / 100),
    "text": _TEXT,
    "vc": _TEXT.filter(lambda s: len(s) <= 5),
    "blob": st.binary(),
    "bool": st.sampled_from([0, 1]),
    "dt": st.datetimes().map(lambda d: d.isoformat(" ", "seconds")),
    "date": st.dates().map(lambda d: d.isoformat()),
    "time": st.times().map(lambda t: t.isoformat("seconds")),
    "json": st.sampled_from(['{"a": 1}', "[1, 2]", '"x"', "null"]),
    "uuid": st.uuids().map(str),
}


@settings(max_examples=400, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(CLEAN)), notnull=st.booleans())
def test_quick_profile_agrees_with_the_full_one(
    data: st.DataObject, kind: str, notnull: bool
) -> None:
    some = st.one_of(CLEAN[kind], st.none())
    if data.draw(st.booleans(), label="mixed with any value"):
        some = st.one_of(some, SQLITE_VALUES)
    values = data.draw(st.lists(some, max_size=8))
    _check_agreement(values, kind, notnull)


@pytest.mark.parametrize(
    ("values", "kind"),
    [([0.1 + 0.2], "num102"), (["abcdef"], "vc"), ([40000], "small"), (["a\x00b"], "text")]
    + [([1, None], kind) for kind in ("int", "num", "num102", "text", "vc", "dt")]
    + [(["x7"], "int"), ([2.5], "int"), ([b"1"], "int"), ([b"x"], "vc"), ([2**63 * 1.0], "int")],
)
def test_quick_profile_declines_what_widens_or_is_dirty(values: list[object], kind: str) -> None:
    """Each also in a NOT NULL column: there a NULL is unusual too (the rows with 1 pass)."""
    assert _check_agreement(values, kind, True) is None
    if None not in values:
        assert _check_agreement(values, kind, False) is None


def _check_agreement(
    values: list[object], kind: str, notnull: bool
) -> tuple[int, dict[str, ColumnProfile]] | None:
    conn = _table(values, KINDS[kind], notnull)
    t = read_catalog(conn).tables[0]
    assert t.columns[1].notnull == notnull
    cands = {c.name: candidate_type(c, OPTS) for c in t.columns}
    ranges = {"id"}
    quick = _quick_profile(conn, t, cands, ranges)
    count, full = _profile(conn, t, list(cands.items()), frozenset(ranges))
    col = t.columns[1]
    cand, why = cands["v"]
    assert cand is not None
    full_type = decide(col, cand, why, full["v"], OPTS)[0]
    if full["v"].dirty or full_type != cand or (notnull and full["v"].nulls):
        assert quick is None
    if quick is None:
        return None
    q_count, q_prof = quick
    assert q_count == count == len(values)
    assert full["v"].dirty == 0 and full["id"].dirty == 0
    assert decide(col, cand, why, q_prof["v"], OPTS)[0] == full_type == cand
    assert (q_prof["id"].int_min, q_prof["id"].int_max) == (full["id"].int_min, full["id"].int_max)
    if notnull:
        assert q_prof["v"].nulls == full["v"].nulls == 0
    return quick


def test_quick_profile_declines_a_column_typed_from_its_values() -> None:
    conn = _table([1, "x"], "", False)
    t = read_catalog(conn).tables[0]
    cands = {c.name: candidate_type(c, OPTS) for c in t.columns}
    assert _quick_profile(conn, t, cands, {"id"}) is None


def _misfits(x: float, precision: int, scale: int) -> bool:
    """What PostgreSQL would do with the value psycopg sends (Python's shortest repr)."""
    d = Decimal(repr(x))
    return abs(d) >= Decimal(10) ** (precision - scale) or d != round(d, scale)


@settings(max_examples=2000, deadline=None)
@given(
    x=st.one_of(
        st.floats(min_value=-1e9, max_value=1e9),
        st.integers(min_value=-(10**9), max_value=10**9).map(lambda k: k / 100),
        st.integers(min_value=-(10**12), max_value=10**12).map(lambda k: k / 10000),
    ),
    precision=st.sampled_from([5, 10, 15]),
    scale=st.integers(min_value=0, max_value=4),
)
@example(x=0.1 + 0.2, precision=10, scale=2)
@example(x=0.99, precision=10, scale=2)
@example(x=-2.675, precision=10, scale=2)
def test_numeric_fit_matches_what_postgresql_would_store(
    x: float, precision: int, scale: int
) -> None:
    conn = sqlite3.connect(":memory:")
    sql = _numeric_misfit(PgType("numeric", precision=precision, scale=scale), "?")
    got = bool(conn.execute(f"SELECT {sql.replace('?', ':x')}", {"x": x}).fetchone()[0])
    assert got == _misfits(x, precision, scale)


def test_wide_tables_still_profile() -> None:
    conn = sqlite3.connect(":memory:")
    cols = ", ".join(f"c{i} INTEGER NOT NULL" for i in range(240))
    conn.execute(f"CREATE TABLE w (id INTEGER PRIMARY KEY, {cols})")
    conn.execute(f"INSERT INTO w VALUES (1, {', '.join('0' for _ in range(240))})")
    t = read_catalog(conn).tables[0]
    cands = {c.name: candidate_type(c, OPTS) for c in t.columns}
    quick = _quick_profile(conn, t, cands, {"id"})
    assert quick is not None and quick[0] == 1
    conn.execute("UPDATE w SET c239 = 'x' WHERE id = 1")
    assert _quick_profile(conn, t, cands, {"id"}) is None
