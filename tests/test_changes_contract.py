"""One contract, run against every change-detection strategy (the litestream way).

For a table synced once, then changed by an application (inserts, updates, deletes), a
strategy's ``detect`` must, inside one snapshot and without writing to the target:

1. select every inserted and every updated row (it may select more: the rows it selects are
   upserted idempotently), and only rows the source holds;
2. name exactly the deleted keys, as the target holds them;
3. for an unchanged source, name no deletes and, for the exact strategies, select no row.

Each strategy runs on an integer-keyed rowid table and, where the strategy allows it, on a
WITHOUT ROWID table with a composite text/integer key.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

import sqlite2pg.api as api
from sqlite2pg.changes import Context, Detected, strategy_for
from sqlite2pg.config import Config
from sqlite2pg.incremental import known_types
from sqlite2pg.plan import build_plan
from sqlite2pg.source import open_source, read_catalog, snapshot
from sqlite2pg.syncstate import load as load_state

INT_TABLE = """
CREATE TABLE item (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price REAL,
    data BLOB,
    updated_at DATETIME
);
"""
COMPOSITE_TABLE = """
CREATE TABLE item (
    code TEXT NOT NULL,
    n INTEGER NOT NULL,
    name TEXT NOT NULL,
    price REAL,
    data BLOB,
    updated_at DATETIME,
    PRIMARY KEY (code, n)
) WITHOUT ROWID;
"""

# (strategy, table kind, quiet: selects no row when nothing changed,
#  exact: selects exactly the changed rows, updates: looks for updates)
CASES = [
    ("hash", "int", True, False, True),  # whole 64-row buckets
    ("hash", "composite", False, False, True),  # WITHOUT ROWID: compared whole
    ("timestamp", "int", False, False, True),  # look-back window
    ("timestamp", "composite", False, False, True),
    ("append", "int", True, True, False),
    ("triggers", "int", True, True, True),
    ("triggers", "composite", True, True, True),
    ("full", "int", False, False, True),  # compared whole
]


def _key(kind: str, i: int) -> tuple[Any, ...]:
    return (i,) if kind == "int" else (f"c{i % 7}", i)


def _make(path: Path, kind: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(INT_TABLE if kind == "int" else COMPOSITE_TABLE)
    for i in range(1, 301):
        _insert(conn, kind, i)
    conn.commit()
    conn.close()


def _insert(
    conn: sqlite3.Connection, kind: str, i: int, stamp: str = "2024-03-01 10:00:00"
) -> None:
    cols = "id" if kind == "int" else "code, n"
    marks = "?" if kind == "int" else "?, ?"
    conn.execute(
        f"INSERT INTO item ({cols}, name, price, data, updated_at) VALUES ({marks}, ?, ?, ?, ?)",
        (*_key(kind, i), f"name {i}", i / 7, bytes([i % 256]) * 3, stamp),
    )


def _where(kind: str) -> str:
    return "id = ?" if kind == "int" else "code = ? AND n = ?"


def _detect(source: Path, pg_url: str, cfg: Config) -> tuple[Detected, set[tuple[Any, ...]]]:
    """Run the table's strategy as a sync would, and return what it selected."""
    sconn = open_source(source)
    catalog = read_catalog(sconn, str(source))
    with psycopg.connect(pg_url) as pg, pg.cursor() as cur:
        existing = load_state(cur, "public")
        with snapshot(sconn):
            plan = build_plan(sconn, catalog, cfg, known=known_types(existing))
            t = plan.table("item")
            ctx = Context(cur, sconn, "public", cfg, str(source))
            det = strategy_for(t).detect(ctx, t, existing["item"])
            pk = ", ".join(f'"{c}"' for c in t.source.primary_key)
            selected: set[tuple[Any, ...]] = set()
            for where, params in det.selections:
                selected.update(
                    tuple(r) for r in sconn.execute(f'SELECT {pk} FROM "item"{where}', params)
                )
        pg.rollback()  # detect writes nothing the run would keep
    sconn.close()
    return det, selected


@pytest.mark.parametrize(("strategy", "kind", "quiet", "exact", "updates"), CASES)
def test_strategy_contract(
    pg_url: str, tmp_path: Path, strategy: str, kind: str, quiet: bool, exact: bool, updates: bool
) -> None:
    db = tmp_path / "c.db"
    _make(db, kind)
    cfg = Config.model_validate({"tables": {"item": {"strategy": strategy}}})
    state = str(tmp_path / "state.db")
    api.sync(db, pg_url, config=cfg, state=state, verify="off")

    # 3. unchanged source
    det, selected = _detect(db, pg_url, cfg)
    assert det.deletes == []
    if quiet:
        assert selected == set(), f"{strategy} selected rows of an unchanged table"
    else:  # a whole-table compare selects everything; the apply stage then writes nothing
        assert det.compare or selected

    # an application's changes
    conn = sqlite3.connect(db)
    inserted = {_key(kind, i) for i in (301, 302, 303)}
    for i in (301, 302, 303):
        _insert(conn, kind, i, "2024-03-02 09:00:00")
    updated: set[tuple[Any, ...]] = set()
    if updates:
        for i in (5, 150, 299):
            conn.execute(
                f"UPDATE item SET name = name || '!', updated_at = '2024-03-02 09:30:00' "
                f"WHERE {_where(kind)}",
                _key(kind, i),
            )
            updated.add(_key(kind, i))
        conn.execute(  # a value whose difference only quote() sees: 1/7 vs its 15-digit text
            f"UPDATE item SET price = 0.142857142857143, updated_at = '2024-03-02 09:31:00' "
            f"WHERE {_where(kind)}",
            _key(kind, 1),
        )
        updated.add(_key(kind, 1))
    deleted = {_key(kind, i) for i in (2, 151, 300)}
    for k in deleted:
        conn.execute(f"DELETE FROM item WHERE {_where(kind)}", k)
    conn.commit()
    conn.close()

    det, selected = _detect(db, pg_url, cfg)
    # 1. every inserted and updated row selected, only rows the source holds
    assert inserted | updated <= selected, (inserted | updated) - selected
    assert not selected & deleted
    if exact:
        assert selected == inserted | updated
    # 2. exactly the deleted keys (integer and text keys arrive unchanged in PostgreSQL), or a
    # whole-table selection after which the apply stage deletes what was not staged
    if det.compare:
        assert det.deletes == [] and len(selected) == 300
    else:
        assert set(det.deletes) == deleted

    # and a real run applies it: the target then equals the source
    report = api.sync(db, pg_url, config=cfg, state=state, verify="off")
    res = report.tables["item"]
    assert (res.inserted, res.updated, res.deleted) == (3, len(updated), 3)
    with psycopg.connect(pg_url) as pg:
        n = pg.execute("SELECT count(*) FROM item").fetchone()
        names = pg.execute("SELECT count(*) FROM item WHERE name LIKE '%!'").fetchone()
        price = pg.execute(
            f"SELECT price FROM item WHERE {_where(kind).replace('?', '%s')}", _key(kind, 1)
        ).fetchone()
    assert n == (300,)
    assert names == (len(updated) - (1 if updates else 0),)
    if updates:
        assert price == (0.142857142857143,)


# --------------------------------------------------------------------------- key texts

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sqlite2pg.hashing import KEY_SEP, key_texts, parse_keys  # noqa: E402

_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False).filter(lambda f: f != 0 or str(f) == "0.0"),
    st.text().filter(lambda s: "\x00" not in s),  # quote() stops at NUL (PostgreSQL text
    st.binary(max_size=20),  # cannot hold it either: such a key is always rejected)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_values, _values), min_size=1, max_size=5))
def test_key_texts_parse_back_to_the_exact_values(keys: list[tuple[object, object]]) -> None:
    """SQLite's quote() of any key parses back to the same typed values (the triggers write
    these texts from inside the application's transactions; deletes are made from them)."""
    conn = sqlite3.connect(":memory:")
    texts = key_texts(conn, keys)
    assert parse_keys(KEY_SEP.join(texts)) == keys
    for text, k in zip(texts, keys, strict=True):
        assert parse_keys(text) == [k]


def test_row_texts_tell_every_stored_value_apart() -> None:
    """The fingerprinted text of a row differs whenever a value or its storage class does,
    on both rendering paths (json_array, and quote() for rows holding REALs or BLOBs)."""
    from sqlite2pg.hashing import row_text_expr

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b NUMERIC(10,2), c)")
    values = [
        None, 0, 1, -1, 2**63 - 1, "1", "", "null", 'a"b', "a\x00b", "a\x00c", 0.1,
        0.1 + 2**-56, 1.0, 1e300, b"", b"\x00", b"1", "[1]", "é",
    ]  # fmt: skip
    numbers = (None, 1, 0.99, 0.99 + 2**-52, "x\x00y", "x\x00z", b"\x00")
    rows = [(a, b, c) for a in values for b in numbers for c in values[:8]]
    rows += [(a, None, c) for a in values for c in values]
    conn.executemany("INSERT INTO t (a, b, c) VALUES (?, ?, ?)", rows)
    expr = row_text_expr(["a", "b", "c"], ["b"])

    def ident(c: str) -> str:  # the stored value exactly: storage class and bytes/digits
        return f"typeof({c}) || ':' || iif(typeof({c}) = 'real', quote({c}), hex({c}))"

    conn.text_factory = bytes
    seen: dict[bytes, bytes] = {}
    query = f"SELECT {expr}, {ident('a')} || '|' || {ident('b')} || '|' || {ident('c')} FROM t"
    for text, stored in conn.execute(query):
        assert seen.setdefault(text, stored) == stored, (text, stored, seen[text])
    assert len(set(seen.values())) == len(seen)  # and equal values, equal texts
