"""Shared fixtures: a real PostgreSQL (SQLITE2PG_TEST_PG_URL, else the embedded server) with a
fresh database per test, paths to the shared Chinook file, and the CLI run as a user runs it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "sqlite2pg"]  # the command a user types, from this environment
CHINOOK = Path(
    os.environ.get("SQLITE2PG_CHINOOK", ROOT.parent / "shared" / "data" / "Chinook_Sqlite.sqlite")
)


def _admin_url() -> str:
    url = os.environ.get("SQLITE2PG_TEST_PG_URL")
    if url:
        return url
    from sqlite2pg.target import start_embedded

    return start_embedded(ROOT / ".sqlite2pg" / "test-pg")


@pytest.fixture(autouse=True)
def _private_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder: default state, reports and logs never land in the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """Connection string of a server where tests may create databases."""
    return _admin_url()


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(pg_admin)
    params["dbname"] = name
    yield make_conninfo("", **params)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def chinook(tmp_path: Path) -> Path:
    """A private copy of the real Chinook file (tests may change it)."""
    if not CHINOOK.exists():
        pytest.skip("the shared Chinook file is not present")
    dst = tmp_path / "chinook.sqlite"
    src = sqlite3.connect(CHINOOK)
    out = sqlite3.connect(dst)
    src.backup(out)
    src.close()
    out.close()
    return dst


def make_db(
    path: Path, script: str, rows: dict[str, list[tuple[object, ...]]] | None = None
) -> Path:
    """An SQLite file from DDL plus rows inserted as exact Python values."""
    conn = sqlite3.connect(path)
    conn.executescript(script)
    for table, values in (rows or {}).items():
        if values:
            marks = ", ".join("?" * len(values[0]))
            conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', values)
    conn.commit()
    conn.close()
    return path


def run_cli(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """sqlite2pg in its own process, as a user runs it; ``env`` adds to the environment."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pair_table(db: Path, lists: int, per: int) -> sqlite3.Connection:
    """A table ``item`` keyed by (a, b): ``lists`` first-column values with ``per`` rows each,
    all stamped 2024-01-01; returns an autocommit connection for the "application"."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "CREATE TABLE item (a INTEGER NOT NULL, b INTEGER NOT NULL, v TEXT, updated_at DATETIME, "
        "PRIMARY KEY (a, b))"
    )
    conn.executemany(
        "INSERT INTO item VALUES (?, ?, 'x', '2024-01-01 00:00:00')",
        ((a, b) for a in range(1, lists + 1) for b in range(per)),
    )
    return conn
