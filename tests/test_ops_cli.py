"""schedule and status as a user runs them (real processes, a fake crontab program on PATH)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlite2pg.api as api
from conftest import make_db, run_cli


def _fake_crontab(tmp_path: Path) -> dict[str, str]:
    store = tmp_path / "crontab.txt"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "crontab"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-l" ]; then [ -f "{store}" ] && cat "{store}" && exit 0; '
        'echo "no crontab for user" >&2; exit 1; fi\n'
        f'cat > "{store}"\n'
    )
    script.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def test_schedule_install_is_idempotent_and_removable(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
    cfg = tmp_path / "job.yml"
    cfg.write_text(f"source: {db}\n")
    env = _fake_crontab(tmp_path)
    first = run_cli(
        ["schedule", "-c", str(cfg), "--weekly", "sun 02:00", "--install"], tmp_path, env
    )
    assert first.returncode == 0, first.stderr
    assert "installed in your crontab" in first.stdout
    again = run_cli(["schedule", "-c", str(cfg), "--daily", "03:30", "--install"], tmp_path, env)
    assert again.returncode == 0, again.stderr
    lines = (tmp_path / "crontab.txt").read_text().splitlines()
    entries = [line for line in lines if f"# sqlite2pg:{cfg}" in line]
    assert len(entries) == 1, lines  # replaced, not added twice
    assert entries[0].startswith("30 3 * * * cd ")
    assert f"sync --config {cfg}" in entries[0]
    assert str(Path(sys.executable).parent / "sqlite2pg") in entries[0]
    gone = run_cli(["schedule", "-c", str(cfg), "--remove"], tmp_path, env)
    assert gone.returncode == 0 and "removed" in gone.stdout
    assert f"# sqlite2pg:{cfg}" not in (tmp_path / "crontab.txt").read_text()


def test_schedule_rejects_a_bad_time(tmp_path: Path) -> None:
    cfg = tmp_path / "job.yml"
    cfg.write_text("source: app.db\n")
    bad = run_cli(["schedule", "-c", str(cfg), "--weekly", "funday 02:00"], tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: bad schedule")
    assert "Traceback" not in bad.stderr


def test_status_is_unhealthy_before_any_run_and_healthy_after(tmp_path: Path, pg_url: str) -> None:
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
        {"t": [(1, "a"), (2, "b")]},
    )
    cfg = tmp_path / "job.yml"
    cfg.write_text(f"source: {db}\nverify: off\n")
    before = run_cli(["status", "-c", str(cfg), "--target", pg_url], tmp_path)
    assert before.returncode == 1
    assert "no sync has run yet" in before.stdout
    sync = run_cli(["sync", "-c", str(cfg), "--target", pg_url], tmp_path)
    assert sync.returncode == 0, sync.stderr
    after = run_cli(["status", "-c", str(cfg), "--target", pg_url, "--json"], tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    assert '"healthy": true' in after.stdout
    assert '"table": "t"' in after.stdout
    stale = run_cli(
        ["status", "-c", str(cfg), "--target", pg_url, "--max-age-hours", "0.000001"], tmp_path
    )
    assert stale.returncode == 1
    assert "hours old" in stale.stdout


def test_a_lost_state_database_is_rebuilt_from_the_target(tmp_path: Path, pg_url: str) -> None:
    import json
    import sqlite3

    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
        {"t": [(1, "a"), (2, "b"), (3, "c")]},
    )
    cfg = tmp_path / "job.yml"
    cfg.write_text(f"source: {db}\nverify: off\nstate: {tmp_path / 'state.db'}\n")
    assert run_cli(["sync", "-c", str(cfg), "--target", pg_url], tmp_path).returncode == 0
    with sqlite3.connect(db) as app:
        app.execute("DELETE FROM t WHERE id = 3")
        app.execute("INSERT INTO t VALUES (4, 'd')")
    assert run_cli(["sync", "-c", str(cfg), "--target", pg_url], tmp_path).returncode == 0
    for f in tmp_path.glob("state.db*"):
        f.unlink()  # the disk the history lived on was replaced

    status = run_cli(["status", "-c", str(cfg), "--target", pg_url, "--json"], tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    assert '"healthy": true' in status.stdout
    history = run_cli(["history", "-c", str(cfg), "--json"], tmp_path)
    runs = json.loads(history.stdout)
    assert len(runs) == 2, history.stdout
    newest = runs[0]
    assert (newest["status"], newest["inserted"], newest["deleted"]) == ("ok", 1, 1)
    summary = api.history(config=cfg)[0].summary or {}
    assert summary["mode"] == "incremental" and summary["restored_from_target"] is True

    for f in tmp_path.glob("state.db*"):
        f.unlink()
    sync = run_cli(["sync", "-c", str(cfg), "--target", pg_url, "--json"], tmp_path)
    assert sync.returncode == 0, sync.stderr
    assert "2 earlier run(s) restored" in sync.stdout
    assert len(json.loads(run_cli(["history", "-c", str(cfg), "--json"], tmp_path).stdout)) == 3
