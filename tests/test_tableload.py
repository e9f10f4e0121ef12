"""The full load reads the next table ahead (spooled COPY text) while PostgreSQL builds keys."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import sqlite2pg.api as api
import sqlite2pg.spool as spool
import sqlite2pg.tableload as tableload
from conftest import make_db
from sqlite2pg.config import parse_config
from sqlite2pg.spool import Spool

ODD = [
    None,
    "",
    "tab\there, newline\nthere, return\r, backslash\\, \\N",
    "naïve — 日本語 😀",
    "x" * 300,
]


def chunks(n: int, closed: list[bool] | None = None) -> Generator[bytearray, None, None]:
    try:
        for i in range(n):
            yield bytearray(f"{i}\t{'y' * (i % 7)}\n".encode())
    finally:
        if closed is not None:
            closed.append(True)


def test_spool_keeps_up_to_its_limit_then_replays_the_rest() -> None:
    whole = b"".join(chunks(1000))
    s = Spool(chunks(1000), limit=100)
    assert s.usable and s.file is not None
    kept = s.file.tell()
    assert 100 <= kept < 120  # stopped at the first chunk that reached the limit
    assert b"".join(s.replay()) == whole
    s.close()


def test_spool_close_stops_the_source_and_a_failed_spool_is_not_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[bool] = []
    Spool(chunks(1000, closed), limit=50).close()
    assert closed == [True]

    def no_space() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "TemporaryFile", no_space)
    s = Spool(chunks(10))
    assert not s.usable


def source(tmp_path: Path, big: int = 3000) -> Path:
    """Three tables of different sizes (loaded largest first), odd text, a foreign key."""
    script = """
    CREATE TABLE big (id INTEGER PRIMARY KEY, t TEXT, b BLOB, x REAL, small_id INTEGER
                      REFERENCES small(id));
    CREATE INDEX big_t ON big(t);
    CREATE TABLE mid (id INTEGER PRIMARY KEY, t TEXT NOT NULL);
    CREATE TABLE small (id INTEGER PRIMARY KEY, t TEXT);
    """
    rows = {
        "big": [(i, ODD[i % 5], bytes([i % 256]) * (i % 3), i / 7, i % 10) for i in range(big)],
        "mid": [(i, f"m{i}\t{ODD[i % 5] or 'n'}") for i in range(big // 2)],
        "small": [(i, ODD[i % 5]) for i in range(10)],
    }
    return make_db(tmp_path / "src.db", script, rows)


def loaded(pg_url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def expected(db: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]


def check_target(db: Path, pg_url: str) -> None:
    for table in ("big", "mid", "small"):
        got = [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for r in loaded(pg_url, table)
        ]
        assert got == expected(db, table), table


@pytest.mark.parametrize("limit", [spool.LIMIT, 1000])
def test_tables_read_ahead_arrive_equal(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """With the default limit the spools hold whole tables; with 1000 bytes each COPY sends the
    file, then goes on from SQLite."""
    monkeypatch.setattr(spool, "LIMIT", limit)
    db = source(tmp_path)
    order: list[str] = []
    spooled_during_keys: list[str] = []
    building = threading.Event()
    keys_of = tableload._keys_of
    read_ahead = tableload.read_ahead

    def watched_keys(conn: Any, t: Any, *args: Any) -> Any:
        build = keys_of(conn, t, *args)

        def run() -> None:
            building.set()
            order.append(t.source.name)
            build()

        return run

    def watched_read_ahead(sconn: Any, t: Any, *args: Any) -> Any:
        if building.is_set():
            spooled_during_keys.append(t.source.name)
        return read_ahead(sconn, t, *args)

    monkeypatch.setattr(tableload, "_keys_of", watched_keys)
    monkeypatch.setattr(tableload, "read_ahead", watched_read_ahead)
    report = api.sync(db, pg_url, state=str(tmp_path / "st.db"), verify="rows")
    assert report.status == "ok", report.error
    assert order == ["big", "mid", "small"]
    assert spooled_during_keys == ["mid", "small"]
    assert list(report.tables) == ["big", "mid", "small"]  # the report keeps the plan's order
    assert report.verification is not None and report.verification["identical"]
    check_target(db, pg_url)


@pytest.mark.parametrize("limit", [spool.LIMIT, 200])
def test_invalid_utf8_in_a_table_read_ahead_is_rejected_like_any_other(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """`mid` is read ahead; with a 200-byte limit its bad row comes after the spooled part, so
    the COPY already running is rolled back to its savepoint and the table read again."""
    monkeypatch.setattr(spool, "LIMIT", limit)
    db = source(tmp_path, big=400)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE mid SET t = CAST(x'c328' AS TEXT) WHERE id = 150")
    cfg = parse_config("batch_size: 10\n")  # the bad row is fetched after the first rows went
    report = api.sync(db, pg_url, state=str(tmp_path / "st.db"), verify="off", config=cfg)
    assert report.status == "rejected"
    res = report.tables["mid"]
    assert (res.read, res.written, res.rejected) == (200, 199, 1)
    assert [r[0] for r in loaded(pg_url, "mid")] == [i for i in range(200) if i != 150]
    assert len(loaded(pg_url, "big")) == 400 and len(loaded(pg_url, "small")) == 10


def test_a_spool_that_cannot_be_written_costs_only_a_second_read(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "TemporaryFile", no_space)
    db = source(tmp_path)
    report = api.sync(db, pg_url, state=str(tmp_path / "st.db"), verify="off")
    assert report.status == "ok", report.error
    assert report.tables["mid"].written == 1500
    check_target(db, pg_url)


def test_a_failing_key_build_fails_the_run_and_leaves_nothing(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_of = tableload._keys_of

    def failing(conn: Any, t: Any, *args: Any) -> Any:
        if t.source.name == "mid":

            def boom() -> None:
                raise psycopg.OperationalError("index build lost")

            return boom
        return keys_of(conn, t, *args)

    monkeypatch.setattr(tableload, "_keys_of", failing)
    db = source(tmp_path)
    with pytest.raises(Exception, match="index build lost"):
        api.sync(db, pg_url, state=str(tmp_path / "st.db"), verify="off")
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
