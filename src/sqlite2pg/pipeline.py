"""The orchestrator: source snapshot -> plan -> create -> copy -> keys -> state -> report.

A full migration runs in ONE PostgreSQL transaction: whatever happens (an error, kill -9, a lost
connection), the target holds either the whole migration or nothing of it, and a re-run starts
clean. Each table is loaded inside its own savepoint so a table can be re-read in careful mode.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg

from . import schema as ddl
from . import syncstate
from .changes import initial_state, precompute, prepare_source
from .config import Config, VerifyLevel
from .errors import (
    EXIT_FAILED,
    EXIT_ISSUES,
    EXIT_OK,
    PlanError,
    RunFailed,
    Sqlite2pgError,
)
from .incremental import add_fks_touching, known_types, run_incremental, take_apply_lock
from .load import RejectSink
from .model import MigrationPlan, TablePlan, TableResult
from .plan import build_plan
from .source import open_source, read_catalog, snapshot
from .state import StateDB, now_iso
from .tableload import load_and_key
from .target import Target, resolve_target


class Observer(Protocol):
    """Receives progress; the CLI draws bars with it, the library default ignores it."""

    def table_started(self, table: str, total: int) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...

    def table_done(self, result: TableResult) -> None: ...

    def message(self, text: str) -> None: ...


class QuietObserver:
    def table_started(self, table: str, total: int) -> None:
        pass

    def advance(self, table: str, rows: int) -> None:
        pass

    def table_done(self, result: TableResult) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@dataclass
class RunReport:
    run_id: str
    command: str
    mode: str
    source: str
    target: str
    schema: str
    started_at: str
    status: str = "running"
    finished_at: str | None = None
    seconds: float = 0.0
    tables: dict[str, TableResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    error: str | None = None
    report_files: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(t.rejected for t in self.tables.values())

    @property
    def exit_code(self) -> int:
        if self.status == "failed":
            return EXIT_FAILED
        if self.status in ("rejected", "differences"):
            return EXIT_ISSUES
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "status": self.status,
            "mode": self.mode,
            "exit_code": self.exit_code,
            "source": self.source,
            "target": self.target,
            "schema": self.schema,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": round(self.seconds, 3),
            "totals": {
                k: sum(getattr(t, k) for t in self.tables.values())
                for k in ("read", "written", "inserted", "updated", "deleted", "rejected")
            },
            "tables": {name: t.as_dict() for name, t in self.tables.items()},
            "warnings": self.warnings,
            "skipped": self.skipped,
            "verification": self.verification,
            "error": self.error,
            "report_files": self.report_files,
        }


@dataclass
class SyncOptions:
    source: str
    target_url: str | None = None
    schema: str | None = None
    state_path: str | None = None
    full: bool = False
    tables: list[str] | None = None
    verify: VerifyLevel | None = None
    allow_mass_delete: bool = False
    run_id: str | None = None


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def state_path(cfg: Config, override: str | None) -> Path:
    if override:
        return Path(override)
    if cfg.state:
        return cfg.resolve(cfg.state, "sqlite2pg-state.db")
    return cfg.base_dir() / "sqlite2pg-state.db"


def run_sync(cfg: Config, opts: SyncOptions, observer: Observer | None = None) -> RunReport:
    """Full migration (empty target) or incremental sync (target synced before)."""
    obs = observer or QuietObserver()
    if opts.schema:
        cfg = cfg.model_copy(update={"schema_": opts.schema})
    run_id = opts.run_id or new_run_id()
    writes_source = any(t.strategy == "triggers" for t in cfg.tables.values())
    sconn = open_source(opts.source, recover=writes_source)
    catalog = read_catalog(sconn, str(opts.source))
    target = resolve_target(opts.target_url, cfg)
    pg = target.connect()
    report = RunReport(
        run_id=run_id,
        command="sync",
        mode="full",
        source=str(opts.source),
        target=target.display,
        schema=cfg.schema_,
        started_at=now_iso(),
    )
    report.skipped = [{"kind": s.kind, "name": s.name, "reason": s.reason} for s in catalog.skipped]
    state = StateDB(state_path(cfg, opts.state_path))
    state.start_run(run_id, "sync", str(opts.source), target.display, cfg.schema_)
    started = time.perf_counter()
    try:
        with pg.cursor() as cur:
            existing = syncstate.load(cur, cfg.schema_)
            if existing and not state.knows(target.display, cfg.schema_):
                restored = state.restore(
                    syncstate.load_runs(cur, cfg.schema_),
                    str(opts.source), target.display, cfg.schema_,
                )  # fmt: skip
                if restored:
                    report.warnings.append(
                        f"the local state database had no history of this target: {restored} "
                        "earlier run(s) restored from the target's sqlite2pg.runs (counts only, "
                        "not rejected rows' details)"
                    )
        pg.rollback()
        incremental = bool(existing) and not opts.full
        # strategy `triggers` (opt-in): change log installed before the snapshot is taken
        prepare_source(str(opts.source), catalog, cfg, report.warnings)
        with snapshot(sconn):
            # an incremental run keeps the existing column types instead of scanning every row
            plan = build_plan(
                sconn, catalog, cfg, known=known_types(existing) if incremental else None
            )
            report.warnings.extend(plan.warnings)
            if not plan.tables:
                report.warnings.append("the source has no tables to copy")
            if incremental:
                report.mode = "incremental"
                run_incremental(pg, sconn, plan, existing, cfg, opts, state, report, obs)
            else:
                report.mode = "full"
                full_load(
                    pg,
                    sconn,
                    plan,
                    cfg,
                    state.reject_sink(run_id),
                    report,
                    obs,
                    replace_existing=bool(existing),
                    only=_only(plan, opts),
                )
        report.status = "rejected" if report.rejected else "ok"
    except Sqlite2pgError as exc:
        pg.rollback()
        report.status = "failed"
        report.error = str(exc)
        _finish_failed(cfg, report, state, started)
        state.finish_run(run_id, "failed", report.as_dict(), report.tables, error=str(exc))
        raise
    except (psycopg.Error, sqlite3.Error, OSError) as exc:
        _rollback_quietly(pg)
        report.status = "failed"
        report.error = f"{type(exc).__name__}: {exc}"
        _finish_failed(cfg, report, state, started)
        state.finish_run(run_id, "failed", report.as_dict(), report.tables, error=report.error)
        raise RunFailed(
            f"sync failed, nothing was changed in the target: {str(exc).strip().splitlines()[0]}",
            "run again with --debug for details; transient faults are retried",
        ) from exc
    finally:
        report.seconds = time.perf_counter() - started
        report.finished_at = now_iso()
        sconn.close()
        pg.close()
    verify_level = opts.verify or cfg.verify
    if verify_level != "off":
        _verify_after(cfg, opts, target, report, verify_level)
    report.report_files = write_reports(cfg, report, state)
    state.finish_run(run_id, report.status, report.as_dict(), report.tables)
    state.close()
    return report


def report_dir(cfg: Config) -> Path:
    return cfg.resolve(cfg.report_dir, "reports")


def write_reports(cfg: Config, report: RunReport, state: StateDB) -> list[str]:
    """The run's JSON report (stable keys) and its HTML page, in the report directory."""
    from .report import write_run_report

    paths = write_run_report(
        report.as_dict(),
        folder=report_dir(cfg),
        history=state.runs(limit=100),
        rejects=state.rejects(report.run_id),
    )
    report.report_files = [str(p) for p in paths]
    return report.report_files


def _finish_failed(cfg: Config, report: RunReport, state: StateDB, started: float) -> None:
    report.seconds = time.perf_counter() - started
    report.finished_at = now_iso()
    _write_failed_report(cfg, report, state)


def _write_failed_report(cfg: Config, report: RunReport, state: StateDB) -> None:
    """A failed run gets its page too; writing it must never hide the run's own error."""
    with contextlib.suppress(OSError, ValueError, sqlite3.Error):
        write_reports(cfg, report, state)


def _only(plan: MigrationPlan, opts: SyncOptions) -> set[str] | None:
    """`sync --full --tables T1,T2`: the tables to reload (None: all)."""
    if not opts.tables:
        return None
    names = {t.source.name for t in plan.tables}
    unknown = [n for n in opts.tables if n not in names]
    if unknown:
        raise PlanError(
            f"--tables names {', '.join(map(repr, unknown))}, not a table this sync copies",
            f"source tables: {', '.join(sorted(names)) or '(none)'}",
        )
    return set(opts.tables)


def _rollback_quietly(pg: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        pg.rollback()


def _verify_after(
    cfg: Config, opts: SyncOptions, target: Target, report: RunReport, level: VerifyLevel
) -> None:
    try:
        from .verify import verify_tables
    except ImportError:
        report.warnings.append("verification is not available in this build")
        return
    result = verify_tables(cfg, opts.source, target, level=level, tables=opts.tables)
    report.verification = result.as_dict()
    if not result.identical and report.status == "ok":
        report.status = "differences"


def check_conflicts(cur: psycopg.Cursor[Any], plan: MigrationPlan) -> None:
    """Refuse to write into tables sqlite2pg did not create."""
    cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (plan.schema,),
    )
    present = {r[0] for r in cur.fetchall()}
    clash = sorted(present & ({t.name for t in plan.tables} | {v.name for v in plan.views}))
    if clash:
        raise PlanError(
            f"schema {plan.schema!r} already has table(s) {', '.join(clash)} that sqlite2pg "
            "did not create",
            "migrate into an empty schema (--schema NAME) or drop those tables first",
        )


def full_load(
    pg: psycopg.Connection[Any],
    sconn: sqlite3.Connection,
    plan: MigrationPlan,
    cfg: Config,
    sink: RejectSink,
    report: RunReport,
    obs: Observer,
    *,
    replace_existing: bool = False,
    only: set[str] | None = None,
) -> None:
    """Create and load every table, then keys, indexes, foreign keys, views and the sync state,
    all in one transaction."""
    with pg.cursor() as cur:
        take_apply_lock(cur, plan.schema)
        if replace_existing:
            drop_synced(cur, plan, only)
        else:
            check_conflicts(cur, plan)
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        nocase = ddl.prepare_schema(cur, plan, report.warnings)
        chosen = [t for t in plan.tables if only is None or t.source.name in only]
        # the hash strategy's fingerprints: the larger tables' by a helper process from now on
        with contextlib.closing(precompute(sconn, chosen)) as pre:
            created = load_and_key(cur, sconn, chosen, plan.schema, cfg, sink, report, obs, nocase)
            final = MigrationPlan(**{**plan.__dict__, "tables": tuple(created)})
            # the other tables' are read from SQLite while PostgreSQL adds the foreign keys
            pre.start(created)
            try:
                if only is None:
                    ddl.add_foreign_keys(cur, final, report.tables, report.warnings)
                else:  # also the foreign keys of other tables that refer to the reloaded ones
                    add_fks_touching(cur, plan, created, report)
                ddl.create_views(cur, final, report.warnings)
                syncstate.ensure(cur)
            finally:
                pre.join()  # the SQLite connection is ours again
            for t in created:
                # what the table's change-detection strategy needs for the first incremental run
                hw = initial_state(
                    cur,
                    sconn,
                    t,
                    plan.schema,
                    cfg,
                    plan.source_path,
                    report.tables[t.source.name].rejected,
                    pre,
                )
                syncstate.save_table(cur, plan.schema, t, report.run_id, hw)
        status = "rejected" if report.rejected else "ok"
        syncstate.save_run(
            cur,
            plan.schema,
            report.run_id,
            "sync",
            "full",
            status,
            report.started_at,
            {"tables": {k: v.as_dict() for k, v in report.tables.items()}},
        )
    pg.commit()


def drop_synced(cur: psycopg.Cursor[Any], plan: MigrationPlan, only: set[str] | None) -> None:
    """Before a deliberate full reload: drop the tables (and views) sqlite2pg made earlier."""
    existing = syncstate.load(cur, plan.schema)
    for v in plan.views:
        cur.execute(f"DROP VIEW IF EXISTS {ddl.qname(plan.schema, v.name)}")
    for name, synced in existing.items():
        if only is None or name in only:
            cur.execute(
                f"DROP TABLE IF EXISTS {ddl.qname(plan.schema, synced.target_table)} CASCADE"
            )
            syncstate.forget_table(cur, plan.schema, name)


def high_water_of(sconn: sqlite3.Connection, t: TablePlan) -> str | None:
    """The strategy's high-water mark as of this snapshot (timestamp/append strategies)."""
    if t.strategy not in ("timestamp", "append") or not t.strategy_column:
        return None
    from .source import qi

    row = sconn.execute(f"SELECT max({qi(t.strategy_column)}) FROM {qi(t.source.name)}").fetchone()
    return None if row is None or row[0] is None else str(row[0])
