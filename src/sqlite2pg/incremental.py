"""Incremental sync: apply only what changed since the last sync, in one transaction.

The order of a run (all inside the source snapshot opened by the pipeline and ONE PostgreSQL
transaction holding an advisory lock):

1. **drift**: compare the schema recorded at the last sync with the source now; what a sync
   cannot apply by itself stops the run before anything is written (:class:`DriftError`).
2. **detect** per table with its strategy (:mod:`changes`), and **stage**: the changed rows are
   COPied through the same converters as the full load into temporary tables, the keys to delete
   into others. Nothing in the user's tables has been touched yet.
3. **guard**: a table about to lose more than ``delete_guard`` of its rows stops the run.
4. **apply**, foreign keys deferred: new columns, deletes, upserts (``INSERT .. ON CONFLICT DO
   UPDATE .. WHERE row IS DISTINCT FROM``: an identical row is not written), identity sequences,
   new tables, then the sync state, and one COMMIT.
5. After the commit only: trim the source's change log (``triggers``).

A kill -9 or a lost connection anywhere before the COMMIT leaves the target and its sync state
exactly as the last successful run left them; the next run simply does the work again.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pgerr

from . import schema as ddl
from . import syncstate
from .changes import (
    CompareStrategy,
    Context,
    Detected,
    Key,
    ahead_queries,
    ensure_state,
    fingerprint_helper,
    pk_target,
    strategy_for,
    to_target_keys,
)
from .config import Config
from .convert import INT_RANGES
from .errors import DriftError, MassDeleteError, Sqlite2pgError
from .fingerprints import Helper
from .load import CarefulModeNeeded, RejectSink, copy_rows
from .model import ColumnProfile, MigrationPlan, Rejection, TablePlan, TableResult
from .prefetch import Prefetch
from .source import qi as quote_sqlite
from .sqlite_sql import quote_ident as qi
from .syncstate import SyncedTable, column_signature
from .typemap import profile_query

if TYPE_CHECKING:
    from .pipeline import Observer, RunReport, SyncOptions
    from .state import StateDB

Cursor = psycopg.Cursor[Any]


# --------------------------------------------------------------------------- locking


def apply_lock_key(schema: str) -> str:
    """Held for the whole write transaction of a run (full or incremental) into ``schema``."""
    return f"sqlite2pg:{schema}:apply"


def take_apply_lock(cur: Cursor, schema: str) -> None:
    """Transaction-level advisory lock: released by COMMIT, ROLLBACK, or the session dying
    (kill -9), so it never outlives its run. A second run exits instead of interleaving."""
    from .locking import LockHeld, advisory_lock_id

    key = apply_lock_key(schema)
    cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (advisory_lock_id(key),))
    row = cur.fetchone()
    if not row or not row[0]:
        raise LockHeld(f"{key!r} in the target database", None, None)


# --------------------------------------------------------------------------- drift


@dataclass
class Drift:
    new_tables: list[TablePlan] = field(default_factory=list)
    new_columns: dict[str, list[str]] = field(default_factory=dict)  # source table -> columns
    unsynced: list[str] = field(default_factory=list)  # synced before, excluded by config now


def check_drift(
    sconn: sqlite3.Connection, plan: MigrationPlan, existing: dict[str, SyncedTable]
) -> Drift:
    """What changed in the schema since the last sync; raises for what a sync cannot apply."""
    drift = Drift()
    problems: list[str] = []
    fixes: list[str] = []
    by_name = {t.source.name: t for t in plan.tables}
    gone: list[str] = []
    for name, synced in existing.items():
        t = by_name.get(name)
        if t is None:
            row = sconn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
            if row is None:
                gone.append(name)
            else:
                drift.unsynced.append(name)
            continue
        if synced.target_table != t.name:
            problems.append(
                f"table {name!r} would now be named {t.name!r} in PostgreSQL "
                f"(was {synced.target_table!r})"
            )
            fixes.append(name)
            continue
        old = {c["source"]: c for c in synced.columns}
        new = {c["source"]: c for c in column_signature(t)}
        for col, c in old.items():
            if col not in new:
                problems.append(f"column {name}.{col} was dropped or renamed in the source")
                fixes.append(name)
                continue
            n = new[col]
            if (c.get("declared") or "").upper() != (n.get("declared") or "").upper():
                problems.append(
                    f"column {name}.{col} changed its declared type from {c.get('declared')!r} "
                    f"to {n.get('declared')!r}"
                )
                fixes.append(name)
            elif c.get("type") != n.get("type"):
                problems.append(
                    f"column {name}.{col} would now be {n.get('type')} in PostgreSQL "
                    f"(is {c.get('type')})"
                )
                fixes.append(name)
            elif c.get("target") != n.get("target"):
                problems.append(
                    f"column {name}.{col} would now be named {n.get('target')!r} "
                    f"(is {c.get('target')!r})"
                )
                fixes.append(name)
        added = [col for col in new if col not in old]
        if added:
            drift.new_columns[name] = added
    drift.new_tables = [t for t in plan.tables if t.source.name not in existing]
    for name in gone:
        old_cols = [c["source"] for c in existing[name].columns]
        twin = next(
            (
                t.source.name
                for t in drift.new_tables
                if [c.source.name for c in t.columns] == old_cols
            ),
            None,
        )
        if twin:
            problems.append(
                f"table {name!r} is no longer in the source; it looks renamed to {twin!r}"
            )
        else:
            problems.append(f"table {name!r} was synced before but the source no longer has it")
    if problems:
        hint_tables = ",".join(sorted(set(fixes)))
        hint = (
            f"to reload the changed tables from the source: sqlite2pg sync --full --tables "
            f"{hint_tables}"
            if hint_tables
            else ""
        )
        if gone:
            hint += ("; " if hint else "") + (
                "for a dropped or renamed table: drop it in PostgreSQL (and its row in "
                "sqlite2pg.synced_tables), or reload everything with sqlite2pg sync --full"
            )
        raise DriftError(
            "the source schema changed since the last sync, nothing was written: "
            + "; ".join(problems),
            hint or None,
        )
    return drift


# --------------------------------------------------------------------------- staging


class _Capture:
    """Passes rejections on to the run's sink and remembers the rejected rows' keys."""

    def __init__(self, inner: RejectSink, t: TablePlan) -> None:
        self.inner = inner
        self.t = t
        self.keys: list[Key] = []

    def add(self, rejection: Rejection) -> None:
        self.inner.add(rejection)
        if self.t.source.primary_key:
            self.keys.append(tuple(rejection.key.get(c) for c in self.t.source.primary_key))

    def discard(self, table: str) -> None:
        self.inner.discard(table)
        self.keys.clear()


@dataclass
class Work:
    """One table's run: its detected changes and where they were staged."""

    t: TablePlan
    prev: SyncedTable
    det: Detected
    result: TableResult
    stage: str = ""
    dels: str = ""
    staged: int = 0
    deleting: int = 0
    rejected_keys: list[Key] = field(default_factory=list)
    reinit: bool = False  # state rebuilt by the strategy's initial() after applying
    started: float = 0.0


def selection_profiles(
    sconn: sqlite3.Connection, t: TablePlan, where: str, params: Sequence[object]
) -> dict[str, ColumnProfile]:
    """The profile of the selected rows only: like the full load, a column whose selected
    values can stream to COPY unchanged skips its converter. A value that no longer fits the
    existing column (longer than varchar(n), outside smallint, too wide for numeric(p,s))
    counts as dirty, so its converter rejects it with a reason instead of failing the COPY."""
    cols = [c for c in t.copy_columns]
    query = profile_query(
        f"(SELECT * FROM {quote_sqlite(t.source.name)}{where})",
        [(c.source.name, c.type) for c in cols],
    )
    _, profiles = query.parse(tuple(sconn.execute(query.sql, tuple(params)).fetchone()))
    out: dict[str, ColumnProfile] = {}
    for c in cols:
        p = profiles[c.source.name]
        kind = c.type.kind
        overflow = (
            (
                kind == "varchar"
                and c.type.length is not None
                and (p.max_text_chars or 0) > c.type.length
            )
            or (kind == "numeric" and c.type.precision is not None and p.texts > 0)
            or (
                kind in INT_RANGES
                and (
                    (p.int_min is not None and p.int_min < INT_RANGES[kind][0])
                    or (p.int_max is not None and p.int_max > INT_RANGES[kind][1])
                )
            )
        )
        out[c.source.name] = replace(p, dirty=p.dirty + (1 if overflow else 0))
    return out


def _stage_ddl(t: TablePlan, name: str) -> str:
    cols = ", ".join(f"{qi(c.name)} {c.type.sql}" for c in t.copy_columns)
    return f"CREATE TEMP TABLE {qi(name)} ({cols}) ON COMMIT DROP"


def _stage(ctx: Context, w: Work, cfg: Config, sink: RejectSink, obs: Observer) -> None:
    """COPY the selected source rows into a temporary table, converted like the full load."""
    t, det, cur = w.t, w.det, ctx.cur
    w.stage = f"_s2p_stage_{id(w)}"
    cur.execute(_stage_ddl(t, w.stage))
    capture = _Capture(sink, t)
    careful = False
    while True:
        cur.execute("SAVEPOINT sqlite2pg_stage")
        try:
            read = written = rejected = policy = 0
            for where, params in det.selections:
                profiled = (
                    t
                    if careful
                    else replace(t, profiles=selection_profiles(ctx.sconn, t, where, params))
                )
                stats = copy_rows(
                    cur,
                    ctx.sconn,
                    profiled,
                    qi(w.stage),
                    capture,
                    batch_size=cfg.batch_size,
                    careful=careful,
                    where=where,
                    params=params,
                    progress=lambda n: obs.advance(t.source.name, n),
                )
                read += stats.read
                written += stats.written
                rejected += stats.rejected
                policy += stats.changed_by_policy
            cur.execute("RELEASE SAVEPOINT sqlite2pg_stage")
            break
        except CarefulModeNeeded:
            # text that is not UTF-8: read the table's selection again, value by value
            if careful:
                raise
            careful = True
            cur.execute("ROLLBACK TO SAVEPOINT sqlite2pg_stage")
            capture.discard(t.source.name)
    w.staged = written
    w.rejected_keys = list(capture.keys)
    w.result.read = read
    w.result.rejected = rejected
    w.result.changed_by_policy = policy


def _stage_deletes(ctx: Context, w: Work) -> None:
    t, cur = w.t, ctx.cur
    keys = w.det.deletes
    if w.det.compare and w.stage:
        keep = set(to_target_keys(t, w.rejected_keys))
        tcols = pk_target(t)
        on = " AND ".join(f"s.{qi(c)} = t.{qi(c)}" for c in tcols)
        cur.execute(
            f"SELECT {', '.join('t.' + qi(c) for c in tcols)} FROM {ctx.target(t)} t "
            f"WHERE NOT EXISTS (SELECT 1 FROM {qi(w.stage)} s WHERE {on})"
        )
        keys = [tuple(r) for r in cur.fetchall() if tuple(r) not in keep]
    if not keys:
        return
    w.dels = f"_s2p_del_{id(w)}"
    cols = ", ".join(qi(c) for c in pk_target(t))
    cur.execute(
        f"CREATE TEMP TABLE {qi(w.dels)} ON COMMIT DROP AS SELECT {cols} FROM {ctx.target(t)} "
        "WITH NO DATA"
    )
    with cur.copy(f"COPY {qi(w.dels)} ({cols}) FROM STDIN") as cp:
        for k in set(keys):
            cp.write_row(k)
    w.deleting = len(set(keys))


def _target_rows(cur: Cursor, target: str, losing: int, share: float) -> int:
    """Rows in the target table: the planner's estimate when it is far from deciding the
    guard either way (counting 15M rows costs a second), else an exact count."""
    cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (target,))
    row = cur.fetchone()
    estimate = float(row[0]) if row and row[0] is not None else -1.0
    if estimate > 100_000 and not (share / 2 <= losing / estimate <= share * 2):
        return int(estimate)
    cur.execute(f"SELECT count(*) FROM {target}")
    row = cur.fetchone()
    return int(row[0]) if row else 0


def _guard(ctx: Context, works: Sequence[Work], cfg: Config, opts: SyncOptions) -> None:
    if opts.allow_mass_delete:
        return
    problems = []
    for w in works:
        share = cfg.delete_guard
        if w.det.reload:
            before = _target_rows(ctx.cur, ctx.target(w.t), 0, 0.0)
            losing = max(0, before - w.staged)
        elif w.deleting:
            losing = w.deleting
            before = _target_rows(ctx.cur, ctx.target(w.t), losing, share)
        else:
            continue
        if before and losing > cfg.delete_guard * before:
            problems.append(
                f"{w.t.source.name}: {losing:,} of {before:,} rows ({losing / before:.0%})"
            )
    if problems:
        raise MassDeleteError(
            f"stopped before writing anything: the sync would delete more than "
            f"{cfg.delete_guard:.0%} of table(s) {'; '.join(problems)}. Was the source file "
            "replaced by an empty or older copy?",
            "if these deletes are intended, run again with --allow-mass-delete "
            "(or raise delete_guard in the config)",
        )


# --------------------------------------------------------------------------- applying


def _apply_deletes(ctx: Context, w: Work) -> None:
    if not w.dels:
        return
    tcols = pk_target(w.t)
    on = " AND ".join(f"t.{qi(c)} = d.{qi(c)}" for c in tcols)
    ctx.cur.execute(f"DELETE FROM {ctx.target(w.t)} t USING {qi(w.dels)} d WHERE {on}")
    w.result.deleted = max(ctx.cur.rowcount, 0)


def _apply_upserts(ctx: Context, w: Work) -> None:
    if not w.staged:
        return
    t = w.t
    cols = [c for c in t.copy_columns]
    names = ", ".join(qi(c.name) for c in cols)
    pk = pk_target(t)
    rest = [c for c in cols if c.name not in pk]
    if rest:

        def side(prefix: str) -> str:
            parts = []
            for c in rest:
                ref = f"{prefix}.{qi(c.name)}"
                if c.collation == "nocase":
                    ref += ' COLLATE "C"'
                parts.append(ref)
            return "ROW(" + ", ".join(parts) + ")"

        sets = ", ".join(f"{qi(c.name)} = EXCLUDED.{qi(c.name)}" for c in rest)
        conflict = f"DO UPDATE SET {sets} WHERE {side('t')} IS DISTINCT FROM {side('EXCLUDED')}"
    else:
        conflict = "DO NOTHING"
    ctx.cur.execute(
        f"WITH r AS (INSERT INTO {ctx.target(t)} AS t ({names}) SELECT {names} FROM "
        f"{qi(w.stage)} ON CONFLICT ({', '.join(qi(c) for c in pk)}) {conflict} "
        "RETURNING (t.xmax = 0) AS ins) "
        "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM r"
    )
    row = ctx.cur.fetchone()
    assert row is not None
    w.result.inserted, w.result.updated = int(row[0]), int(row[1])


def _apply_reload(ctx: Context, w: Work) -> None:
    """A table without a primary key: replaced whole, but only when its rows changed."""
    t, cur = w.t, ctx.cur
    names = ", ".join(qi(c.name) for c in t.copy_columns)
    target = ctx.target(t)
    cur.execute(
        f"SELECT (SELECT count(*) FROM (SELECT {names} FROM {qi(w.stage)} EXCEPT ALL "
        f"SELECT {names} FROM {target}) a), (SELECT count(*) FROM (SELECT {names} FROM {target} "
        f"EXCEPT ALL SELECT {names} FROM {qi(w.stage)}) b)"
    )
    row = cur.fetchone()
    assert row is not None
    ins, dels = int(row[0]), int(row[1])
    if ins or dels:
        cur.execute(f"DELETE FROM {target}")
        cur.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {qi(w.stage)}")
    w.result.inserted, w.result.deleted = ins, dels


def _advance_identity(ctx: Context, w: Work) -> None:
    """Identity columns continue after the highest id (and SQLite's AUTOINCREMENT counter)."""
    ident = next((c for c in w.t.columns if c.identity), None)
    if ident is None or not w.result.inserted:
        return
    cur = ctx.cur
    cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (ctx.target(w.t), ident.name))
    row = cur.fetchone()
    if not row or not row[0]:
        return
    seq = row[0]
    cur.execute(f"SELECT max({qi(ident.name)}) FROM {ctx.target(w.t)}")
    top = cur.fetchone()
    need = max(int(top[0]) if top and top[0] is not None else 0, w.t.source.sequence or 0)
    cur.execute(f"SELECT last_value, is_called FROM {seq}")
    last, called = cur.fetchone()  # type: ignore[misc]
    nxt = int(last) + 1 if called else int(last)
    if need >= nxt:
        cur.execute("SELECT setval(%s::regclass, %s, true)", (seq, need))


def _add_columns(ctx: Context, t: TablePlan, added: list[str], warnings: list[str]) -> None:
    for name in added:
        col = t.column_by_source(name)
        plain = replace(col, notnull=False, identity=False)
        ctx.cur.execute(f"ALTER TABLE {ctx.target(t)} ADD COLUMN {ddl.column_sql(plain)}")
        if col.default_sql is not None and not col.generated_sql:
            try:
                with ddl.savepoint(ctx.cur):
                    ctx.cur.execute(
                        f"ALTER TABLE {ctx.target(t)} ALTER COLUMN {qi(col.name)} "
                        f"SET DEFAULT {col.default_sql}"
                    )
            except psycopg.Error as exc:
                warnings.append(
                    f"{t.source.name}.{name}: DEFAULT not carried over ({ddl.pg_error(exc)})"
                )


def _finish_columns(ctx: Context, t: TablePlan, added: list[str], warnings: list[str]) -> None:
    for name in added:
        col = t.column_by_source(name)
        if col.notnull and not col.generated_sql:
            try:
                with ddl.savepoint(ctx.cur):
                    ctx.cur.execute(
                        f"ALTER TABLE {ctx.target(t)} ALTER COLUMN {qi(col.name)} SET NOT NULL"
                    )
            except psycopg.Error as exc:
                warnings.append(f"{t.source.name}.{name}: NOT NULL not set ({ddl.pg_error(exc)})")


def _check_foreign_keys(cur: Cursor, plan: MigrationPlan) -> None:
    """Deferred foreign keys are checked here, so a violation gets a message with a fix.

    SQLite does not enforce foreign keys unless the application asks it to, so a source can
    delete a parent whose children stay, or insert a child without its parent. PostgreSQL
    cannot hold such a row under the constraint (NOT VALID only exempts rows that were there
    when it was created), so the run stops with nothing written."""
    try:
        with ddl.savepoint(cur, "sqlite2pg_fk"):
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except pgerr.ForeignKeyViolation as exc:
        diag = exc.diag
        cur.execute(
            "SELECT c.relname, p.relname FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_class p ON p.oid = k.confrelid WHERE k.conname = %s "
            "AND k.connamespace = %s::regnamespace",
            (diag.constraint_name, plan.schema),
        )
        row = cur.fetchone()
        source = {t.name: t.source.name for t in plan.tables}
        pair = [source.get(n, n) for n in row[::-1]] if row else []
        tables = ",".join(pair) if pair else "PARENT,CHILD"
        raise Sqlite2pgError(
            f"the source now holds rows without their parent ({diag.constraint_name}: "
            f"{(diag.message_detail or '').strip()}), which PostgreSQL cannot keep under the "
            "foreign key; nothing was written",
            "SQLite does not enforce foreign keys unless the application turns them on. Fix "
            f"the rows in the source, or reload both tables (sqlite2pg sync --full --tables "
            f"{tables}): the foreign key is then created NOT VALID and keeps today's orphans",
        ) from exc


# --------------------------------------------------------------------------- the run


def _behind(t: TablePlan, helper: Helper, prefetch: Prefetch) -> tuple[bool, bool]:
    """Detection order: tables whose source work runs ahead elsewhere come last."""
    return t.source.name in helper.jobs, t.source.name in prefetch.queries


def run_incremental(
    pg: psycopg.Connection[Any],
    sconn: sqlite3.Connection,
    plan: MigrationPlan,
    existing: dict[str, SyncedTable],
    cfg: Config,
    opts: SyncOptions,
    state: StateDB,
    report: RunReport,
    obs: Observer,
) -> None:
    """Apply the changes since the last sync (see the module docstring for the order)."""
    from .tableload import load_table

    schema = plan.schema
    check_drift(sconn, plan, existing)  # fail fast, before taking any lock
    sink = state.reject_sink(report.run_id)
    with pg.cursor() as cur:
        take_apply_lock(cur, schema)
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        existing = syncstate.load(cur, schema)  # under the lock: what the last run committed
        drift = check_drift(sconn, plan, existing)
        if opts.tables:
            report.warnings.append(
                "--tables applies with --full only: every table was synced incrementally"
            )
        for name in drift.unsynced:
            report.warnings.append(
                f"{name}: excluded by the config now; its PostgreSQL table is kept as it is and "
                "no longer synced"
            )
        ctx = Context(cur, sconn, schema, cfg, str(opts.source))
        if drift.new_tables or drift.new_columns:
            nocase = ddl.prepare_schema(cur, plan, report.warnings)
        else:
            nocase = True
            cur.execute(f"SET LOCAL search_path TO {qi(schema)}, public")
        ensure_state(cur)
        works: list[Work] = []
        new_names = {t.source.name for t in drift.new_tables}
        old_tables = [t for t in plan.tables if t.source.name not in new_names]
        compared = [t for t in old_tables if not _reinit(t, existing[t.source.name], drift)]
        # detect + stage: nothing in the user's tables is written here. The larger hash
        # tables are fingerprinted by a helper process meanwhile, and detected last; some key
        # passes run ahead in a thread, and their tables come just before those.
        with (
            contextlib.closing(fingerprint_helper(ctx, compared)) as helper,
            contextlib.closing(Prefetch(sconn, ahead_queries(ctx, compared))) as prefetch,
        ):
            ctx.helper, ctx.prefetch = helper, prefetch
            for t in sorted(old_tables, key=lambda t: _behind(t, helper, prefetch)):
                prev = existing[t.source.name]
                strategy = strategy_for(t)
                result = TableResult(table=t.source.name, target=t.name, strategy=t.strategy)
                report.tables[t.source.name] = result
                started = time.perf_counter()
                obs.table_started(t.source.name, 0)
                reinit = _reinit(t, prev, drift)
                if reinit:
                    det = CompareStrategy().detect(ctx, t, prev)
                    if t.source.primary_key:
                        det.notes.append(
                            f"{t.source.name}: "
                            + (
                                "new column(s) " + ", ".join(drift.new_columns[t.source.name])
                                if t.source.name in drift.new_columns
                                else f"strategy changed ({prev.strategy} -> {t.strategy})"
                            )
                            + ": table compared whole"
                        )
                    else:
                        det.compare, det.reload = False, True
                else:
                    det = strategy.detect(ctx, t, prev)
                w = Work(t, prev, det, result, reinit=reinit, started=started)
                if det.selections:
                    _stage(ctx, w, cfg, sink, obs)
                _stage_deletes(ctx, w)
                report.warnings.extend(det.notes)
                works.append(w)
                result.seconds = time.perf_counter() - started
        ctx.helper = ctx.prefetch = None
        position = {t.source.name: i for i, t in enumerate(plan.tables)}
        works.sort(key=lambda w: position[w.t.source.name])  # apply in the plan's order
        _guard(ctx, works, cfg, opts)
        # apply: every write to the user's tables happens below, in this one transaction
        for w in works:
            if w.t.source.name in drift.new_columns:
                _add_columns(ctx, w.t, drift.new_columns[w.t.source.name], report.warnings)
        for w in works:
            t0 = time.perf_counter()
            _apply_deletes(ctx, w)
            w.result.seconds += time.perf_counter() - t0
        for w in works:
            t0 = time.perf_counter()
            if w.det.reload:
                if w.stage:
                    _apply_reload(ctx, w)
            else:
                _apply_upserts(ctx, w)
                _advance_identity(ctx, w)
            if w.t.source.name in drift.new_columns:
                _finish_columns(ctx, w.t, drift.new_columns[w.t.source.name], report.warnings)
            w.result.seconds += time.perf_counter() - t0
        created: list[TablePlan] = []
        for t in drift.new_tables:
            created.append(load_table(cur, sconn, t, schema, cfg, sink, report, obs, nocase))
            report.warnings.append(f"{t.source.name}: new in the source: created and loaded")
        if created:
            for t in created:
                ddl.add_keys_and_indexes(cur, t, schema, report.warnings)
            add_fks_touching(cur, plan, created, report)
            create_missing_views(cur, plan, report.warnings)
        # the sync state, in the same transaction as the data
        for w in works:
            t, res = w.t, w.result
            res.written = res.inserted + res.updated
            if w.det.save is not None and not w.reinit:
                w.det.save(cur, w.rejected_keys)
            hw = w.det.high_water
            if w.reinit:
                hw = strategy_for(t).initial(ctx, t, len(w.rejected_keys))
            syncstate.save_table(cur, schema, t, report.run_id, hw)
            total = w.det.source_rows if w.det.source_rows is not None else 0
            res.unchanged = max(0, total - res.inserted - res.updated - res.rejected)
            obs.table_done(res)
        for t in created:
            res = report.tables[t.source.name]
            hw = strategy_for(t).initial(ctx, t, res.rejected)
            syncstate.save_table(cur, schema, t, report.run_id, hw)
        changed = (
            any(r.inserted or r.updated or r.deleted for r in report.tables.values())
            or bool(created)
            or bool(drift.new_columns)
        )
        if not changed:
            report.warnings.append(
                "nothing changed since the last sync: no table in the target was written"
            )
            obs.message("nothing changed since the last sync")
        _check_foreign_keys(cur, plan)
        status = "rejected" if report.rejected else "ok"
        syncstate.save_run(
            cur,
            schema,
            report.run_id,
            "sync",
            "incremental",
            status,
            report.started_at,
            {"tables": {k: v.as_dict() for k, v in report.tables.items()}},
        )
    pg.commit()
    hooks = [w for w in works if w.det.after_commit is not None]
    if hooks:
        # Nothing more is read from the snapshot: end it, or (without WAL) our own read lock
        # would block the trim; the pipeline's snapshot block ends the fresh, empty one.
        sconn.execute("COMMIT")
        try:
            for w in hooks:
                try:
                    w.det.after_commit()  # type: ignore[misc]
                except sqlite3.Error as exc:
                    report.warnings.append(
                        f"{w.t.source.name}: change log not trimmed ({exc}); the next run "
                        "skips the entries it has already applied"
                    )
        finally:
            sconn.execute("BEGIN")


def _reinit(t: TablePlan, prev: SyncedTable, drift: Drift) -> bool:
    """Whether the table starts over (compared whole): new columns, or another strategy."""
    return (
        t.source.name in drift.new_columns
        or prev.strategy != t.strategy
        or (prev.strategy_column or None) != (t.strategy_column or None)
    )


def known_types(existing: dict[str, SyncedTable]) -> dict[str, dict[str, str]]:
    """Source table -> source column -> PostgreSQL type, as created by the earlier syncs."""
    return {
        name: {c["source"]: c["type"] for c in synced.columns if "type" in c}
        for name, synced in existing.items()
    }


def add_fks_touching(
    cur: Cursor, plan: MigrationPlan, created: Sequence[TablePlan], report: RunReport
) -> None:
    """Foreign keys of the tables just created, and of the other tables that refer to them
    (a DROP TABLE ... CASCADE of a reloaded table dropped those)."""
    new = {t.source.name for t in created}
    created_by = {t.source.name: t for t in created}
    tables = []
    for t in plan.tables:
        t = created_by.get(t.source.name, t)
        fks = tuple(
            fk for fk in t.foreign_keys if t.source.name in new or fk.source.ref_table in new
        )
        tables.append(replace(t, foreign_keys=fks))
    ddl.add_foreign_keys(cur, replace(plan, tables=tuple(tables)), report.tables, report.warnings)


def create_missing_views(cur: Cursor, plan: MigrationPlan, warnings: list[str]) -> None:
    """Views not in the target yet (e.g. over a table that is new in the source)."""
    cur.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = %s", (plan.schema,)
    )
    have = {r[0] for r in cur.fetchall()}
    missing = tuple(v for v in plan.views if v.name not in have)
    if missing:
        ddl.create_views(cur, replace(plan, views=missing), warnings)
