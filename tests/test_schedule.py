"""Scheduling: cron expressions, crontab install/remove through a real (fake) crontab program,
the generated cron command run by a real shell, and systemd units checked by systemd-analyze."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sqlite2pg.schedule import (
    CrontabError,
    cron_expression,
    cron_line,
    cron_marker,
    cron_to_on_calendar,
    install_cron,
    remove_cron,
    systemd_units,
)

# --------------------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("weekly", "expected"),
    [
        ("sun 02:00", "0 2 * * 0"),
        ("Sunday 2:00", "0 2 * * 0"),
        ("7 02:00", "0 2 * * 0"),
        ("mon-fri 06:30", "30 6 * * 1-5"),
        ("sun,wed 23:59", "59 23 * * 0,3"),
    ],
)
def test_weekly_schedule(weekly: str, expected: str) -> None:
    assert cron_expression(weekly, None, None) == expected


def test_daily_schedule() -> None:
    assert cron_expression(None, "02:00", None) == "0 2 * * *"
    assert cron_expression(None, "7:05", None) == "5 7 * * *"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0 2 * * 0", "0 2 * * 0"),
        ("  */15   3 * *  1-5 ", "*/15 3 * * 1-5"),
        ("0 0 1,15 jan-jun *", "0 0 1,15 jan-jun *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
    ],
)
def test_raw_cron_is_validated_and_normalised(raw: str, expected: str) -> None:
    assert cron_expression(None, None, raw) == expected


@pytest.mark.parametrize(
    ("weekly", "daily", "cron", "fragment"),
    [
        (None, None, None, "exactly one"),
        ("sun 02:00", "02:00", None, "exactly one"),
        ("sun", None, None, "DAY HH:MM"),
        ("funday 02:00", None, None, "funday"),
        ("sun 25:00", None, None, "not a time of day"),
        ("sun 2am", None, None, "HH:MM"),
        (None, "02:60", None, "not a time of day"),
        (None, None, "0 2 * *", "5 fields"),
        (None, None, "60 2 * * *", "minute 60 is outside 0-59"),
        (None, None, "0 24 * * *", "hour 24"),
        (None, None, "0 2 0 * *", "day of month 0"),
        (None, None, "0 2 * 13 *", "month 13"),
        (None, None, "0 2 * * 8", "day of week 8"),
        (None, None, "0 2 * * 5-1", "backwards"),
        (None, None, "*/0 2 * * *", "step"),
        (None, None, "0 2 * * sun;rm", "not a number"),
        (None, None, "@reboot", "unknown macro"),
    ],
)
def test_bad_schedules_raise_value_error(
    weekly: str | None, daily: str | None, cron: str | None, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        cron_expression(weekly, daily, cron)


# --------------------------------------------------------------------------- cron line


def _command_of(line: str) -> str:
    """What cron hands to /bin/sh: everything after the five fields, with \\% unescaped."""
    return line.split(None, 5)[5].replace("\\%", "%")


def test_cron_line_uses_absolute_paths_and_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = cron_line(
        "0 2 * * 0", Path("bin/sqlite2pg"), Path("sync.yaml"), Path("."), Path("cron.log")
    )
    assert line.startswith("0 2 * * 0 cd ")
    assert f"cd {tmp_path} && {tmp_path}/bin/sqlite2pg sync --config {tmp_path}/sync.yaml" in line
    assert f">> {tmp_path}/cron.log 2>&1" in line
    assert line.endswith(f" # sqlite2pg:{tmp_path}/sync.yaml")
    assert line.endswith(" " + cron_marker(Path("sync.yaml")))


def test_cron_line_rejects_bad_expression(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="5 fields"):
        cron_line("0 2 * *", tmp_path / "x", tmp_path / "c", tmp_path, tmp_path / "l")


def test_cron_line_command_runs_in_a_real_shell(tmp_path: Path) -> None:
    """Paths with spaces, quotes and % survive cron's and the shell's parsing."""
    base = tmp_path / "it's 100% here"
    (base / "work dir").mkdir(parents=True)
    exe = base / "fake sqlite2pg"
    exe.write_text(
        '#!/bin/sh\npwd > "$PWD/ran.txt"\nfor a in "$@"; do echo "$a" >> "$PWD/ran.txt"; done\n'
        "echo to-stdout\necho to-stderr >&2\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    config = base / "my config.yaml"
    log = base / "cron.log"
    log.write_text("earlier run\n")
    line = cron_line("0 2 * * 0", exe, config, base / "work dir", log)

    # cron would turn any unescaped % into a newline
    assert "%" not in line.replace("\\%", "")
    subprocess.run(["/bin/sh", "-c", _command_of(line)], check=True, cwd="/")

    ran = (base / "work dir" / "ran.txt").read_text().splitlines()
    assert ran == [str(base / "work dir"), "sync", "--config", str(config)]
    assert log.read_text() == "earlier run\nto-stdout\nto-stderr\n"


def test_cron_line_rejects_newlines_in_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line break"):
        cron_line("0 2 * * 0", tmp_path / "x", tmp_path / "a\nb", tmp_path, tmp_path / "l")


# --------------------------------------------------------------------------- crontab


@pytest.fixture
def fake_crontab(tmp_path: Path) -> tuple[Path, Path]:
    """A crontab program storing the table in a file; returns (program, table file)."""
    table = tmp_path / "table"
    program = tmp_path / "crontab"
    program.write_text(
        "#!/bin/sh\n"
        f"table='{table}'\n"
        'case "$1" in\n'
        '  -l) if [ -f "$table" ]; then cat "$table"; '
        'else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;\n'
        '  -) cat > "$table" ;;\n'
        '  *) echo "usage" >&2; exit 2 ;;\n'
        "esac\n"
    )
    program.chmod(0o755)
    return program, table


def _line(tmp_path: Path, config: str, hour: int = 2) -> tuple[str, str]:
    cfg = tmp_path / config
    line = cron_line(f"0 {hour} * * 0", tmp_path / "sqlite2pg", cfg, tmp_path, tmp_path / "l")
    return line, cron_marker(cfg)


def test_install_into_empty_crontab(tmp_path: Path, fake_crontab: tuple[Path, Path]) -> None:
    program, table = fake_crontab
    line, marker = _line(tmp_path, "a.yaml")
    assert install_cron(line, marker, crontab_cmd=str(program)) is True
    assert table.read_text() == line + "\n"


def test_install_is_idempotent_and_keeps_other_entries(
    tmp_path: Path, fake_crontab: tuple[Path, Path]
) -> None:
    program, table = fake_crontab
    others = "MAILTO=ops@example.com\n# my backup\n30 1 * * * /usr/bin/backup\n"
    table.write_text(others)
    line, marker = _line(tmp_path, "a.yaml")

    assert install_cron(line, marker, crontab_cmd=str(program)) is True
    assert install_cron(line, marker, crontab_cmd=str(program)) is False
    assert table.read_text() == others + line + "\n"

    # a new schedule for the same config replaces the entry in place
    changed, _ = _line(tmp_path, "a.yaml", hour=5)
    assert install_cron(changed, marker, crontab_cmd=str(program)) is True
    assert table.read_text() == others + changed + "\n"


def test_entries_for_different_configs_coexist(
    tmp_path: Path, fake_crontab: tuple[Path, Path]
) -> None:
    program, table = fake_crontab
    line_a, marker_a = _line(tmp_path, "a.yaml")
    line_b, marker_b = _line(tmp_path, "a.yaml.bak")
    install_cron(line_a, marker_a, crontab_cmd=str(program))
    install_cron(line_b, marker_b, crontab_cmd=str(program))
    assert table.read_text() == f"{line_a}\n{line_b}\n"

    assert remove_cron(marker_a, crontab_cmd=str(program)) is True
    assert table.read_text() == f"{line_b}\n"


def test_remove_cron(tmp_path: Path, fake_crontab: tuple[Path, Path]) -> None:
    program, table = fake_crontab
    assert remove_cron("# sqlite2pg:/nowhere", crontab_cmd=str(program)) is False
    assert not table.exists()  # nothing written when nothing changed

    table.write_text("30 1 * * * /usr/bin/backup\n")
    line, marker = _line(tmp_path, "a.yaml")
    install_cron(line, marker, crontab_cmd=str(program))
    assert remove_cron(marker, crontab_cmd=str(program)) is True
    assert remove_cron(marker, crontab_cmd=str(program)) is False
    assert table.read_text() == "30 1 * * * /usr/bin/backup\n"


def test_install_requires_the_marker(tmp_path: Path, fake_crontab: tuple[Path, Path]) -> None:
    program, _ = fake_crontab
    line, _ = _line(tmp_path, "a.yaml")
    with pytest.raises(ValueError, match="marker"):
        install_cron(line, "# sqlite2pg:/other.yaml", crontab_cmd=str(program))


def test_failing_crontab_program_raises(tmp_path: Path) -> None:
    broken = tmp_path / "crontab"
    broken.write_text("#!/bin/sh\necho 'permission denied for crontab' >&2\nexit 1\n")
    broken.chmod(0o755)
    line, marker = _line(tmp_path, "a.yaml")
    with pytest.raises(CrontabError, match="permission denied"):
        install_cron(line, marker, crontab_cmd=str(broken))
    with pytest.raises(CrontabError, match="cannot run"):
        remove_cron(marker, crontab_cmd=str(tmp_path / "missing-crontab"))


def test_crontab_command_as_argv_prefix(tmp_path: Path, fake_crontab: tuple[Path, Path]) -> None:
    program, table = fake_crontab
    line, marker = _line(tmp_path, "a.yaml")
    assert install_cron(line, marker, crontab_cmd=["/bin/sh", str(program)]) is True
    assert table.read_text() == line + "\n"


# --------------------------------------------------------------------------- systemd


@pytest.mark.parametrize(
    ("cron", "on_calendar"),
    [
        ("0 2 * * 0", "Sun *-*-* 02:00:00"),
        ("0 2 * * 7", "Sun *-*-* 02:00:00"),
        ("0 2 * * *", "*-*-* 02:00:00"),
        ("30 6 * * 1-5", "Mon..Fri *-*-* 06:30:00"),
        ("*/15 * * * *", "*-*-* *:00,15,30,45:00"),
        ("0 0 1 jan,jul *", "*-01,07-01 00:00:00"),
        ("@weekly", "Sun *-*-* 00:00:00"),
    ],
)
def test_cron_to_on_calendar(cron: str, on_calendar: str) -> None:
    assert cron_to_on_calendar(cron) == on_calendar


def test_cron_with_both_day_fields_cannot_be_translated() -> None:
    with pytest.raises(ValueError, match="either matches"):
        cron_to_on_calendar("0 2 1 * 0")


def test_systemd_units_content(tmp_path: Path) -> None:
    service, timer = systemd_units(
        "0 2 * * 0", tmp_path / "sqlite2pg", tmp_path / "c.yaml", tmp_path
    )
    assert "Type=oneshot\n" in service
    assert f"WorkingDirectory={tmp_path}\n" in service
    assert f"ExecStart={tmp_path}/sqlite2pg sync --config {tmp_path}/c.yaml\n" in service
    assert "OnCalendar=Sun *-*-* 02:00:00\n" in timer
    assert "Persistent=true\n" in timer
    assert "WantedBy=timers.target\n" in timer


def test_systemd_units_accept_on_calendar_as_given(tmp_path: Path) -> None:
    _, timer = systemd_units("Sun *-*-* 02:00:00 UTC", tmp_path / "x", tmp_path / "c", tmp_path)
    assert "OnCalendar=Sun *-*-* 02:00:00 UTC\n" in timer
    _, timer = systemd_units("weekly", tmp_path / "x", tmp_path / "c", tmp_path)
    assert "OnCalendar=weekly\n" in timer


@pytest.mark.parametrize("bad", ["every sunday", "", "Sun 25 o'clock", "0 2 * * 9"])
def test_systemd_units_reject_bad_schedules(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        systemd_units(bad, tmp_path / "x", tmp_path / "c", tmp_path)


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


@needs_systemd_analyze
@pytest.mark.parametrize(
    "schedule",
    ["0 2 * * 0", "30 6 * * 1-5", "*/15 * * * *", "0 0 1 jan,jul *", "5 4 1-10/2 * *"],
)
def test_systemd_accepts_translated_calendars(schedule: str) -> None:
    done = subprocess.run(
        ["systemd-analyze", "calendar", cron_to_on_calendar(schedule)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@needs_systemd_analyze
def test_systemd_verifies_generated_units(tmp_path: Path) -> None:
    """Paths with spaces, quotes, % and $ need systemd's own escaping."""
    base = tmp_path / "odd $dir 100%"
    base.mkdir()
    exe = base / "sqlite 2 pg"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    service, timer = systemd_units("0 2 * * 0", exe, base / "c.yaml", base)
    (tmp_path / "sqlite2pg-test.service").write_text(service)
    (tmp_path / "sqlite2pg-test.timer").write_text(timer)
    done = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(tmp_path / "sqlite2pg-test.service"),
            str(tmp_path / "sqlite2pg-test.timer"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    assert done.returncode == 0, done.stderr
    assert "%%" in service
    assert "$$dir" in service.split("--config", 1)[1]  # arguments double $, the executable not


def test_systemd_units_reject_executables_systemd_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="systemd refuses"):
        systemd_units("0 2 * * 0", tmp_path / 'sqlite "2"', tmp_path / "c", tmp_path)
