"""Scheduling text for unattended runs: cron expressions, crontab lines and systemd units.

Everything here is pure text generation except :func:`install_cron` and :func:`remove_cron`,
which read and rewrite the user's crontab through the ``crontab`` program (injectable, so
tests can point it at a script that stores the table in a file).

A crontab entry written by :func:`cron_line` ends with a marker comment
``# sqlite2pg:<absolute config path>``; installing again replaces the entry carrying the same
marker and removing deletes it, so both operations are idempotent and never touch other lines.

Example::

    expr = cron_expression(weekly="sun 02:00", daily=None, cron=None)      # "0 2 * * 0"
    line = cron_line(expr, Path(".venv/bin/sqlite2pg"), Path("sync.yaml"),
                     Path("."), Path("logs/cron.log"))
    install_cron(line, cron_marker(Path("sync.yaml")))
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "MARKER_PREFIX",
    "CrontabError",
    "cron_expression",
    "cron_line",
    "cron_marker",
    "cron_to_on_calendar",
    "install_cron",
    "remove_cron",
    "systemd_units",
]

MARKER_PREFIX = "# sqlite2pg:"

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SYSTEMD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_FULL_DAY_NAMES = {
    "sunday": "sun",
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
}

# (name, lowest, highest, symbolic names mapped to numbers)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAY_NAMES)}),
)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


class CrontabError(RuntimeError):
    """The ``crontab`` program failed (not installed, or it rejected the new table)."""


# --------------------------------------------------------------------------------------------
# expressions


def cron_expression(weekly: str | None, daily: str | None, cron: str | None) -> str:
    """Turn exactly one schedule form into a validated 5-field cron expression.

    * ``weekly="sun 02:00"`` -> ``"0 2 * * 0"`` (day names or ``0``-``7``, comma lists and
      ranges such as ``"mon-fri 06:30"`` are accepted, case-insensitive);
    * ``daily="02:00"`` -> ``"0 2 * * *"``;
    * ``cron="15 3 * * 1-5"`` is validated and returned normalised (single spaces); the
      macros ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``, ``@hourly`` are expanded.

    Raises :class:`ValueError` naming the bad part when the input is not a valid schedule or
    when not exactly one form is given.
    """
    given = [
        name for name, value in (("weekly", weekly), ("daily", daily), ("cron", cron)) if value
    ]
    if len(given) != 1:
        which = ", ".join(given) if given else "none"
        raise ValueError(f"give exactly one of weekly, daily or cron (got: {which})")
    if weekly:
        return _weekly(weekly)
    if daily:
        minute, hour = _parse_time(daily, "daily")
        return f"{minute} {hour} * * *"
    assert cron is not None
    return _validate_cron(cron)


def _parse_time(text: str, what: str) -> tuple[int, int]:
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"{what} schedule {text!r}: time must be HH:MM, e.g. 02:00")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise ValueError(f"{what} schedule {text!r}: {hour:02d}:{minute:02d} is not a time of day")
    return minute, hour


def _weekly(text: str) -> str:
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"weekly schedule {text!r}: expected 'DAY HH:MM', e.g. 'sun 02:00'")
    day_text, time_text = parts
    minute, hour = _parse_time(time_text, "weekly")
    day = day_text.lower()
    for full, short in _FULL_DAY_NAMES.items():
        day = re.sub(rf"\b{full}\b", short, day)
    try:
        days = _expand_field(day, 4)
    except ValueError as exc:
        raise ValueError(f"weekly schedule {text!r}: {exc}") from None
    # Numbers, not names: several crons reject lists and ranges of names.
    return f"{minute} {hour} * * {_ranges(sorted(days), str, '-')}"


def _validate_cron(text: str) -> str:
    expr = text.strip().lower()
    if expr in _MACROS:
        return _MACROS[expr]
    if expr.startswith("@"):
        raise ValueError(
            f"cron schedule {text!r}: unknown macro; use one of {', '.join(sorted(_MACROS))}"
        )
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron schedule {text!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}"
        )
    for index, field in enumerate(fields):
        try:
            _expand_field(field, index)
        except ValueError as exc:
            raise ValueError(f"cron schedule {text!r}: {exc}") from None
    return " ".join(fields)


def _field_value(token: str, index: int) -> int:
    name, low, high, names = _FIELDS[index]
    if token in names:
        return names[token]
    if not token.isdigit():
        raise ValueError(f"{name} {token!r} is not a number" + (" or a name" if names else ""))
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is outside {low}-{high}")
    return value


def _expand_field(field: str, index: int) -> set[int]:
    """All values a cron field matches (day of week 7 folded to 0); ValueError if invalid."""
    name, low, high, _ = _FIELDS[index]
    values: set[int] = set()
    if not field:
        raise ValueError(f"empty {name} field")
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name} step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _field_value(first, index), _field_value(last, index)
            if start > end:
                raise ValueError(f"{name} range {base!r} runs backwards")
        else:
            start = _field_value(base, index)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values.discard(7)
        values.add(0)
    return values


# --------------------------------------------------------------------------------------------
# crontab


def _absolute(path: Path) -> Path:
    """Absolute and normalised, without resolving symlinks (a venv's bin/python is a symlink)."""
    return Path(os.path.abspath(os.fspath(path)))


def _no_newline(path: Path, what: str) -> str:
    text = os.fspath(path)
    if "\n" in text or "\r" in text:
        raise ValueError(f"{what} path {text!r} contains a line break; cron cannot run it")
    return text


def _cron_escape(text: str) -> str:
    # cron turns an unescaped % into a newline (the rest becomes stdin).
    return text.replace("%", r"\%")


def cron_marker(config: Path) -> str:
    """The marker comment identifying the entry for ``config``: ``# sqlite2pg:/abs/config``.

    Returned exactly as it appears in the crontab (``%`` escaped), ready for
    :func:`install_cron` / :func:`remove_cron`.
    """
    return _cron_escape(MARKER_PREFIX + _no_newline(_absolute(config), "config"))


def cron_line(
    expr: str,
    executable: Path,
    config: Path,
    workdir: Path,
    log_file: Path,
    *,
    subcommand: str = "sync",
) -> str:
    """One crontab line running ``EXECUTABLE SUBCOMMAND --config CONFIG`` on schedule ``expr``.

    All paths are made absolute (cron starts jobs in ``$HOME`` with a minimal ``PATH``), the job
    changes to ``workdir`` first, appends stdout and stderr to ``log_file``, and the line ends
    with the :func:`cron_marker` for ``config``. ``expr`` is validated as a cron expression.
    The directory of ``log_file`` must exist when the job runs.

    >>> cron_line("0 2 * * 0", Path("/v/bin/sqlite2pg"), Path("/p/c.yaml"), Path("/p"),
    ...           Path("/p/cron.log"))
    '0 2 * * 0 cd /p && /v/bin/sqlite2pg sync --config /p/c.yaml >> /p/cron.log 2>&1 # sqlite2pg:/p/c.yaml'
    """  # noqa: E501
    schedule = cron_expression(None, None, expr)
    exe = _no_newline(_absolute(executable), "executable")
    cfg = _no_newline(_absolute(config), "config")
    wd = _no_newline(_absolute(workdir), "working directory")
    log = _no_newline(_absolute(log_file), "log file")
    command = (
        f"cd {shlex.quote(wd)} && {shlex.quote(exe)} {shlex.quote(subcommand)} "
        f"--config {shlex.quote(cfg)} >> {shlex.quote(log)} 2>&1"
    )
    return f"{schedule} {_cron_escape(command)} {cron_marker(Path(cfg))}"


def _crontab_argv(crontab_cmd: str | Sequence[str]) -> list[str]:
    return [crontab_cmd] if isinstance(crontab_cmd, str) else list(crontab_cmd)


def _read_crontab(crontab_cmd: str | Sequence[str]) -> list[str]:
    argv = [*_crontab_argv(crontab_cmd), "-l"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CrontabError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        if "no crontab" in done.stderr.lower():
            return []
        raise CrontabError(
            f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout.splitlines()


def _write_crontab(lines: list[str], crontab_cmd: str | Sequence[str]) -> None:
    argv = [*_crontab_argv(crontab_cmd), "-"]
    text = "".join(line + "\n" for line in lines)  # cron ignores a last line without newline
    try:
        done = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CrontabError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise CrontabError(
            f"{' '.join(argv)} rejected the new crontab (exit {done.returncode}): "
            f"{done.stderr.strip()}"
        )


def _is_marked(line: str, marker: str) -> bool:
    stripped = line.rstrip()
    return stripped == marker or stripped.endswith(" " + marker)


def install_cron(line: str, marker: str, crontab_cmd: str | Sequence[str] = "crontab") -> bool:
    """Install ``line`` in the user's crontab, replacing any entry that ends with ``marker``.

    Other entries are kept as they are. Returns ``True`` when the crontab was changed and
    ``False`` when exactly this entry was already installed. ``crontab_cmd`` is the program
    (or argv prefix, e.g. ``["crontab", "-u", "etl"]``) called with ``-l`` and ``-``.
    Raises :class:`CrontabError` when the program fails and :class:`ValueError` when ``line``
    does not carry ``marker`` or spans several lines.
    """
    if "\n" in line or "\r" in line:
        raise ValueError("a crontab entry must be a single line")
    if not _is_marked(line, marker):
        raise ValueError(f"the crontab entry does not end with its marker {marker!r}")
    current = _read_crontab(crontab_cmd)
    updated: list[str] = []
    placed = False
    for existing in current:
        if _is_marked(existing, marker):
            if not placed:
                updated.append(line)
                placed = True
            continue
        updated.append(existing)
    if not placed:
        updated.append(line)
    if updated == current:
        return False
    _write_crontab(updated, crontab_cmd)
    return True


def remove_cron(marker: str, crontab_cmd: str | Sequence[str] = "crontab") -> bool:
    """Remove every crontab entry ending with ``marker``; ``True`` if one was removed.

    A user without a crontab is not an error (returns ``False``).
    """
    current = _read_crontab(crontab_cmd)
    kept = [line for line in current if not _is_marked(line, marker)]
    if kept == current:
        return False
    _write_crontab(kept, crontab_cmd)
    return True


# --------------------------------------------------------------------------------------------
# systemd


def _ranges(values: list[int], fmt: Callable[[int], str], sep: str = "..") -> str:
    """Sorted values as a list where runs of three or more become ``a..b`` (or ``a-b``)."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{fmt(values[i])}{sep}{fmt(values[j])}")
        else:
            parts.extend(fmt(v) for v in values[i : j + 1])
        i = j + 1
    return ",".join(parts)


def cron_to_on_calendar(expr: str) -> str:
    """Translate a cron expression into a systemd ``OnCalendar=`` value.

    ``"0 2 * * 0"`` -> ``"Sun *-*-* 02:00:00"``. Raises :class:`ValueError` for an invalid
    expression, and for one restricting both day of month and day of week: cron runs such a
    job when *either* matches, systemd only when *both* do, so give an OnCalendar value instead.
    """
    fields = cron_expression(None, None, expr).split()
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        raise ValueError(
            f"cron schedule {expr!r} restricts both day of month and day of week; cron runs it "
            "when either matches, systemd cannot express that: write an OnCalendar value"
        )

    def render(index: int, fmt: Callable[[int], str]) -> str:
        _, low, high, _ = _FIELDS[index]
        values = _expand_field(fields[index], index)
        full = set(range(low, (6 if index == 4 else high) + 1))
        return "*" if values == full else _ranges(sorted(values), fmt)

    two_digits: Callable[[int], str] = "{:02d}".format
    date = f"*-{render(3, two_digits)}-{render(2, two_digits)}"
    clock = f"{render(1, two_digits)}:{render(0, two_digits)}:00"
    days = render(4, lambda day: _SYSTEMD_DAYS[day])
    return f"{date} {clock}" if days == "*" else f"{days} {date} {clock}"


_CALENDAR_SHORTHANDS = frozenset(
    {
        "minutely",
        "hourly",
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "annually",
        "quarterly",
        "semiannually",
    }
)
_DAY = (
    r"(?:mon(?:day)?|tue(?:sday)?|wed(?:nesday)?|thu(?:rsday)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?)"
)
_WEEKDAYS_RE = re.compile(rf"^{_DAY}(?:(?:\.\.|-){_DAY})?(?:,{_DAY}(?:(?:\.\.|-){_DAY})?)*$", re.I)
_DATE_RE = re.compile(r"^(?:[0-9*][0-9*.,/~]*-)?[0-9*][0-9*.,/~]*-[0-9*][0-9*.,/~]*$")
_CLOCK_RE = re.compile(r"^[0-9*][0-9*.,/]*:[0-9*][0-9*.,/]*(?::[0-9*][0-9*.,/]*)?$")
_ZONE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$")


def _check_on_calendar(text: str) -> str:
    """A light syntax check of an OnCalendar value (systemd has the last word)."""
    if text.lower() in _CALENDAR_SHORTHANDS:
        return text
    tokens = text.split()
    matchers = (_WEEKDAYS_RE, _DATE_RE, _CLOCK_RE)
    position = 0
    seen = 0
    for number, token in enumerate(tokens):
        for index in range(position, len(matchers)):
            if matchers[index].match(token):
                position = index + 1
                seen += 1
                break
        else:
            if number == len(tokens) - 1 and seen and _ZONE_RE.match(token):
                continue
            raise ValueError(
                f"schedule {text!r}: {token!r} is neither a cron expression nor part of an "
                "OnCalendar value like 'Sun *-*-* 02:00:00'"
            )
    if not seen:
        raise ValueError(f"schedule {text!r}: not a cron expression or an OnCalendar value")
    return text


def _looks_like_cron(schedule: str) -> bool:
    text = schedule.strip()
    if text.startswith("@"):
        return True
    return len(text.split()) == 5


def _systemd_escape(value: str) -> str:
    # Specifiers (%n, %h ...) are expanded in unit files; a literal % is written %%.
    return value.replace("%", "%%")


def _systemd_arg(arg: str, *, executable: bool = False) -> str:
    """Quote one ExecStart= word (systemd's own quoting rules, not the shell's).

    ``$`` is doubled in arguments (systemd expands ``$VAR`` there) but not in the executable.
    """
    escaped = _systemd_escape(arg) if executable else _systemd_escape(arg).replace("$", "$$")
    if escaped and re.fullmatch(r"[A-Za-z0-9_./:@+=,-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_units(
    schedule: str,
    executable: Path,
    config: Path,
    workdir: Path,
    *,
    subcommand: str = "sync",
) -> tuple[str, str]:
    """Text of a ``.service`` and a ``.timer`` unit running ``EXECUTABLE SUBCOMMAND --config``.

    ``schedule`` is a cron expression (translated with :func:`cron_to_on_calendar`) or an
    ``OnCalendar=`` value used as given (e.g. ``"Sun *-*-* 02:00:00"``). The timer has
    ``Persistent=true`` so a run missed while the machine was off happens at next boot. Save
    both under the same name (``sqlite2pg-sync.service`` / ``sqlite2pg-sync.timer``): a timer
    starts the service of its own name. Output goes to the journal.
    """
    text = schedule.strip()
    if not text or "\n" in text or "\r" in text:
        raise ValueError(f"schedule {schedule!r}: give a cron expression or an OnCalendar value")
    cron_like = _looks_like_cron(text)
    on_calendar = cron_to_on_calendar(text) if cron_like else _check_on_calendar(text)
    exe = _no_newline(_absolute(executable), "executable")
    cfg = _no_newline(_absolute(config), "config")
    wd = _no_newline(_absolute(workdir), "working directory")
    if re.search(r"[\"'\\\x00-\x1f\x7f]", exe):
        raise ValueError(
            f"executable path {exe!r} contains quotes, backslashes or control characters, "
            "which systemd refuses in an executable name; link it from a plain path"
        )
    exec_start = " ".join(
        [
            _systemd_arg(exe, executable=True),
            *(_systemd_arg(a) for a in (subcommand, "--config", cfg)),
        ]
    )
    description = _systemd_escape(f"sqlite2pg {subcommand} ({cfg})")
    service = (
        "[Unit]\n"
        f"Description={description}\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={_systemd_escape(wd)}\n"
        f"ExecStart={exec_start}\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=Schedule for {description}\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={_systemd_escape(on_calendar)}\n"
        "Persistent=true\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return service, timer
