"""Source queries run ahead on a twin of the snapshot: the same rows as the caller's own
query, nothing when there is no twin or the query fails (the caller runs it and handles the
error), a prompt stop, and an incremental run that uses it and still finds every delete."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import sqlite2pg.api as api
from conftest import pair_table
from sqlite2pg import prefetch
from sqlite2pg.config import Config
from sqlite2pg.source import open_source, snapshot

GROUPED = "SELECT a, count(*), sum(b) FROM item WHERE a < 99 GROUP BY a"


def _source(db: Path, *, wal: bool = False) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE item (a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b))")
    conn.executemany(
        "INSERT INTO item VALUES (?, ?)", ((a, b) for a in range(50) for b in range(40))
    )
    conn.execute("INSERT INTO item VALUES (99, ?)", (2**62,))
    conn.execute("INSERT INTO item VALUES (99, ?)", (2**62 + 1,))  # their sum overflows
    conn.close()


def test_rows_equal_the_callers_own_query_on_the_same_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _source(db)
    conn = open_source(db)
    with snapshot(conn):
        ahead = prefetch.Prefetch(
            conn, {"item": (GROUPED, ()), "other": ("SELECT count(*) FROM item", ())}
        )
        try:
            assert ahead.thread is not None
            assert ahead.rows("item", GROUPED + " ") is None  # not the query it ran
            assert ahead.rows("item", GROUPED) == conn.execute(GROUPED).fetchall()
            assert ahead.rows("item", GROUPED) is None  # handed out once
            assert ahead.rows("missing", GROUPED) is None
        finally:
            ahead.close()
    conn.close()


def test_a_failing_query_is_left_to_the_caller(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _source(db)
    conn = open_source(db)
    overflow = "SELECT a, sum(b) FROM item WHERE a = 99 GROUP BY a"
    with snapshot(conn):
        with pytest.raises(sqlite3.OperationalError, match="overflow"):
            conn.execute(overflow).fetchall()
        ahead = prefetch.Prefetch(conn, {"item": (overflow, ())})
        try:
            assert ahead.thread is not None
            assert ahead.rows("item", overflow) is None
        finally:
            ahead.close()
    conn.close()


def test_no_twin_in_wal_mode_or_outside_a_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    _source(db, wal=True)
    conn = open_source(db)
    with snapshot(conn):
        ahead = prefetch.Prefetch(conn, {"item": (GROUPED, ())})
        assert ahead.thread is None and ahead.rows("item", GROUPED) is None
        ahead.close()
    conn.close()
    db = tmp_path / "r.db"
    _source(db)
    conn = open_source(db)
    ahead = prefetch.Prefetch(
        conn, {"item": (GROUPED, ())}
    )  # no read transaction: nothing to share
    assert ahead.thread is None and ahead.rows("item", GROUPED) is None
    conn.close()


def test_close_interrupts_a_long_query_and_skips_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _source(db)
    conn = open_source(db)
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
    with snapshot(conn):
        ahead = prefetch.Prefetch(conn, {"long": (endless, ()), "item": (GROUPED, ())})
        time.sleep(0.2)
        closing = threading.Thread(target=ahead.close)
        closing.start()
        closing.join(timeout=30)  # the endless query would run forever if not interrupted
        assert not closing.is_alive()
        assert ahead.thread is not None and not ahead.thread.is_alive()
        assert ahead.results == {"long": None}  # interrupted; the next one never started
    conn.close()


def test_a_timestamp_sync_takes_the_grouped_pass_from_the_prefetch(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[bool] = []
    rows = prefetch.Prefetch.rows

    def spy(self: prefetch.Prefetch, name: str, sql: str, params: tuple[object, ...] = ()) -> Any:
        got = rows(self, name, sql, params)
        if "GROUP BY" in sql:
            handed.append(got is not None)
        return got

    monkeypatch.setattr(prefetch.Prefetch, "rows", spy)
    db = tmp_path / "p.db"
    app = pair_table(db, 30, 400)
    cfg = Config.model_validate({"tables": {"item": {"strategy": "timestamp"}}})

    def sync() -> Any:
        return api.sync(db, pg_url, config=cfg, state=str(tmp_path / "st.db"), verify="off")

    sync()
    app.execute(
        "DELETE FROM item WHERE (a, b) IN ((2, 5), (9, 1), (9, 2), (17, 3), (17, 4), (17, 9))"
    )
    app.execute("INSERT INTO item VALUES (9, 9000, 'n', '2024-06-01 00:00:00')")
    report = sync()
    assert handed == [True]
    assert (report.tables["item"].inserted, report.tables["item"].deleted) == (1, 6)
    with psycopg.connect(pg_url) as pg:
        target = [tuple(r) for r in pg.execute("SELECT a, b, v FROM item ORDER BY a, b")]
    assert target == [tuple(r) for r in app.execute("SELECT a, b, v FROM item ORDER BY a, b")]


def _append_source(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO big VALUES (?, 'b')", ((i,) for i in range(1, 30_001)))
    conn.executemany("INSERT INTO small VALUES (?, 's')", ((i,) for i in range(1, 2_001)))
    return conn


def test_append_runs_the_largest_tables_sums_ahead(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under append the key sums decide when the count matches: the largest table's pass (up
    to half of the rows) runs ahead; when rows were deleted (the count differs) it goes
    unused and the deletes are still found."""
    handed: dict[str, bool] = {}
    rows = prefetch.Prefetch.rows

    def spy(self: prefetch.Prefetch, name: str, sql: str, params: tuple[object, ...] = ()) -> Any:
        got = rows(self, name, sql, params)
        handed[name] = got is not None
        return got

    monkeypatch.setattr(prefetch.Prefetch, "rows", spy)
    db = tmp_path / "a.db"
    app = _append_source(db)
    cfg = Config.model_validate(
        {"tables": {"big": {"strategy": "append"}, "small": {"strategy": "append"}}}
    )

    def sync() -> Any:
        return api.sync(db, pg_url, config=cfg, state=str(tmp_path / "st.db"), verify="off")

    def same() -> bool:
        with psycopg.connect(pg_url) as pg:
            for table in ("big", "small"):
                target = [tuple(r) for r in pg.execute(f"SELECT id, v FROM {table} ORDER BY id")]
                source = app.execute(f"SELECT id, v FROM {table} ORDER BY id").fetchall()
                if target != source:
                    return False
        return True

    sync()
    app.executemany("INSERT INTO big VALUES (?, 'n')", ((i,) for i in range(30_001, 30_011)))
    app.execute("INSERT INTO small VALUES (5000, 'n')")
    report = sync()
    assert handed == {"big": True, "small": False}  # small's own pass, in its turn
    assert (report.tables["big"].inserted, report.tables["big"].deleted) == (10, 0)
    assert same()
    handed.clear()
    # a delete deep inside and an insert: the count differs, the ranges decide
    app.execute("DELETE FROM big WHERE id IN (7, 12345)")
    app.execute("INSERT INTO big VALUES (40000, 'n')")
    report = sync()
    assert "big" not in handed  # its prefetched sums went unused
    assert (report.tables["big"].inserted, report.tables["big"].deleted) == (1, 2)
    assert same()
