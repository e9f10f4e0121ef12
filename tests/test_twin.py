"""A twin connection (a second reader of the same snapshot) is only ever handed out when it
cannot see anything the first connection does not."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from sqlite2pg.config import Config
from sqlite2pg.plan import build_plan
from sqlite2pg.source import open_source, read_catalog, snapshot, twin


def _db(path: Path, wal: bool = False) -> Path:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = wal")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(str(i),) for i in range(100)])
    conn.commit()
    conn.close()
    return path


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def test_a_rollback_journal_source_gets_a_twin_in_the_same_snapshot(tmp_path: Path) -> None:
    conn = open_source(_db(tmp_path / "s.db"))
    with snapshot(conn), twin(conn) as other:
        assert other is not None
        assert _count(other) == _count(conn) == 100


def test_no_twin_outside_a_snapshot_or_in_wal_mode(tmp_path: Path) -> None:
    conn = open_source(_db(tmp_path / "s.db"))
    with twin(conn) as other:
        assert other is None  # no read transaction holds the writers off
    wal = open_source(_db(tmp_path / "w.db", wal=True))
    with snapshot(wal), twin(wal) as other:
        assert other is None


def test_no_twin_for_a_file_replaced_since_it_was_opened(tmp_path: Path) -> None:
    path = _db(tmp_path / "s.db")
    conn = open_source(path)
    newer = _db(tmp_path / "newer.db")
    sqlite3.connect(newer).execute("DELETE FROM t").connection.commit()
    os.replace(newer, path)
    with snapshot(conn), twin(conn) as other:
        assert other is None
        assert _count(conn) == 100


def test_a_writer_waiting_to_commit_never_leaks_into_a_twin(tmp_path: Path) -> None:
    path = _db(tmp_path / "s.db")
    conn = open_source(path)

    def write() -> None:
        w = sqlite3.connect(path, timeout=10)
        w.execute("INSERT INTO t (v) VALUES ('late')")
        w.commit()  # waits (PENDING) until the snapshot below ends
        w.close()

    with snapshot(conn):
        writer = threading.Thread(target=write)
        writer.start()
        seen = []
        for _ in range(20):
            with twin(conn) as other:
                seen.append(None if other is None else _count(other))
            time.sleep(0.02)
        assert all(n in (None, 100) for n in seen)
        assert _count(conn) == 100
    writer.join()
    assert _count(open_source(path)) == 101


def test_plans_made_on_two_connections_equal_plans_made_on_one(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path)
    for i in range(6):
        conn.execute(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v VARCHAR(3), n NUMERIC(4,1))")
        conn.executemany(
            f"INSERT INTO t{i} (v, n) VALUES (?, ?)",
            [("abcd" if i == 3 else "ab", 1.25 if i == 4 else 1.5) for _ in range(50 * i)],
        )
    conn.commit()
    conn.close()
    src = open_source(path)
    catalog = read_catalog(src, str(path))
    with snapshot(src):
        with twin(src) as other:
            assert other is not None
        parallel = build_plan(src, catalog, Config())
    rollback = open_source(path)
    rollback.opened = None  # type: ignore[attr-defined]  # as if not sure of the file: no twin
    with snapshot(rollback):
        serial = build_plan(rollback, catalog, Config())
    assert parallel == serial
    types = {t.source.name: [c.type.sql for c in t.columns] for t in parallel.tables}
    assert types["t3"][1] == "text" and types["t4"][2] == "numeric"
