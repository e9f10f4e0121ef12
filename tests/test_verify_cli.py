"""`sqlite2pg verify` as a user runs it: exit status, named differences, report, history."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import run_cli


def test_verify_names_a_tampered_row_and_writes_a_report(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync = run_cli(["sync", "--source", str(chinook), "--target", pg_url, "--json"], tmp_path)
    assert sync.returncode == 0, sync.stderr
    clean = run_cli(["verify", "--source", str(chinook), "--target", pg_url], tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "identical" in clean.stdout
    with psycopg.connect(pg_url) as pg:
        pg.execute("DELETE FROM invoice_line WHERE invoice_line_id = 7")
        pg.execute("UPDATE track SET name = 'Changed' WHERE track_id = 42")
    run = run_cli(["verify", "--source", str(chinook), "--target", pg_url, "--json"], tmp_path)
    assert run.returncode == 1, run.stderr
    out = json.loads(run.stdout)
    assert out["identical"] is False
    assert out["tables"]["InvoiceLine"]["missing"] == [{"InvoiceLineId": 7}]
    different = out["tables"]["Track"]["different"]
    assert [d["key"] for d in different] == [{"TrackId": 42}]
    assert list(different[0]["columns"]) == ["Name"]
    assert [Path(f).suffix for f in out["report_files"]] == [".json", ".html"]
    assert all(Path(f).exists() for f in out["report_files"])
    history = run_cli(["history", "--json"], tmp_path)
    assert history.returncode == 0, history.stderr
    commands = [(h["command"], h["status"]) for h in json.loads(history.stdout)]
    assert commands[0] == ("verify", "differences")
    assert ("sync", "ok") in commands
