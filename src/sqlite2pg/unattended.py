"""What an unattended run adds around a sync: a local run lock (beside the state database; the
target has its own advisory lock), retries of transient faults, structured logs with the run and
table in context, and notifications. The run itself is atomic, so a retry re-runs it
from the start with nothing half-done to clean up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .config import Config
from .errors import Sqlite2pgError
from .locking import RunLock
from .logs import log_context
from .model import TableResult
from .notify import NotifySettings, notify
from .pipeline import (
    Observer,
    QuietObserver,
    RunReport,
    SyncOptions,
    new_run_id,
    run_sync,
    state_path,
)
from .redact import redact_text
from .retry import RetrySettings, retrying

log = logging.getLogger("sqlite2pg.run")


class LoggingObserver:
    """Logs each table's progress with the table in context, and forwards to another observer."""

    def __init__(self, inner: Observer | None) -> None:
        self.inner = inner or QuietObserver()

    def table_started(self, table: str, total: int) -> None:
        with log_context(table=table, stage="copy"):
            log.info("table %s: %d rows to read", table, total)
        self.inner.table_started(table, total)

    def advance(self, table: str, rows: int) -> None:
        self.inner.advance(table, rows)

    def table_done(self, result: TableResult) -> None:
        with log_context(table=result.table, stage="copy"):
            log.info(
                "table %s: %d read, %d inserted, %d updated, %d deleted, %d rejected in %.2fs",
                result.table,
                result.read,
                result.inserted,
                result.updated,
                result.deleted,
                result.rejected,
                result.seconds,
            )
        self.inner.table_done(result)

    def message(self, text: str) -> None:
        log.info("%s", text)
        self.inner.message(text)


def retry_settings(cfg: Config) -> RetrySettings:
    r = cfg.retries
    return RetrySettings(attempts=r.attempts, initial_wait=r.initial_wait, max_wait=r.max_wait)


def notify_settings(cfg: Config) -> NotifySettings | None:
    n = cfg.notify
    if not (n.command or n.webhook):
        return None
    return NotifySettings(command=n.command, webhook=n.webhook, headers=n.headers, on=set(n.on))


def differences(report: dict[str, Any]) -> int:
    v = report.get("verification") or {}
    return sum(
        int(t.get("missing_count", 0))
        + int(t.get("extra_count", 0))
        + int(t.get("different_count", 0))
        for t in (v.get("tables") or {}).values()
    ) + len(v.get("schema_differences") or [])


def summary_of(report: RunReport) -> dict[str, Any]:
    d = report.as_dict()
    d["counts"] = {"rejected": report.rejected, "differences": differences(d)}
    return d


def run_unattended(
    cfg: Config,
    opts: SyncOptions,
    observer: Observer | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    secrets: list[str] | None = None,
) -> RunReport:
    """run_sync with retries, logs and notifications."""
    obs = LoggingObserver(observer)

    def attempt() -> RunReport:
        run_id = new_run_id()
        with log_context(run_id=run_id, stage="sync"):
            log.info("sync of %s started", opts.source)
            report = run_sync(cfg, _with_run_id(opts, run_id), obs)
            log.info("sync finished: %s in %.1fs", report.status, report.seconds)
            return report

    settings = notify_settings(cfg)
    lock_path = state_path(cfg, opts.state_path).with_suffix(".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with RunLock(lock_path, opts.run_id or "sync"):
            report = retrying(retry_settings(cfg), on_retry)(attempt)
    except Sqlite2pgError as exc:
        log.error("sync failed: %s", exc, extra={"file_only": True})
        if settings is not None:
            failed = {
                "status": "failed",
                "source": opts.source,
                "error": redact_text(str(exc), secrets or []),
                "counts": {"rejected": 0, "differences": 0},
            }
            for problem in notify(failed, settings):
                log.warning("notification failed: %s", problem)
        raise
    if settings is not None:
        for problem in notify(summary_of(report), settings):
            log.warning("notification failed: %s", problem)
    return report


def _with_run_id(opts: SyncOptions, run_id: str) -> SyncOptions:
    from dataclasses import replace

    return replace(opts, run_id=run_id)
