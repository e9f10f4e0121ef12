"""A writer that died mid-transaction leaves a hot journal: a read-only reader cannot roll it
back. Without permission to write the source, sqlite2pg says so plainly (exit 2); with the
triggers strategy (writes allowed) it rolls the journal back and syncs the committed data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from conftest import make_db, run_cli

DIE_MID_WRITE = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 1")  # spill changed pages into the file before commit
conn.execute("BEGIN")
for i in range(2000):
    conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 2000,))
os.kill(os.getpid(), signal.SIGKILL)
"""


def _crash_a_writer(db: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", DIE_MID_WRITE, str(db)], timeout=60)
    assert proc.returncode != 0
    assert Path(f"{db}-journal").exists(), "no hot journal left behind"


def test_a_hot_journal_is_named_when_the_source_may_not_be_written(
    tmp_path: Path, pg_url: str
) -> None:
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
        {"t": [(1, "a"), (2, "b")]},
    )
    _crash_a_writer(db)
    run = run_cli(["sync", "--source", str(db), "--target", pg_url], tmp_path)
    assert run.returncode == 2, run.stderr
    assert "hot journal" in run.stderr and "Traceback" not in run.stderr
    assert Path(f"{db}-journal").exists()  # the source was not touched


def test_the_triggers_strategy_rolls_the_hot_journal_back(tmp_path: Path, pg_url: str) -> None:
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
        {"t": [(1, "a"), (2, "b")]},
    )
    _crash_a_writer(db)
    cfg = tmp_path / "job.yml"
    cfg.write_text(f"source: {db}\ntables:\n  t:\n    strategy: triggers\n")
    run = run_cli(["sync", "-c", str(cfg), "--target", pg_url], tmp_path)
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
