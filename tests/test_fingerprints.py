"""Fingerprints computed by the helper process equal those computed in the run's process, and
when the helper cannot be sure of the snapshot the run computes them itself."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sqlite2pg import fingerprints, hashing
from sqlite2pg.changes import bucket_reader, proven_clean, proven_integers
from sqlite2pg.config import Config
from sqlite2pg.fingerprints import Helper, Job
from sqlite2pg.hashing import Bucket, BucketReader
from sqlite2pg.plan import build_plan
from sqlite2pg.source import open_source, read_catalog, snapshot


def _db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, r REAL)")
    conn.execute("CREATE TABLE b (x INTEGER, y INTEGER, PRIMARY KEY (x, y))")
    conn.executemany(
        "INSERT INTO a VALUES (?, ?, ?)",
        [(i, f"v{i % 13}", i / 3) for i in (*range(1, 5000), 10**9, 2**63 - 1)],
    )
    conn.executemany("INSERT INTO b VALUES (?, ?)", [(i % 50, i) for i in range(3000)])
    conn.commit()
    conn.close()
    return path


JOBS = [
    Job("a", ("id", "v", "r"), ("id",), ("r",), False, 5001),
    Job("b", ("x", "y"), ("x", "y"), (), True, 3000),
]


def _read(conn: sqlite3.Connection, helper: Helper | None) -> dict[str, list[Bucket]]:
    out = {}
    for job in JOBS:
        found = helper.buckets(job.table) if helper else None
        out[job.table] = list(found if found is not None else job.reader(conn).hashes(
            with_keys=job.with_keys
        ))  # fmt: skip
    return out


def test_the_helper_fingerprints_what_this_process_would(tmp_path: Path) -> None:
    conn = open_source(_db(tmp_path / "s.db"))
    with snapshot(conn):
        here = _read(conn, None)
        helper = Helper(conn, JOBS, min_rows=1)
        try:
            assert set(helper.jobs) == {"a"}  # the larger table; the other stays here
            assert helper.buckets("b") is None
            there = _read(conn, helper)
        finally:
            helper.close()
    assert there == here
    assert sum(b.n for b in here["a"]) == 5001 and all(b.keys for b in here["b"])
    assert not Path(helper.dir).exists()


def test_no_helper_for_a_replaced_file_or_outside_a_snapshot(tmp_path: Path) -> None:
    path = _db(tmp_path / "s.db")
    conn = open_source(path)
    outside = Helper(conn, JOBS, min_rows=1)
    assert outside.jobs == {} and outside.buckets("a") is None
    os.replace(_db(tmp_path / "other.db"), path)
    with snapshot(conn):
        replaced = Helper(conn, JOBS, min_rows=1)
        try:
            assert replaced.buckets("a") is None  # the helper found another file there
            assert sum(b.n for b in _read(conn, replaced)["a"]) == 5001
        finally:
            replaced.close()


@pytest.mark.parametrize("failure", ["another snapshot", "killed"])
def test_a_helper_that_fails_hands_the_work_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    conn = open_source(_db(tmp_path / "s.db"))
    with snapshot(conn):
        if failure == "another snapshot":  # the schema changed before the helper began
            real = fingerprints.twin_source(conn)
            assert real is not None
            path, identity, version = real
            monkeypatch.setattr(
                fingerprints, "twin_source", lambda c: (path, identity, version + 1)
            )
        helper = Helper(conn, JOBS, min_rows=1)
        try:
            assert helper.jobs == {"a": 0} and helper.proc is not None
            if failure == "killed":
                helper.proc.kill()
            assert helper.buckets("a") is None
            assert _read(conn, helper) == _read(conn, None)
        finally:
            helper.close()


def test_no_room_for_the_helper_s_files_means_no_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = open_source(_db(tmp_path / "s.db"))
    monkeypatch.setattr(fingerprints.tempfile, "tempdir", str(tmp_path / "missing"))
    with snapshot(conn):
        helper = Helper(conn, JOBS, min_rows=1)
        try:
            assert helper.jobs == {} and helper.proc is None
            assert sum(b.n for b in _read(conn, helper)["a"]) == 5001
        finally:
            helper.close()


def _odd_db(path: Path) -> Path:
    """Plain columns beside columns holding what the JSON rendering cannot take exactly."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, odd_n INTEGER, "
        "odd_s TEXT, u, ub, d DATE, r REAL)"
    )
    rows = [(i, i * 7, f"s{i}", i, f"x{i}", i, i, "2024-01-02", i / 3) for i in range(1, 3000)]
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("UPDATE t SET odd_n = 2.5 WHERE id = 700")  # a REAL in an INTEGER column
    conn.execute("UPDATE t SET odd_s = x'00ff' WHERE id = 1500")  # a BLOB in a TEXT column
    conn.execute("UPDATE t SET ub = x'01' WHERE id = 2999")  # untyped, one BLOB
    conn.execute("UPDATE t SET n = NULL, s = NULL WHERE id % 97 = 0")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("odd", [True, False])
def test_columns_proven_clean_fingerprint_the_same(tmp_path: Path, odd: bool) -> None:
    """The full load leaves the REAL/BLOB test out for the columns its profile proved plain;
    the buckets (what the next sync compares with) are byte for byte those of the full test."""
    path = _odd_db(tmp_path / "s.db")
    if not odd:
        plain = sqlite3.connect(path)
        plain.execute("UPDATE t SET odd_n = 1, odd_s = 'x', ub = 1")
        plain.commit()
        plain.close()
    conn = open_source(path)
    with snapshot(conn):
        plan = build_plan(conn, read_catalog(conn, str(path)), Config.model_validate({}))
        (t,) = plan.tables
        clean = proven_clean(t)
        expected = {"id", "n", "s", "u"} | (set() if odd else {"odd_n", "odd_s", "ub"})
        assert set(clean) == expected
        full = list(bucket_reader(conn, t).hashes(with_keys=True))
        fast = list(bucket_reader(conn, t, profiled=True).hashes(with_keys=True))
    assert fast == full and sum(b.n for b in full) == 2999


@pytest.mark.parametrize("odd", ["", "text", "real", "null"])
def test_keys_proven_integer_fingerprint_the_same(tmp_path: Path, odd: str) -> None:
    """Keys the full load's profile proved to be integers are concatenated without quote():
    the same key texts, and the quoted form wherever one value is not an integer."""
    conn = sqlite3.connect(tmp_path / "k.db")
    conn.execute("CREATE TABLE k (a INTEGER, b INTEGER NOT NULL, v TEXT, PRIMARY KEY (a, b))")
    conn.executemany("INSERT INTO k VALUES (?, ?, ?)", ((i, -i, f"v{i}") for i in range(5000)))
    value = {"text": "'a,b'", "real": "2.5", "null": "NULL"}.get(odd)
    if value:
        conn.execute(f"UPDATE k SET a = {value} WHERE a = 4321")
    conn.commit()
    conn.close()
    conn = open_source(tmp_path / "k.db")
    with snapshot(conn):
        plan = build_plan(conn, read_catalog(conn, str(tmp_path / "k.db")), Config())
        (t,) = plan.tables
        assert set(proven_integers(t)) == ({"b"} if odd else {"a", "b"})
        reference = bucket_reader(conn, t)
        reference.key_expr = hashing.text_expr(["a", "b"])  # quote() throughout
        quoted = list(reference.hashes(with_keys=True))
        fast = list(bucket_reader(conn, t, profiled=True).hashes(with_keys=True))
    assert fast == quoted and sum(b.n for b in fast) == 5000


def _policy_of(pid: int) -> int:
    """The helper's scheduling policy once it has read its work (it sets it first thing)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        policy = os.sched_getscheduler(pid)
        if policy != os.SCHED_OTHER:
            return policy
        time.sleep(0.002)
    return os.sched_getscheduler(pid)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_a_background_helper_runs_at_idle_priority(tmp_path: Path) -> None:
    conn = open_source(_db(tmp_path / "s.db"))
    with snapshot(conn):
        helper = Helper(conn, JOBS, min_rows=1, background=True)
        try:
            assert helper.proc is not None
            assert _policy_of(helper.proc.pid) == os.SCHED_IDLE
            assert _read(conn, helper) == _read(conn, None)
        finally:
            helper.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_starved_background_helper_is_stopped_and_the_run_does_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fingerprints, "STALL_SECONDS", 0.3)
    conn = open_source(_db(tmp_path / "s.db"))
    with snapshot(conn):
        helper = Helper(conn, JOBS, min_rows=1, background=True)
        try:
            assert helper.proc is not None
            os.kill(helper.proc.pid, signal.SIGSTOP)  # gets no CPU from now on
            started = time.monotonic()
            with caplog.at_level(logging.INFO, "sqlite2pg.fingerprints"):
                assert helper.buckets("a") is None
            assert "starved" in caplog.text
            assert time.monotonic() - started < 5 and helper.proc is None
            assert _read(conn, helper) == _read(conn, None)
        finally:
            helper.close()


def _grouped_whole(conn: sqlite3.Connection, reader: BucketReader, with_keys: bool) -> list[Bucket]:
    """The reference: every sub-bucket grouped by SQLite over the whole table at once."""
    keys = ", group_concat(k, char(30))" if with_keys else ""
    inner_k = f", {reader.key_expr} AS k" if with_keys else ""
    conn.text_factory = bytes
    rows = conn.execute(
        f"SELECT rowid >> 4, group_concat(s, char(30)), count(*){keys} FROM (SELECT rowid, "
        f"{reader.row_expr} AS s{inner_k} FROM {reader.table} ORDER BY rowid) GROUP BY 1"
    ).fetchall()
    conn.text_factory = str
    return hashing._grouped(rows, with_keys)[0]


@pytest.mark.parametrize("with_keys", [False, True])
def test_dense_and_grouped_chunks_give_the_same_buckets(tmp_path: Path, with_keys: bool) -> None:
    """Chunks holding every rowid are cut in Python, the others grouped by SQLite: the buckets
    are the same either way, including keys holding the separator and gaps."""
    conn = sqlite3.connect(tmp_path / "d.db")
    conn.execute("CREATE TABLE t (a TEXT, b INTEGER, c, PRIMARY KEY (a, b))")
    rows: list[tuple[str, int, object]] = [
        (f"k{i}", i, i * 1.5 if i % 7 else None) for i in range(1, 20_001)
    ]
    rows[5000] = ("sep\x1ein key", 5001, "x")  # the separator inside a key's text
    rows[9000] = ("wide", 9001, "w" * 3_000_000)
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    conn.execute(
        "DELETE FROM t WHERE rowid BETWEEN 12000 AND 12100 OR rowid % 997 = 0 AND rowid > 15000"
    )
    conn.execute("INSERT INTO t (rowid, a, b) VALUES (90000, 'far', 1)")  # a gap to skip
    conn.commit()
    reader = BucketReader(conn, "t", ["a", "b", "c"], ["a", "b"], ["c"])
    got = list(reader.hashes(with_keys=with_keys))
    assert got == _grouped_whole(conn, reader, with_keys)
    assert sum(b.n for b in got) == conn.execute("SELECT count(*) FROM t").fetchone()[0]


def test_wide_rows_are_read_in_smaller_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(tmp_path / "w.db")
    conn.execute("CREATE TABLE w (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO w VALUES (?, ?)", ((i, "x" * 200_000) for i in range(1, 400)))
    conn.commit()
    sizes: list[int] = []
    dense = hashing._dense

    def spy(lo: int, n: int, row: Sequence[Any], with_keys: bool) -> Any:
        sizes.append(len(row[0]))
        return dense(lo, n, row, with_keys)

    monkeypatch.setattr(hashing, "_dense", spy)
    got = list(BucketReader(conn, "w", ["id", "body"], ["id"]).hashes())
    assert sum(b.n for b in got) == 399
    assert sizes and max(sizes) <= hashing.CHUNK_BYTES + hashing.BUCKET_ROWS * 200_100
