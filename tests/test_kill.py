"""kill -9 at random moments of a full and of an incremental run, then a re-run: the target equals
the source, nothing duplicated or lost, and the next run is still incremental.

The CLI runs in a subprocess exactly as cron would start it; the kill moments are drawn from
a seeded generator over the duration of an uninterrupted run, so they land in every stage
(planning, COPY, indexes, staging, apply, state, commit, change-log trim).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import CLI
from sqlite2pg.sample import apply_changes, write_sample
from test_incremental import assert_same

KILLS = 4


def _cmd(db: Path, pg_url: str, tmp_path: Path, config: Path | None) -> list[str]:
    cmd = [
        *CLI,
        "sync",
        "--source",
        str(db),
        "--target",
        pg_url,
        "--state",
        str(tmp_path / "state.db"),
        "--verify",
        "off",
        "--json",
    ]
    if config is not None:
        cmd += ["--config", str(config)]
    return cmd


def _complete(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run to the end; a run killed a moment ago may still hold the target's lock until its
    server session notices: then the new run exits 75, and is started again."""
    for _ in range(60):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
        if proc.returncode == 75:
            time.sleep(0.5)
            continue
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]
    raise AssertionError("the lock was never released")


def _timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    _complete(cmd, cwd)
    return time.perf_counter() - started


def _kill_at(cmd: list[str], cwd: Path, delay: float) -> bool:
    """Start a run and kill -9 it after ``delay`` seconds; True if it was still running."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def _runs(pg_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(pg_url) as pg:
        if pg.execute("SELECT to_regclass('sqlite2pg.runs')").fetchone() == (None,):
            return []
        return [
            tuple(r)
            for r in pg.execute("SELECT mode, status FROM sqlite2pg.runs ORDER BY finished_at")
        ]


def _consistent(db: Path, pg_url: str) -> None:
    """After any kill the target is exactly one committed state: empty, or a whole sync."""
    runs = _runs(pg_url)
    if runs:
        with psycopg.connect(pg_url) as pg:
            n = pg.execute("SELECT count(*) FROM sqlite2pg.synced_tables").fetchone()
        assert n == (11,)


@pytest.mark.parametrize("strategy", ["hash", "timestamp", "triggers"])
def test_kill_9_during_full_and_incremental_runs(
    pg_url: str, pg_admin: str, tmp_path: Path, strategy: str
) -> None:
    rng = random.Random(f"kill-{strategy}")
    db = tmp_path / "app.db"
    write_sample(db, scale=2, seed=11, updated_at=strategy == "timestamp")
    config = None
    if strategy == "triggers":
        config = tmp_path / "cfg.yaml"
        names = [
            r[0]
            for r in sqlite3.connect(db).execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        config.write_text("tables:\n" + "".join(f"  {n}: {{strategy: triggers}}\n" for n in names))
    cmd = _cmd(db, pg_url, tmp_path, config)

    # how long an uninterrupted full run takes, measured into a scratch database
    ref = f"ref_{os.getpid()}_{strategy}"
    with psycopg.connect(pg_admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{ref}"')
    try:
        params = conninfo_to_dict(pg_url)
        params["dbname"] = ref
        ref_cmd = _cmd(db, make_conninfo("", **params), tmp_path / "ref", config)
        full_seconds = _timed(ref_cmd, tmp_path)
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{ref}" WITH (FORCE)')
    if strategy == "triggers":  # that run installed the triggers; the log belongs to it
        sqlite3.connect(db).execute("DELETE FROM _sqlite2pg_changes").connection.commit()

    killed = 0
    for _ in range(KILLS):
        killed += _kill_at(cmd, tmp_path, rng.uniform(0.2, full_seconds))
        _consistent(db, pg_url)
    out = _complete(cmd, tmp_path)
    assert killed >= 1
    assert out["mode"] in ("full", "incremental")
    assert_same(db, pg_url)

    for round_ in range(3):
        apply_changes(db, 0.03, seed=round_)
        inc_seconds = _timed(cmd, tmp_path) if round_ == 0 else 1.5
        if round_ == 0:  # that run applied the changes; make new ones to be killed over
            apply_changes(db, 0.03, seed=50)
        for _ in range(KILLS):
            _kill_at(cmd, tmp_path, rng.uniform(0.3, max(inc_seconds, 0.6)))
            _consistent(db, pg_url)
        out = _complete(cmd, tmp_path)
        assert out["mode"] == "incremental", out
        assert_same(db, pg_url)
    assert [m for m, _ in _runs(pg_url)].count("full") == 1
    if strategy == "triggers":
        left = sqlite3.connect(db).execute("SELECT count(*) FROM _sqlite2pg_changes").fetchone()
        assert left == (0,)


def test_lost_connection_during_an_incremental_run(pg_url: str, tmp_path: Path) -> None:
    """The server ends the session mid-run (failover, network): the run fails with status 3,
    nothing is half-applied, and the next run applies everything."""
    db = tmp_path / "app.db"
    write_sample(db, scale=2, seed=12)
    cmd = _cmd(db, pg_url, tmp_path, None)
    _complete(cmd, tmp_path)
    apply_changes(db, 0.05, seed=3)
    dbname = conninfo_to_dict(pg_url)["dbname"]
    terminated = False
    for _ in range(5):
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        with psycopg.connect(pg_url, autocommit=True) as admin:
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                    "pg_backend_pid() AND xact_start IS NOT NULL "
                    "AND backend_type = 'client backend'",
                    (dbname,),
                ).fetchone()
                if row is not None:
                    admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    terminated = True
                    break
                time.sleep(0.01)
        _, err = proc.communicate()
        if terminated and proc.returncode != 0:
            assert proc.returncode == 3, err
            assert b"Traceback" not in err
            break
    assert terminated
    out = _complete(cmd, tmp_path)
    assert out["mode"] == "incremental"
    assert_same(db, pg_url)
