"""Logging for unattended runs: JSON lines in a rotating file, readable lines on stderr.

Every record carries the run id, table and stage of the code that logged it, taken from a
context set with :func:`log_context` (a :mod:`contextvars` context, so it follows the code,
including asyncio tasks; worker threads need ``contextvars.copy_context().run``)::

    setup_logging(Path("logs/sqlite2pg.jsonl"), secrets=[password])
    log = logging.getLogger("sqlite2pg.load")
    with log_context(run_id="20240505T020000-3f2a", stage="copy"):
        with log_context(table="users"):
            log.info("copied %d rows", 1000)

writes to the file::

    {"ts": "2024-05-05T02:00:01.234Z", "level": "INFO", "logger": "sqlite2pg.load",
     "msg": "copied 1000 rows", "run_id": "20240505T020000-3f2a", "table": "users",
     "stage": "copy"}

Values passed with ``extra=`` are added as further keys; an exception adds ``exc``. Every
handler redacts secrets (:class:`sqlite2pg.redact.RedactingFilter`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlite2pg.redact import RedactingFilter

__all__ = [
    "CONTEXT_FIELDS",
    "LOGGER_NAME",
    "ContextFilter",
    "JsonFormatter",
    "add_secrets",
    "current_context",
    "log_context",
    "setup_logging",
]

LOGGER_NAME = "sqlite2pg"
CONTEXT_FIELDS = ("run_id", "table", "stage")

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "sqlite2pg_log_context", default=MappingProxyType({})
)
_OURS = "_sqlite2pg_handler"
_redactor: RedactingFilter | None = None

_STANDARD_RECORD_ATTRS = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName", *CONTEXT_FIELDS}


# --------------------------------------------------------------------------------------------
# context


@contextmanager
def log_context(
    *, run_id: str | None = None, table: str | None = None, stage: str | None = None
) -> Iterator[None]:
    """Set run id / table / stage for records logged inside the block.

    Only the values given change; the others stay as the enclosing context set them, and
    everything is restored on exit.
    """
    updates = {
        key: value
        for key, value in (("run_id", run_id), ("table", table), ("stage", stage))
        if value is not None
    }
    token = _context.set(MappingProxyType({**_context.get(), **updates}))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str | None]:
    """The run id, table and stage in effect here (``None`` where unset)."""
    values = _context.get()
    return {key: values.get(key) for key in CONTEXT_FIELDS}


class ContextFilter(logging.Filter):
    """Handler filter setting ``record.run_id``, ``.table`` and ``.stage`` from the context.

    A value passed explicitly with ``extra=`` wins over the context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_context().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


# --------------------------------------------------------------------------------------------
# formatters


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO-8601 UTC), level, logger, msg, run_id, table, stage,
    then any ``extra=`` fields and ``exc`` / ``stack`` when present."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=timezone.utc)
        line: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            line[key] = getattr(record, key, None)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_RECORD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class _ConsoleFormatter(logging.Formatter):
    """``02:00:01 WARNING [users/copy] message`` for people reading a terminal or cron mail."""

    def __init__(self, *, with_time: bool, with_level: bool) -> None:
        super().__init__()
        self._with_time = with_time
        self._with_level = with_level

    def format(self, record: logging.LogRecord) -> str:
        where = "/".join(
            str(value)
            for value in (getattr(record, "table", None), getattr(record, "stage", None))
            if value
        )
        parts: list[str] = []
        if self._with_time:
            parts.append(self.formatTime(record, "%Y-%m-%d %H:%M:%S"))
        if self._with_level:
            parts.append(f"{record.levelname:<7}")
        if where:
            parts.append(f"[{where}]")
        parts.append(record.getMessage())
        text = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        return text


# --------------------------------------------------------------------------------------------
# setup


def _level(name: str) -> int:
    value = logging.getLevelName(name.strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {name!r}; use DEBUG, INFO, WARNING or ERROR")
    return value


def _not_file_only(record: logging.LogRecord) -> bool:
    """Records logged with ``extra={"file_only": True}`` (a failure the CLI reports in its own
    one-line error) go to the log file, not to the console a second time."""
    return not getattr(record, "file_only", False)


def _console_handler(level: int, rich: bool | None) -> logging.Handler:
    handler = _console_handler_of(level, rich)
    handler.addFilter(_not_file_only)
    return handler


def _console_handler_of(level: int, rich: bool | None) -> logging.Handler:
    use_rich = sys.stderr.isatty() if rich is None else rich
    if use_rich:
        try:
            from rich.console import Console
            from rich.logging import RichHandler
        except ImportError:  # rich is a dependency, but the console must work without it
            use_rich = False
        else:
            handler: logging.Handler = RichHandler(
                console=Console(stderr=True),
                show_path=False,
                rich_tracebacks=False,
                markup=False,
            )
            # rich prints time and level in its own columns
            handler.setFormatter(_ConsoleFormatter(with_time=False, with_level=False))
            handler.setLevel(level)
            return handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ConsoleFormatter(with_time=True, with_level=True))
    handler.setLevel(level)
    return handler


def setup_logging(
    log_file: Path | None,
    *,
    level: str = "INFO",
    console: bool = True,
    quiet: bool = False,
    verbose: bool = False,
    max_bytes: int = 10_000_000,
    backups: int = 5,
    secrets: Iterable[str] = (),
    rich: bool | None = None,
) -> None:
    """Configure the ``sqlite2pg`` logger; calling it again replaces the earlier setup.

    * ``log_file``: JSON lines, rotated at ``max_bytes`` keeping ``backups`` old files; its
      directory is created. ``None`` for no file.
    * ``console``: readable lines on stderr (rich when ``rich`` is true, or by default when
      stderr is a terminal). ``quiet`` shows only warnings and errors there.
    * ``level`` applies to both; ``verbose`` lowers both to DEBUG.
    * ``secrets``: values never to be written (more with :func:`add_secrets`); passwords in
      URLs and ``password=`` pairs are hidden anyway.

    Raises :class:`ValueError` for an unknown level or ``quiet`` together with ``verbose``.
    Handlers attached to the ``sqlite2pg`` logger by anyone else are left alone, and records
    still propagate to the root logger.
    """
    global _redactor
    if quiet and verbose:
        raise ValueError("quiet and verbose cannot be used together")
    base = logging.DEBUG if verbose else _level(level)
    console_level = max(base, logging.WARNING) if quiet else base

    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if getattr(h, _OURS, False)]:
        logger.removeHandler(old)
        old.close()

    redactor = RedactingFilter(secrets)
    if _redactor is not None:
        redactor.add(*_redactor.secrets)  # secrets learnt earlier stay secret
    _redactor = redactor
    context = ContextFilter()

    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        file_handler.setFormatter(JsonFormatter())
        file_handler.setLevel(base)
        handlers.append(file_handler)
    if console:
        handlers.append(_console_handler(console_level, rich))

    for handler in handlers:
        handler.addFilter(context)
        handler.addFilter(redactor)
        setattr(handler, _OURS, True)
        logger.addHandler(handler)
    logger.setLevel(min((h.level for h in handlers), default=base))


def add_secrets(*secrets: str) -> None:
    """Hide these values too from now on (e.g. an IAM token generated during the run).

    Takes effect on the handlers installed by :func:`setup_logging` and is kept across later
    calls to it.
    """
    global _redactor
    if _redactor is None:
        _redactor = RedactingFilter()
    _redactor.add(*secrets)
