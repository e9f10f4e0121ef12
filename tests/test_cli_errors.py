"""The CLI as a user meets it: bad input gives exit 2, one line `error: ...` and one line
`hint: ...` on stderr, no traceback (unless --debug), and nothing written to the target;
--json gives one JSON object; rejected rows give exit 1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import CLI, make_db

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def assert_input_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, exactly `error: ...` + `hint: ...` on stderr, no traceback; returns the error."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    # an unreachable server is retried first (it may be failing over): one notice per retry
    retries = [line for line in lines if "failed with a transient error" in line]
    lines = [line for line in lines if line not in retries]
    assert len(retries) <= 4, retries
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: ") + 10, lines
    assert lines[1].startswith("hint: ") and len(lines[1]) > len("hint: ") + 5, lines
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    return lines[0]


def target_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def good_db(path: Path) -> Path:
    return make_db(
        path,
        "CREATE TABLE Artist (ArtistId INTEGER PRIMARY KEY, Name TEXT NOT NULL);",
        {"Artist": [(1, "AC/DC"), (2, "Accept")]},
    )


def with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@pytest.fixture(scope="module")
def real_server() -> str:
    """A running PostgreSQL reached over TCP like a user's: SQLITE2PG_TEST_PG_URL, else the
    local server; skipped when neither answers."""
    url = os.environ.get("SQLITE2PG_TEST_PG_URL") or LOCAL_SERVER
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError:
        pytest.skip("no reachable PostgreSQL server for the connection-error tests")
    return url


# --------------------------------------------------------------------------- bad sources


def _source_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("just some notes, not a database\n" * 20)
    folder = tmp_path / "folder.db"
    folder.mkdir()
    # a valid header and first page, then garbage: readable schema, damaged tables
    good = good_db(tmp_path / "big.db")
    conn = sqlite3.connect(good)
    conn.executemany("INSERT INTO Artist VALUES (?, ?)", [(i, "x" * 200) for i in range(3, 3000)])
    conn.commit()
    conn.close()
    data = good.read_bytes()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(data[:4096] + b"\xde\xad\xbe\xef" * ((len(data) - 4096) // 4))
    header_only = tmp_path / "header.db"
    header_only.write_bytes(data[:100] + os.urandom(len(data) - 100))
    return {
        "missing": (tmp_path / "nope.db", "does not exist"),
        "directory": (folder, "directory"),
        "empty": (empty, "empty"),
        "text": (text, "not an SQLite database"),
        "damaged": (damaged, "damaged"),
        "garbage after header": (header_only, "SQLite"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "directory", "empty", "text", "damaged", "garbage after header"]
)
def test_bad_source_files_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path, pg_url: str, case: str
) -> None:
    source, fragment = _source_cases(tmp_path)[case]
    state = tmp_path / "state.db"
    proc = cli(
        "sync", "--source", str(source), "--target", pg_url, "--state", str(state), cwd=tmp_path
    )
    line = assert_input_error(proc, fragment)
    assert source.name in line
    assert target_tables(pg_url) == []
    # `plan` reads the same files the same way
    assert_input_error(cli("plan", "--source", str(source), cwd=tmp_path), fragment)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = cli(
        "--debug",
        "sync",
        "--source",
        str(tmp_path / "nope.db"),
        "--target",
        "postgresql://u@127.0.0.1:1/x",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert "error: source file" in proc.stderr


def test_no_source_at_all(tmp_path: Path) -> None:
    assert_input_error(
        cli("sync", "--target", "postgresql://u@127.0.0.1:1/x", cwd=tmp_path), "no source"
    )


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    proc = cli("sync", "--sauce", "x.db", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--sauce" in proc.stderr and "Traceback" not in proc.stderr


def test_config_with_an_unknown_key_names_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "sqlite2pg.yml"
    cfg.write_text("schema: app\nnamming: preserve\n")
    line = assert_input_error(
        cli(
            "sync",
            "--config",
            str(cfg),
            "--source",
            str(good_db(tmp_path / "a.db")),
            "--target",
            "postgresql://u@127.0.0.1:1/x",
            cwd=tmp_path,
        ),
        "namming",
    )
    assert "line 2" in line


# --------------------------------------------------------------------------- bad targets


def test_unreachable_server_exits_2(tmp_path: Path) -> None:
    source = good_db(tmp_path / "a.db")
    proc = cli(
        "sync",
        "--source",
        str(source),
        "--target",
        "postgresql://postgres:secret-pw@127.0.0.1:1/postgres",
        cwd=tmp_path,
    )
    assert_input_error(proc, "cannot connect", "127.0.0.1:1")
    assert "secret-pw" not in proc.stderr + proc.stdout


def test_unreachable_server_says_why(tmp_path: Path) -> None:
    source = good_db(tmp_path / "a.db")
    proc = cli(
        "sync",
        "--source",
        str(source),
        "--target",
        "postgresql://postgres@127.0.0.1:1/postgres",
        cwd=tmp_path,
    )
    line = assert_input_error(proc)
    assert "refused" in line.lower() and "\t" not in line


def test_invalid_target_url(tmp_path: Path) -> None:
    source = good_db(tmp_path / "a.db")
    assert_input_error(
        cli(
            "sync",
            "--source",
            str(source),
            "--target",
            "postgresql://u@h:notaport/db",
            cwd=tmp_path,
        )
    )


def test_nonexistent_database(tmp_path: Path, real_server: str) -> None:
    source = good_db(tmp_path / "a.db")
    url = with_dbname(real_server, "sqlite2pg_no_such_database")
    proc = cli("sync", "--source", str(source), "--target", url, cwd=tmp_path)
    assert_input_error(proc, "sqlite2pg_no_such_database", "does not exist")
    assert "createdb" in proc.stderr


def test_wrong_password(tmp_path: Path, real_server: str) -> None:
    params = conninfo_to_dict(real_server)
    params["password"] = "certainly-not-the-password"
    url = make_conninfo("", **params)
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError:
        pass
    else:
        pytest.skip("this server trusts its clients: any password is accepted")
    proc = cli("sync", "--source", str(good_db(tmp_path / "a.db")), "--target", url, cwd=tmp_path)
    assert_input_error(proc, "password")
    assert "certainly-not-the-password" not in proc.stderr + proc.stdout


# --------------------------------------------------------------------------- plan errors


def test_colliding_names_exit_2_before_anything_is_written(tmp_path: Path, pg_url: str) -> None:
    source = make_db(
        tmp_path / "a.db",
        "CREATE TABLE FooBar (id INTEGER); CREATE TABLE foo_bar (id INTEGER);"
        "CREATE TABLE fine (id INTEGER PRIMARY KEY);",
        {"fine": [(1,)]},
    )
    proc = cli(
        "sync",
        "--source",
        str(source),
        "--target",
        pg_url,
        "--state",
        str(tmp_path / "s.db"),
        cwd=tmp_path,
    )
    assert_input_error(proc, "foo_bar")
    assert "rename" in proc.stderr
    assert target_tables(pg_url) == []


# --------------------------------------------------------------------------- results


def test_json_output_and_exit_0(tmp_path: Path, pg_url: str) -> None:
    source = good_db(tmp_path / "a.db")
    proc = cli(
        "sync",
        "--source",
        str(source),
        "--target",
        pg_url,
        "--state",
        str(tmp_path / "s.db"),
        "--json",
        "--verify",
        "off",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # the whole of stdout is one JSON object
    assert report["status"] == "ok"
    artist = report["tables"]["Artist"]
    assert (artist["read"], artist["written"], artist["rejected"]) == (2, 2, 0)
    assert "Traceback" not in proc.stderr
    assert [t for t in target_tables(pg_url) if t.startswith("public.")] == ["public.artist"]


def test_rejected_rows_exit_1_and_are_listed(tmp_path: Path, pg_url: str) -> None:
    source = make_db(
        tmp_path / "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, at DATETIME);",
        {"t": [(1, 5, "2020-01-01"), (2, "five", "2020-01-02"), (3, 7, "2023-02-30")]},
    )
    state = str(tmp_path / "s.db")
    proc = cli(
        "sync",
        "--source",
        str(source),
        "--target",
        pg_url,
        "--state",
        state,
        "--json",
        "--verify",
        "off",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "rejected"
    t = report["tables"]["t"]
    assert (t["read"], t["written"], t["rejected"]) == (3, 1, 2)
    listed = cli("rejects", "--state", state, "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rejects = json.loads(listed.stdout)["rejects"]
    assert sorted((r["table"], r["key"]["id"], r["column"]) for r in rejects) == [
        ("t", 2, "qty"),
        ("t", 3, "at"),
    ]
    assert all(r["reason"] and r["value"] for r in rejects)
    # the human summary says the same, on a non-terminal without colour codes
    again = cli(
        "sync",
        "--source",
        str(source),
        "--target",
        pg_url,
        "--state",
        str(tmp_path / "s2.db"),
        "--schema",
        "second",
        "--verify",
        "off",
        cwd=tmp_path,
    )
    assert again.returncode == 1
    assert "Traceback" not in again.stderr and "\x1b[" not in again.stdout


def test_empty_database_is_ok(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "empty.db"
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    proc = cli(
        "sync",
        "--source",
        str(source),
        "--target",
        pg_url,
        "--state",
        str(tmp_path / "s.db"),
        "--json",
        "--verify",
        "off",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "ok" and report["tables"] == {}
