"""The public API; each function mirrors one CLI command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, VerifyLevel, load_config
from .errors import InputError
from .model import MigrationPlan, Rejection
from .pipeline import Observer, RunReport, SyncOptions, report_dir, run_sync, state_path
from .plan import build_plan
from .report import latest_report, load_report, render_html
from .source import open_source, read_catalog, snapshot
from .state import RunRecord, StateDB
from .target import EMBEDDED_DIR, start_embedded, stop_embedded
from .verify import VerifyResult


def load(config: str | Path | Config | None) -> Config:
    if isinstance(config, Config):
        return config
    if config is None:
        return Config()
    return load_config(config)


def _source(source: str | Path | None, cfg: Config) -> str:
    if source:
        return str(source)
    if cfg.source:
        return str(cfg.resolve(cfg.source, cfg.source))
    raise InputError("no source given", "pass --source FILE or set `source:` in the config")


def sync(
    source: str | Path | None = None,
    target: str | None = None,
    *,
    config: str | Path | Config | None = None,
    schema: str | None = None,
    state: str | None = None,
    full: bool = False,
    tables: Sequence[str] | None = None,
    verify: VerifyLevel | None = None,
    allow_mass_delete: bool = False,
    observer: Observer | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> RunReport:
    """Migrate (first run) or incrementally sync ``source`` into ``target``.

    Transient faults (a lost connection, a failover, a busy SQLite file) are retried as the
    config's ``retries`` say; each attempt is a complete, atomic run."""
    from .unattended import run_unattended

    cfg = load(config)
    opts = SyncOptions(
        source=_source(source, cfg),
        target_url=target,
        schema=schema,
        state_path=state,
        full=full,
        tables=list(tables) if tables else None,
        verify=verify,
        allow_mass_delete=allow_mass_delete,
    )
    return run_unattended(cfg, opts, observer, on_retry)


@dataclass
class VerifyRun:
    """A verification and the report it wrote."""

    result: VerifyResult
    run_id: str
    report_files: list[str]


def verify(
    source: str | Path | None = None,
    target: str | None = None,
    *,
    config: str | Path | Config | None = None,
    schema: str | None = None,
    state: str | None = None,
    tables: Sequence[str] | None = None,
    level: VerifyLevel = "checksum",
) -> VerifyRun:
    """Compare the source with the target: schema, then the data at ``level``.

    Rows the last successful sync rejected are expected to be absent, not reported as missing.
    The run is recorded in the history and writes a report like a sync."""
    from .pipeline import new_run_id, write_reports
    from .state import now_iso
    from .target import resolve_target
    from .verify import rejected_keys_from, verify_tables

    cfg = load(config)
    if schema:
        cfg = cfg.model_copy(update={"schema_": schema})
    src = _source(source, cfg)
    tgt = resolve_target(target, cfg)
    db = StateDB(state_path(cfg, state))
    try:
        runs = [r for r in db.runs(limit=50) if r.command == "sync" and r.status != "failed"]
        keys = rejected_keys_from(db.rejects(runs[0].run_id)) if runs else None
        run_id = new_run_id()
        report = RunReport(run_id, "verify", level, src, tgt.display, cfg.schema_, now_iso())
        db.start_run(run_id, "verify", src, tgt.display, cfg.schema_)
        try:
            result = verify_tables(
                cfg,
                src,
                tgt,
                level=level,
                tables=list(tables) if tables else None,
                rejected_keys=keys,
            )
        except Exception as exc:
            db.finish_run(run_id, "failed", None, error=str(exc))
            raise
        report.verification = result.as_dict()
        report.status = "ok" if result.identical else "differences"
        report.seconds = result.seconds
        report.finished_at = now_iso()
        report.warnings = list(result.warnings)
        files = write_reports(cfg, report, db)
        db.finish_run(run_id, report.status, report.as_dict())
        return VerifyRun(result, run_id, files)
    finally:
        db.close()


def plan(
    source: str | Path | None = None,
    *,
    config: str | Path | Config | None = None,
    schema: str | None = None,
) -> MigrationPlan:
    """What a sync would create, without writing anything anywhere."""
    cfg = load(config)
    if schema:
        cfg = cfg.model_copy(update={"schema_": schema})
    path = _source(source, cfg)
    conn = open_source(path)
    try:
        catalog = read_catalog(conn, path)
        with snapshot(conn):
            return build_plan(conn, catalog, cfg)
    finally:
        conn.close()


def plan_as_dict(p: MigrationPlan) -> dict[str, Any]:
    from .schema import plan_ddl

    return {
        "source": p.source_path,
        "schema": p.schema,
        "tables": {
            t.source.name: {
                "target": t.name,
                "rows": t.row_count,
                "strategy": t.strategy,
                "primary_key": list(t.primary_key),
                "columns": [
                    {
                        "source": c.source.name,
                        "declared": c.source.declared_type,
                        "target": c.name,
                        "type": c.type.sql,
                        "reason": c.reason,
                        "identity": c.identity,
                        "not_null": c.notnull,
                        "default": c.default_sql,
                    }
                    for c in t.columns
                ],
            }
            for t in p.tables
        },
        "skipped": [s.__dict__ for s in p.skipped],
        "warnings": list(p.warnings),
        "ddl": plan_ddl(p),
    }


def rejects(
    *,
    config: str | Path | Config | None = None,
    state: str | None = None,
    run_id: str | None = None,
    table: str | None = None,
    limit: int | None = 100,
) -> tuple[str | None, list[Rejection]]:
    cfg = load(config)
    path = state_path(cfg, state)
    if not path.exists():
        raise InputError(f"no state database at {path}", "run a sync first, or pass --state")
    db = StateDB(path)
    try:
        if run_id is None:
            runs = [r for r in db.runs(limit=1) if r.command == "sync"]
            if not runs:
                return None, []
            run_id = runs[0].run_id
        return run_id, list(db.rejects(run_id, table, limit))
    finally:
        db.close()


def server_url(*, start: bool = True, workdir: Path | None = None) -> str:
    return start_embedded((workdir or Path.cwd()) / EMBEDDED_DIR)


def server_stop(workdir: Path | None = None) -> bool:
    return stop_embedded((workdir or Path.cwd()) / EMBEDDED_DIR)


def sample(
    out: Path,
    *,
    scale: float = 1.0,
    seed: int = 0,
    updated_at: bool = False,
    overwrite: bool = False,
) -> dict[str, int]:
    from .sample import write_sample

    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists", "choose another name or pass --overwrite")
    if not scale > 0 or scale == float("inf"):
        raise InputError(f"--scale must be a positive number, not {scale}", "e.g. --scale 10")
    return write_sample(out, scale=scale, seed=seed, updated_at=updated_at, overwrite=overwrite)


def init_config(source: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write a commented config for ``source`` (every table, its mapping and strategy)."""
    from .init import render_config

    out_path = Path(out)
    if out_path.exists() and not overwrite:
        raise InputError(f"{out_path} already exists", "choose another -o path or pass --force")
    p = plan(source)
    src = Path(source).resolve()
    try:
        rel = src.relative_to(out_path.resolve().parent)
        shown = rel
    except ValueError:
        shown = src
    out_path.write_text(render_config(p, shown), encoding="utf-8")
    return out_path


@dataclass
class DemoResult:
    database: Path
    url: str
    full: RunReport
    changes: dict[str, int]
    incremental: RunReport


def demo(workdir: Path | None = None, observer: Observer | None = None) -> DemoResult:
    """Sample database -> embedded PostgreSQL, then application-like changes and a second sync."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from .sample import apply_changes, write_sample

    base = (workdir or Path.cwd()).resolve()
    folder = base / ".sqlite2pg" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "demo.db"
    write_sample(db, scale=1.0, seed=42, overwrite=True)
    admin = start_embedded(base / EMBEDDED_DIR)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS sqlite2pg_demo WITH (FORCE)")
        conn.execute("CREATE DATABASE sqlite2pg_demo")
    params = conninfo_to_dict(admin)
    params["dbname"] = "sqlite2pg_demo"
    url = make_conninfo("", **params)
    cfg = Config(state=str(folder / "state.db"), report_dir=str(base / "reports"))
    full = run_sync(cfg, SyncOptions(source=str(db), target_url=url), observer)
    counts = apply_changes(db, 0.02, seed=7)
    incremental = run_sync(cfg, SyncOptions(source=str(db), target_url=url), observer)
    changed = {
        "inserted": counts.total_inserted,
        "updated": counts.total_updated,
        "deleted": counts.total_deleted,
    }
    return DemoResult(db, url, full, changed, incremental)


def report_path(run_id: str | None = None, *, config: str | Path | Config | None = None) -> Path:
    """The HTML page of a run's report (default: the latest run) in the report directory."""
    cfg = load(config)
    folder = report_dir(cfg)
    path = latest_report(folder, run_id)
    if path is None:
        what = f"for run {run_id} " if run_id else ""
        raise InputError(
            f"no report {what}in {folder}",
            "run `sqlite2pg sync` first, or pass -c with the config whose report_dir holds it",
        )
    if path.suffix == ".json":  # a run from before HTML pages: draw its page now
        page = path.with_suffix(".html")
        page.write_text(render_html(load_report(path)), encoding="utf-8")
        path = page
    return path


def history(
    *, config: str | Path | Config | None = None, state: str | None = None, limit: int = 20
) -> list[RunRecord]:
    """Past runs, newest first, from the local state database."""
    cfg = load(config)
    path = state_path(cfg, state)
    if not path.exists():
        raise InputError(f"no state database at {path}", "run a sync first, or pass --state")
    db = StateDB(path)
    try:
        return db.runs(limit=limit)
    finally:
        db.close()


@dataclass(frozen=True)
class Schedule:
    cron_line: str
    marker: str
    service: str | None
    timer: str | None
    changed: bool | None  # after --install/--remove: whether the crontab changed


def schedule(
    config: str | Path,
    *,
    weekly: str | None = None,
    daily: str | None = None,
    cron: str | None = None,
    install: bool = False,
    remove: bool = False,
    systemd: bool = False,
    crontab_cmd: str = "crontab",
) -> Schedule:
    """The cron entry (and systemd units) that run `sqlite2pg sync -c CONFIG` on a schedule."""
    import sys

    from . import schedule as sched

    cfg_path = Path(config)
    cfg = load_config(cfg_path)  # a schedule for a config that does not load would fail weekly
    if sum(x is not None for x in (weekly, daily, cron)) != 1 and not remove:
        raise InputError(
            "give exactly one of --weekly, --daily or --cron", 'e.g. --weekly "sun 02:00"'
        )
    exe = Path(sys.executable).parent / "sqlite2pg"
    if not exe.exists():
        exe = Path(sys.argv[0])
    workdir = cfg.base_dir()
    log_file = cfg.resolve(cfg.log.file, "sqlite2pg-cron.log")
    marker = sched.cron_marker(cfg_path)
    try:
        if remove:
            return Schedule("", marker, None, None, sched.remove_cron(marker, crontab_cmd))
        expr = sched.cron_expression(weekly, daily, cron)
        line = sched.cron_line(expr, exe, cfg_path, workdir, log_file)
        service = timer = None
        if systemd:
            service, timer = sched.systemd_units(expr, exe, cfg_path, workdir)
        changed = sched.install_cron(line, marker, crontab_cmd) if install else None
    except ValueError as exc:
        raise InputError(
            f"bad schedule: {exc}", 'e.g. --weekly "sun 02:00" or --cron "0 2 * * 0"'
        ) from None
    except sched.CrontabError as exc:
        raise InputError(
            f"cannot update the crontab: {exc}", "is cron installed for this user?"
        ) from None
    return Schedule(line, marker, service, timer, changed)


@dataclass
class Status:
    healthy: bool
    problems: list[str]
    last_run: RunRecord | None
    tables: list[dict[str, Any]]


def status(
    *,
    config: str | Path | Config | None = None,
    state: str | None = None,
    target: str | None = None,
    max_age_hours: float | None = None,
) -> Status:
    """Health for monitoring: the last sync's outcome and age, and each table's sync state."""
    from datetime import datetime, timezone

    from . import syncstate
    from .target import resolve_target

    cfg = load(config)
    problems: list[str] = []
    path = state_path(cfg, state)
    tables: list[dict[str, Any]] = []
    if target or cfg.target.url or cfg.target.host or cfg.source:
        resolved = resolve_target(target, cfg)
        conn = resolved.connect()
        try:
            with conn.cursor() as cur:
                for t in syncstate.load(cur, cfg.schema_).values():
                    tables.append(
                        {
                            "table": t.source_table,
                            "target": t.target_table,
                            "strategy": t.strategy,
                            "high_water": t.high_water,
                            "run_id": t.run_id,
                        }
                    )
                if tables:  # a lost local history is rebuilt from the target's
                    db = StateDB(path)
                    try:
                        if not db.knows(resolved.display, cfg.schema_):
                            db.restore(
                                syncstate.load_runs(cur, cfg.schema_),
                                str(cfg.source or ""), resolved.display, cfg.schema_,
                            )  # fmt: skip
                    finally:
                        db.close()
        finally:
            conn.close()
    last: RunRecord | None = None
    if path.exists():
        db = StateDB(path)
        try:
            last = next((r for r in db.runs(limit=50) if r.command == "sync"), None)
        finally:
            db.close()
    if last is None:
        problems.append("no sync has run yet")
    else:
        if last.status == "failed":
            problems.append(f"the last sync ({last.run_id}) failed: {last.error}")
        elif last.status in ("rejected", "differences"):
            problems.append(f"the last sync ({last.run_id}) finished with {last.status}")
        limit = max_age_hours or cfg.max_age_hours
        if limit is not None:
            started = datetime.fromisoformat(last.started_at)
            age = (datetime.now(timezone.utc) - started).total_seconds() / 3600
            if age > limit:
                problems.append(f"the last sync is {age:.1f} hours old (limit {limit:g})")
    return Status(not problems, problems, last, tables)


__all__ = [
    "DemoResult",
    "Schedule",
    "Status",
    "VerifyRun",
    "demo",
    "history",
    "init_config",
    "plan",
    "rejects",
    "report_path",
    "sample",
    "schedule",
    "server_stop",
    "server_url",
    "status",
    "sync",
    "verify",
]
