"""Unattended operation end to end: secrets never shown, faults ridden out, alerts sent."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import CLI, make_db, run_cli
from sqlite2pg.sample import write_sample

SECRET = "Sup3r-s3cret-pw"


def _with_password(url: str, password: str) -> str:
    params = conninfo_to_dict(url)
    params["password"] = password
    return make_conninfo("", **params)


def test_a_password_appears_in_no_log_report_or_output(tmp_path: Path, pg_url: str) -> None:
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);",
        {"t": [(1, 1), (2, "not a number")]},  # a rejected row: the report lists it
    )
    cfg = tmp_path / "job.yml"
    cfg.write_text(
        f"source: {db}\nlog:\n  file: job.log\nreport_dir: reports\n"
        "target:\n  password: ${JOB_PW}\n"
    )
    target = _with_password(pg_url, SECRET)  # trust auth: the password is accepted and unused
    done = run_cli(["-v", "sync", "-c", str(cfg), "--target", target], tmp_path, {"JOB_PW": SECRET})
    assert done.returncode == 1, done.stderr  # 1: a row was rejected
    bad = run_cli(
        ["sync", "-c", str(cfg), "--target", target.replace("dbname=", "dbname=nope_")],
        tmp_path,
        {"JOB_PW": SECRET},
    )
    assert bad.returncode == 2
    files = [tmp_path / "job.log", *sorted((tmp_path / "reports").iterdir())]
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".json" for p in files)
    texts = [done.stdout, done.stderr, bad.stdout, bad.stderr] + [p.read_text() for p in files]
    assert all(SECRET not in text for text in texts)
    log_lines = [json.loads(line) for line in (tmp_path / "job.log").read_text().splitlines()]
    assert {"ts", "level", "run_id", "table", "stage", "msg"} <= set(log_lines[0])
    assert any(line["table"] == "t" and line["stage"] == "copy" for line in log_lines)


def test_terminated_connections_are_retried_and_the_target_is_exact(
    tmp_path: Path, pg_url: str, pg_admin: str
) -> None:
    db = tmp_path / "s.db"
    write_sample(db, scale=3, seed=5)
    cfg = tmp_path / "job.yml"
    cfg.write_text(f"source: {db}\nretries:\n  attempts: 6\n  initial_wait: 0.2\n")
    dbname = conninfo_to_dict(pg_url)["dbname"]
    killed: list[int] = []

    blocking = threading.Event()

    def terminate_twice() -> None:
        # An uncommitted CREATE SCHEMA of the name the sync's state needs makes each attempt
        # wait on a lock near its end (after the data is copied): the attempt to terminate is
        # found there every time, however fast the load is.
        with (
            psycopg.connect(pg_url) as blocker,
            psycopg.connect(pg_admin, autocommit=True) as admin,
        ):
            blocker.execute("CREATE SCHEMA sqlite2pg")
            blocking.set()
            deadline = time.monotonic() + 120
            while len(killed) < 2 and time.monotonic() < deadline:
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND application_name = 'sqlite2pg' AND wait_event_type = 'Lock'",
                    (dbname,),
                ).fetchall()
                if any(r[0] for r in rows):
                    killed.append(len(killed))
                time.sleep(0.05)
            blocker.rollback()

    killer = threading.Thread(target=terminate_twice)
    killer.start()
    assert blocking.wait(30)
    run = run_cli(["sync", "-c", str(cfg), "--target", pg_url], tmp_path)
    killer.join()
    assert len(killed) == 2, "the test did not manage to terminate two backends"
    assert run.returncode == 0, run.stderr
    assert "transient error" in run.stderr
    verify = run_cli(["verify", "-c", str(cfg), "--target", pg_url, "--level", "rows"], tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_writer_holding_the_source_is_waited_for(tmp_path: Path, pg_url: str) -> None:
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
        {"t": [(i, f"v{i}") for i in range(100)]},
    )
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: readers are locked out
    writer.execute("INSERT INTO t VALUES (1000, 'late')")
    released = threading.Timer(2.0, lambda: writer.execute("COMMIT"))
    released.start()
    run = run_cli(["sync", "--source", str(db), "--target", pg_url], tmp_path)
    released.join()
    writer.close()
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT count(*) FROM t").fetchone() == (101,)


def test_rejected_rows_post_the_summary_to_the_webhook(tmp_path: Path, pg_url: str) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        db = make_db(
            tmp_path / "app.db",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE);",
            {"t": [(1, "2024-01-01"), (2, "2023-02-30")]},
        )
        cfg = tmp_path / "job.yml"
        cfg.write_text(
            f"source: {db}\nnotify:\n  webhook: http://127.0.0.1:{server.server_port}/hook\n"
        )
        run = run_cli(["sync", "-c", str(cfg), "--target", pg_url], tmp_path)
    finally:
        server.shutdown()
    assert run.returncode == 1, run.stderr
    assert len(received) == 1
    assert received[0]["status"] == "rejected"
    assert received[0]["counts"]["rejected"] == 1
    assert received[0]["tables"]["t"]["rejected"] == 1


def test_a_second_concurrent_run_exits_75_naming_the_holder(tmp_path: Path, pg_url: str) -> None:
    db = tmp_path / "s.db"
    write_sample(db, scale=10, seed=2)
    cfg = tmp_path / "job.yml"
    cfg.write_text(f"source: {db}\n")
    first = subprocess.Popen(
        [*CLI, "sync", "-c", str(cfg), "--target", pg_url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = tmp_path / "sqlite2pg-state.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.02)
    second = run_cli(["sync", "-c", str(cfg), "--target", pg_url], tmp_path)
    _out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 75, second.stderr
    assert "error:" in second.stderr and "Traceback" not in second.stderr
    assert str(first.pid) in second.stderr or "since" in second.stderr
