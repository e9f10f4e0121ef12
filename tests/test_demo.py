"""The README's quick-start demo, run as a user runs it: embedded server, migration, changes,
incremental sync, verification, and a psql URL that works."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg

from conftest import CLI


def test_demo_migrates_changes_syncs_and_verifies(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["COLUMNS"] = "120"
    try:
        run = subprocess.run(
            [*CLI, "demo"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        out = run.stdout
        assert "full sync" in out and "incremental sync" in out
        assert out.count("verification (checksum): identical") == 2
        url = next(
            line.split('psql "', 1)[1].rstrip('"') for line in out.splitlines() if 'psql "' in line
        )
        with psycopg.connect(url) as pg:
            tracks = pg.execute("SELECT count(*) FROM track").fetchone()
        assert tracks is not None and tracks[0] > 3000
        assert (tmp_path / ".sqlite2pg" / "demo" / "demo.db").exists()
        assert any(p.suffix == ".html" for p in (tmp_path / "reports").iterdir())
    finally:
        subprocess.run(
            [*CLI, "server", "stop"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
