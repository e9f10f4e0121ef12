"""Logging setup: JSON lines with run context, rotation, console, idempotence, redaction."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import sqlite2pg.logs as logs
from sqlite2pg.logs import add_secrets, current_context, log_context, setup_logging


@pytest.fixture(autouse=True)
def _clean_logger() -> Iterator[None]:
    yield
    logger = logging.getLogger("sqlite2pg")
    for handler in list(logger.handlers):
        if getattr(handler, "_sqlite2pg_handler", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.NOTSET)
    logs._redactor = None


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_carry_time_level_logger_and_context(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "run.jsonl"  # directory created on demand
    setup_logging(log_file, console=False)
    log = logging.getLogger("sqlite2pg.load")
    before = datetime.now(timezone.utc)

    log.info("outside")
    with log_context(run_id="r-1", stage="copy"):
        log.info("copy %s", "starts")
        with log_context(table="users"):
            log.warning("copied %d rows", 3, extra={"rows": 3})
        log.info("back")

    lines = _lines(log_file)
    assert [line["msg"] for line in lines] == ["outside", "copy starts", "copied 3 rows", "back"]
    for line in lines:
        assert {"ts", "level", "logger", "msg", "run_id", "table", "stage"} <= line.keys()
        assert line["logger"] == "sqlite2pg.load"
        assert line["ts"].endswith("Z")
        ts = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
        assert ts.utcoffset() == timedelta(0)
        assert ts >= before - timedelta(seconds=1)
    assert (lines[0]["run_id"], lines[0]["table"], lines[0]["stage"]) == (None, None, None)
    assert (lines[1]["run_id"], lines[1]["table"], lines[1]["stage"]) == ("r-1", None, "copy")
    assert lines[2] | {"ts": None} == {
        "ts": None,
        "level": "WARNING",
        "logger": "sqlite2pg.load",
        "msg": "copied 3 rows",
        "run_id": "r-1",
        "table": "users",
        "stage": "copy",
        "rows": 3,
    }
    assert lines[3]["table"] is None  # restored on leaving the inner block


def test_context_is_restored_and_not_shared_with_other_threads() -> None:
    seen: list[dict[str, str | None]] = []
    with log_context(run_id="r-2", table="t"):
        assert current_context() == {"run_id": "r-2", "table": "t", "stage": None}
        worker = threading.Thread(target=lambda: seen.append(current_context()))
        worker.start()
        worker.join()
    assert current_context() == {"run_id": None, "table": None, "stage": None}
    assert seen == [{"run_id": None, "table": None, "stage": None}]


def test_explicit_extra_wins_over_context(tmp_path: Path) -> None:
    setup_logging(tmp_path / "x.jsonl", console=False)
    with log_context(table="from_context"):
        logging.getLogger("sqlite2pg").info("m", extra={"table": "explicit"})
    assert _lines(tmp_path / "x.jsonl")[0]["table"] == "explicit"


def test_exceptions_are_logged_as_one_json_line(tmp_path: Path) -> None:
    setup_logging(tmp_path / "x.jsonl", console=False)
    try:
        raise KeyError("boom")
    except KeyError:
        logging.getLogger("sqlite2pg.pipeline").exception("stage failed")
    (line,) = _lines(tmp_path / "x.jsonl")
    assert line["level"] == "ERROR"
    assert "Traceback" in line["exc"] and "KeyError: 'boom'" in line["exc"]


def test_setup_twice_does_not_duplicate_lines(tmp_path: Path) -> None:
    setup_logging(tmp_path / "a.jsonl", console=False)
    setup_logging(tmp_path / "b.jsonl", console=False)
    setup_logging(tmp_path / "b.jsonl", console=False)
    logging.getLogger("sqlite2pg").info("once")
    assert [line["msg"] for line in _lines(tmp_path / "b.jsonl")] == ["once"]
    assert _lines(tmp_path / "a.jsonl") == []  # the first file is no longer written
    ours = [h for h in logging.getLogger("sqlite2pg").handlers if hasattr(h, "_sqlite2pg_handler")]
    assert len(ours) == 1


def test_secrets_are_redacted_in_file_and_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(tmp_path / "x.jsonl", secrets=["pa55word"], rich=False)
    log = logging.getLogger("sqlite2pg.config")
    log.info("connecting with %s", "postgresql://app:pa55word@db/x")
    log.info("conninfo %s", "host=db password=other-secret")
    add_secrets("iam-token-xyz")
    log.warning("token is %s", "iam-token-xyz")
    setup_logging(tmp_path / "x.jsonl", rich=False)  # a later setup keeps learnt secrets
    log.warning("still %s and %s", "iam-token-xyz", "pa55word")

    file_text = (tmp_path / "x.jsonl").read_text()
    console_text = capsys.readouterr().err
    for text in (file_text, console_text):
        for secret in ("pa55word", "other-secret", "iam-token-xyz"):
            assert secret not in text
        assert "postgresql://app:***@db/x" in text
        assert "still *** and ***" in text


def test_quiet_and_verbose_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(tmp_path / "q.jsonl", quiet=True, rich=False)
    log = logging.getLogger("sqlite2pg.sync")
    log.debug("dbg-1")
    log.info("info-1")
    log.warning("warn-1")
    err = capsys.readouterr().err
    assert "warn-1" in err and "info-1" not in err
    assert [line["msg"] for line in _lines(tmp_path / "q.jsonl")] == ["info-1", "warn-1"]

    setup_logging(tmp_path / "v.jsonl", verbose=True, rich=False)
    log.debug("dbg-2")
    err = capsys.readouterr().err
    assert "dbg-2" in err
    assert [line["msg"] for line in _lines(tmp_path / "v.jsonl")] == ["dbg-2"]


def test_console_lines_are_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(None, rich=False)
    with log_context(run_id="r", table="users", stage="verify"):
        logging.getLogger("sqlite2pg.verify").error("2 rows differ")
    err = capsys.readouterr().err.strip()
    assert err.endswith("ERROR   [users/verify] 2 rows differ")
    assert not err.startswith("{")


def test_rich_console(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(None, rich=True)
    logging.getLogger("sqlite2pg").warning("rich %s", "output")
    err = capsys.readouterr().err
    assert "rich output" in err and "WARNING" in err


def test_rotation_keeps_backups_of_whole_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "r.jsonl"
    setup_logging(log_file, console=False, max_bytes=2_000, backups=2)
    log = logging.getLogger("sqlite2pg")
    for i in range(200):
        log.info("line %03d %s", i, "x" * 40)
    files = sorted(tmp_path.glob("r.jsonl*"))
    assert [f.name for f in files] == ["r.jsonl", "r.jsonl.1", "r.jsonl.2"]
    for f in files:
        assert f.stat().st_size <= 2_000
        assert all(line["msg"].startswith("line ") for line in _lines(f))
    assert _lines(log_file)[-1]["msg"].startswith("line 199")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="log level"):
        setup_logging(None, level="LOUD")
    with pytest.raises(ValueError, match="together"):
        setup_logging(None, quiet=True, verbose=True)


def test_in_a_real_process_stderr_and_file(tmp_path: Path) -> None:
    script = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from sqlite2pg.logs import setup_logging, log_context\n"
        "setup_logging(Path(sys.argv[1]), secrets=['hunter2'])\n"
        "with log_context(run_id='proc-run'):\n"
        "    logging.getLogger('sqlite2pg.cli').info('password is hunter2')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "p.jsonl")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "password is ***" in done.stderr
    assert "hunter2" not in done.stderr
    (line,) = _lines(tmp_path / "p.jsonl")
    assert line["msg"] == "password is ***" and line["run_id"] == "proc-run"
