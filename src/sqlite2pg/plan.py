"""Catalog + one profiling scan + config -> the complete migration plan.

Runs inside the source snapshot, so the profile describes exactly the rows that will be copied.
Every decision carries its reason; everything that cannot be carried over faithfully becomes a
warning here, before anything is written.
"""

from __future__ import annotations

import math
import queue
import sqlite3
import threading
from collections.abc import Callable

from .config import Config, TableConfig
from .convert import PolicyApplied, Reject, converter_for
from .errors import PlanError
from .model import (
    ColumnPlan,
    ColumnProfile,
    ForeignKeyPlan,
    IndexPlan,
    MigrationPlan,
    PgType,
    SourceCatalog,
    SourceColumn,
    SourceIndex,
    SourceTable,
    TablePlan,
    ViewPlan,
)
from .naming import apply_policy, generated_name, too_long
from .source import corrupt_source, qi, twin
from .sqlite_sql import Token, Translator, Untranslatable, quote_ident, tokenize
from .typemap import (
    TypeOptions,
    affinity,
    candidate_type,
    decide,
    profile_query,
    unusual_query,
)

Profiler = Callable[[str], tuple[object, ...]]
MAX_COLUMNS = 1600  # PostgreSQL's limit; SQLite allows 2000 by default
ID_MAX = {"integer": 2**31 - 1, "bigint": 2**63 - 1}


def parse_pg_type(text: str) -> PgType:
    """A per-column type override from the config: ``text``, ``varchar(20)``, ``numeric(12,2)``."""
    t = text.strip().lower()
    aliases = {
        "int8": "bigint",
        "int": "integer",
        "int4": "integer",
        "int2": "smallint",
        "float8": "double",
        "double precision": "double",
        "bool": "boolean",
        "timestamp with time zone": "timestamptz",
        "timestamp without time zone": "timestamp",
        "json": "jsonb",
    }
    t = aliases.get(t, t)
    if t.startswith("varchar(") and t.endswith(")"):
        return PgType("varchar", length=int(t[8:-1]))
    if t.startswith("numeric(") and t.endswith(")"):
        parts = [int(p) for p in t[8:-1].split(",")]
        return PgType("numeric", precision=parts[0], scale=parts[1] if len(parts) > 1 else 0)
    kinds = {
        "smallint", "integer", "bigint", "double", "numeric", "text", "varchar", "bytea",
        "boolean", "timestamp", "timestamptz", "date", "time", "jsonb", "uuid",
    }  # fmt: skip
    if t not in kinds:
        raise PlanError(
            f"unsupported type override {text!r}",
            f"use one of: {', '.join(sorted(kinds))}, varchar(n), numeric(p,s)",
        )
    return PgType(t)  # type: ignore[arg-type]


def selected_tables(catalog: SourceCatalog, cfg: Config) -> list[SourceTable]:
    names = {t.name for t in catalog.tables}
    for name in [*(cfg.include or []), *cfg.exclude, *cfg.tables]:
        if name not in names:
            raise PlanError(
                f"the config names table {name!r}, which the source does not have",
                f"source tables: {', '.join(sorted(names)) or '(none)'}",
            )
    out = []
    for t in catalog.tables:
        if cfg.include is not None and t.name not in cfg.include:
            continue
        if t.name in cfg.exclude or not cfg.table(t.name).include:
            continue
        out.append(t)
    return out


def build_plan(
    conn: sqlite3.Connection,
    catalog: SourceCatalog,
    cfg: Config,
    *,
    known: dict[str, dict[str, str]] | None = None,
) -> MigrationPlan:
    """Profile every selected table (one scan each) and decide the whole target schema.

    ``known`` (source table -> source column -> PostgreSQL type, from the last sync) keeps the
    types of columns that already exist in the target; a table whose columns are all known is
    not scanned at all (an incremental run must not read every row to plan)."""
    opts = TypeOptions(**cfg.types.model_dump())
    warnings: list[str] = []
    tables = selected_tables(catalog, cfg)
    table_names = {t.name: _table_name(t.name, cfg) for t in tables}
    _check_names("table", list(table_names.items()), "tables: {SOURCE: {rename: NEW}}")
    plans: list[TablePlan] = []
    # Index names share PostgreSQL's namespace with tables and primary-key indexes.
    relation_names = set(table_names.values()) | {
        generated_name(table_names[t.name], suffix="pkey") for t in tables if t.primary_key
    }
    columns_of = {t.name: {c.name for c in t.columns} for t in catalog.tables}

    def plan_one(c: sqlite3.Connection, t: SourceTable, table_warnings: list[str]) -> TablePlan:
        return _plan_table(
            c,
            t,
            cfg,
            opts,
            table_names,
            relation_names,
            columns_of,
            table_warnings,
            (known or {}).get(t.name),
        )

    with twin(conn) as other:
        for plan, table_warnings in _plan_tables(conn, other, tables, plan_one):
            plans.append(plan)
            warnings.extend(table_warnings)
    views = _plan_views(catalog, cfg, table_names, {p.source.name: p for p in plans}, warnings)
    needs_nocase = any(c.collation == "nocase" for p in plans for c in p.columns) or any(
        'COLLATE "nocase"' in i.sql for p in plans for i in p.indexes
    )
    return MigrationPlan(
        source_path=catalog.path,
        schema=cfg.schema_,
        tables=tuple(plans),
        views=tuple(views),
        skipped=catalog.skipped,
        warnings=tuple(warnings),
        needs_nocase=needs_nocase,
    )


PlanOne = Callable[[sqlite3.Connection, SourceTable, list[str]], TablePlan]


def _plan_tables(
    conn: sqlite3.Connection,
    other: sqlite3.Connection | None,
    tables: list[SourceTable],
    plan_one: PlanOne,
) -> list[tuple[TablePlan, list[str]]]:
    """Plan every table (each profile is a scan), on two connections at once when a twin in
    the same snapshot exists: SQLite releases the GIL while it scans. Results, warnings and
    the first error come in table order, as if planned one by one."""
    if other is None:
        out = []
        for t in tables:
            table_warnings: list[str] = []
            out.append((plan_one(conn, t, table_warnings), table_warnings))
        return out
    todo: queue.Queue[int] = queue.Queue()
    for i in sorted(range(len(tables)), key=lambda i: -_size_hint(conn, tables[i])):
        todo.put(i)
    done: dict[int, tuple[TablePlan, list[str]] | BaseException] = {}

    def work(c: sqlite3.Connection) -> None:
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            table_warnings: list[str] = []
            try:
                done[i] = (plan_one(c, tables[i], table_warnings), table_warnings)
            except BaseException as exc:  # re-raised below, in table order
                done[i] = exc

    helper = threading.Thread(target=work, args=(other,), name="sqlite2pg-plan", daemon=True)
    helper.start()
    work(conn)
    helper.join()
    out = []
    for i in range(len(tables)):
        result = done[i]
        if isinstance(result, BaseException):
            raise result
        out.append(result)
    return out


def _size_hint(conn: sqlite3.Connection, t: SourceTable) -> int:
    """The largest rowid (read from the b-tree): big tables are planned first. A damaged
    table gives 0 here; its profile names the damage."""
    if t.without_rowid:
        return 0
    try:
        value = conn.execute(f"SELECT max(rowid) FROM {qi(t.name)}").fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
    return value if isinstance(value, int) else 0


def _table_name(name: str, cfg: Config) -> str:
    return cfg.table(name).rename or apply_policy(name, cfg.naming)


def _check_names(kind: str, pairs: list[tuple[str, str]], fix: str) -> None:
    seen: dict[str, str] = {}
    for src, dst in pairs:
        if too_long(dst):
            raise PlanError(
                f"{kind} name {dst!r} (from {src!r}) is longer than PostgreSQL's 63 bytes",
                f"give it a shorter name in the config: {fix.replace('SOURCE', src)}",
            )
        if not dst:
            raise PlanError(f"{kind} {src!r} maps to an empty name", f"rename it: {fix}")
        if dst in seen:
            raise PlanError(
                f"{kind}s {seen[dst]!r} and {src!r} would both be named {dst!r} in PostgreSQL",
                f"rename one in the config: {fix.replace('SOURCE', src)}",
            )
        seen[dst] = src


def _plan_table(
    conn: sqlite3.Connection,
    t: SourceTable,
    cfg: Config,
    opts: TypeOptions,
    table_names: dict[str, str],
    relation_names: set[str],
    columns_of: dict[str, set[str]],
    warnings: list[str],
    known: dict[str, str] | None = None,
) -> TablePlan:
    tcfg = cfg.table(t.name)
    name = table_names[t.name]
    col_names = {
        c.name: (tcfg.columns[c.name].rename if c.name in tcfg.columns else None)
        or apply_policy(c.name, cfg.naming)
        for c in t.columns
    }
    _check_names(
        f"column of table {t.name!r}:",
        list(col_names.items()),
        f"tables: {{{t.name}: {{columns: {{SOURCE: {{rename: NEW}}}}}}}}",
    )
    if len(t.columns) > MAX_COLUMNS:
        raise PlanError(
            f"table {t.name!r} has {len(t.columns)} columns; PostgreSQL allows at most "
            f"{MAX_COLUMNS} in a table",
            f"leave it out (exclude: [{t.name}]) and copy it in parts yourself",
        )
    for c in tcfg.columns:
        if c not in col_names:
            raise PlanError(
                f"the config names column {c!r} of table {t.name!r}, which does not exist",
                f"columns: {', '.join(col_names)}",
            )
    overrides = {c: parse_pg_type(cc.type) for c, cc in tcfg.columns.items() if cc.type is not None}
    cands: dict[str, tuple[PgType | None, str]] = {}
    for col in t.columns:
        if col.name in overrides:
            cands[col.name] = (overrides[col.name], "type set in the config")
        elif known and col.name in known:
            overrides[col.name] = parse_pg_type(known[col.name])
            cands[col.name] = (overrides[col.name], "type of the existing target column")
        else:
            cands[col.name] = candidate_type(col, opts)
    if known and all(c.name in overrides for c in t.columns):
        # nothing to decide: no scan; every value goes through its converter (dirty)
        count, profiles = 0, {c.name: ColumnProfile(dirty=1) for c in t.columns}
    else:
        ranges = {t.rowid_alias} if t.rowid_alias else set()
        if opts.int32:
            ranges |= {c for c, (cand, _) in cands.items() if cand and cand.kind == "bigint"}
        count, profiles = _quick_profile(conn, t, cands, ranges) or _profile(
            conn, t, list(cands.items()), frozenset(ranges)
        )

    def resolve_col(ident: str) -> str | None:
        for src, dst in col_names.items():
            if src.lower() == ident.lower():
                return quote_ident(dst)
        return None

    boolean_cols = {
        c.lower() for c, (cand, _) in cands.items() if cand is not None and cand.kind == "boolean"
    }
    translator = Translator(
        resolve_col,
        lambda declared: _declared_sql(declared, opts),
        lambda ident: ident.lower() in boolean_cols,
    )
    columns: list[ColumnPlan] = []
    for col in t.columns:
        cand, why = cands[col.name]
        prof = profiles[col.name]
        warn: list[str] = []
        if col.name in overrides:
            pg, reason = cand, why
            assert pg is not None
        else:
            pg, reason, warn = decide(col, cand, why, prof, opts)
        if cand is None:
            # Chosen from the values: only integers/reals for numbers stream untouched.
            dirty = 0 if pg.kind in ("bigint", "double") else prof.non_null
            prof = _with_dirty(prof, dirty)
        profiles[col.name] = prof
        warnings.extend(f"{t.name}.{col.name}: {w}" for w in warn)
        columns.append(
            _plan_column(t, col, col_names[col.name], pg, reason, prof, tcfg, translator, warnings)
        )
    pk = tuple(col_names[c] for c in t.primary_key)
    fk_plans = []
    fk_names: set[str] = set()
    for fk in t.foreign_keys:
        label = f"{t.name}: foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}"
        if fk.ref_table not in columns_of:
            warnings.append(f"{label} not created: the source has no table {fk.ref_table!r}")
            continue
        if fk.ref_table not in table_names:
            warnings.append(f"{label} not created: that table is not copied")
            continue
        missing = [c for c in fk.columns if c not in col_names] + [
            c for c in fk.ref_columns if c not in columns_of[fk.ref_table]
        ]
        if missing or not fk.ref_columns or len(fk.ref_columns) != len(fk.columns):
            why = f"no column(s) {', '.join(missing)}" if missing else "its columns do not match"
            warnings.append(f"{label} not created: {why}")
            continue
        fk_name = generated_name(name, *(col_names[c] for c in fk.columns), suffix="fkey")
        n = 1
        while fk_name in fk_names:  # two keys on the same columns (to different parents)
            fk_name = generated_name(name, *(col_names[c] for c in fk.columns), suffix=f"fkey{n}")
            n += 1
        fk_names.add(fk_name)
        fk_plans.append(
            ForeignKeyPlan(
                name=fk_name,
                columns=tuple(col_names[c] for c in fk.columns),
                ref_table=table_names[fk.ref_table],
                ref_columns=fk.ref_columns,  # resolved to target names by the schema stage
                on_update=fk.on_update,
                on_delete=fk.on_delete,
                source=fk,
            )
        )
    indexes = []
    for idx in t.indexes:
        plan = _plan_index(t, name, idx, col_names, columns, translator, relation_names, warnings)
        if plan is not None:
            indexes.append(plan)
    checks: list[str] = []
    for expr in [*t.checks, *(c for col in t.columns for c in col.checks)]:
        try:
            checks.append(translator.expression(expr))
        except Untranslatable as exc:
            warnings.append(f"{t.name}: CHECK ({expr}) not created: {exc}")
    strategy, strategy_column = _strategy(t, tcfg)
    return TablePlan(
        source=t,
        name=name,
        columns=tuple(columns),
        primary_key=pk,
        indexes=tuple(indexes),
        foreign_keys=tuple(fk_plans),
        checks=tuple(checks),
        row_count=count,
        profiles=profiles,
        strategy=strategy,
        strategy_column=strategy_column,
    )


PROFILE_CHUNK = 250  # columns per scan: at most 7 aggregates each, SQLite returns <= 2000


def _profile(
    conn: sqlite3.Connection,
    t: SourceTable,
    cands: list[tuple[str, tuple[PgType | None, str]]],
    ranges: frozenset[str] = frozenset(),
) -> tuple[int, dict[str, ColumnProfile]]:
    """One scan per PROFILE_CHUNK columns (one scan for all but very wide tables)."""
    count, profiles = 0, {}
    for start in range(0, max(len(cands), 1), PROFILE_CHUNK):
        chunk = [(c, cand) for c, (cand, _) in cands[start : start + PROFILE_CHUNK]]
        query = profile_query(qi(t.name), chunk, ranges)
        try:
            row = conn.execute(query.sql).fetchone()
        except sqlite3.DatabaseError as exc:
            error = corrupt_source(exc, f"table {t.name!r}", conn)
            if error is None:
                raise
            raise error from exc
        count, part = query.parse(tuple(row))
        profiles.update(part)
    return count, profiles


def _quick_profile(
    conn: sqlite3.Connection,
    t: SourceTable,
    cands: dict[str, tuple[PgType | None, str]],
    ranges: set[str],
) -> tuple[int, dict[str, ColumnProfile]] | None:
    """The profile of a clean table without aggregating every column (about half the cost of
    :func:`_profile`): one EXISTS scan for unusual values, the row count, and the identity's
    range from the b-tree. None when it cannot tell (a column typed from its values, a range
    needed from an ordinary column, or any unusual value): then the full profile runs.

    The NULL count of a nullable column is not learned here (``nulls=None``)."""
    typed = [(c, cand) for c, (cand, _) in cands.items() if cand is not None]
    if len(typed) != len(cands) or len(typed) > PROFILE_CHUNK or ranges - {t.rowid_alias}:
        return None
    notnull = {c.name for c in t.columns if c.notnull or c.pk_position}
    # the rowid alias holds integers only, never NULL: nothing to test
    affinities = {c.name: "" if c.generated else affinity(c.declared_type) for c in t.columns}
    tested = [(c, cand, c in notnull, affinities[c]) for c, cand in typed if c != t.rowid_alias]
    query = unusual_query(qi(t.name), tested)
    try:
        if conn.execute(query).fetchone()[0]:
            return None
        count = _row_count(conn, t.name)
        bounds: tuple[object, object] = (None, None)
        if t.rowid_alias:  # two queries: min() or max() alone is read from the b-tree
            alias = qi(t.rowid_alias)
            lo = conn.execute(f"SELECT min({alias}) FROM {qi(t.name)}").fetchone()[0]
            hi = conn.execute(f"SELECT max({alias}) FROM {qi(t.name)}").fetchone()[0]
            bounds = (lo, hi)
    except sqlite3.DatabaseError as exc:
        error = corrupt_source(exc, f"table {t.name!r}", conn)
        if error is None:
            raise
        raise error from exc
    profiles = {}
    for c, _ in typed:
        is_alias = c == t.rowid_alias
        profiles[c] = ColumnProfile(
            nulls=0 if c in notnull else None,
            int_min=_opt_int(bounds[0]) if is_alias else None,
            int_max=_opt_int(bounds[1]) if is_alias else None,
        )
    return count, profiles


def _row_count(conn: sqlite3.Connection, table: str) -> int:
    """count(*), which SQLite reads from the smallest index; an index in a collation that only
    the application registers cannot be opened here, and then the table itself is counted."""
    try:
        return int(conn.execute(f"SELECT count(*) FROM {qi(table)}").fetchone()[0])
    except sqlite3.OperationalError:
        return int(conn.execute(f"SELECT count(*) FROM {qi(table)} NOT INDEXED").fetchone()[0])


def _opt_int(v: object) -> int | None:
    return v if isinstance(v, int) else None


def _with_dirty(p: ColumnProfile, dirty: int) -> ColumnProfile:
    from dataclasses import replace

    return replace(p, dirty=dirty)


def _declared_sql(declared: str, opts: TypeOptions) -> str:
    col = SourceColumn(declared, declared, False, None, 0)
    cand, _ = candidate_type(col, opts)
    return (cand or PgType("text")).sql


def _plan_column(
    t: SourceTable,
    col: SourceColumn,
    name: str,
    pg: PgType,
    reason: str,
    prof: ColumnProfile,
    tcfg: TableConfig,
    translator: Translator,
    warnings: list[str],
) -> ColumnPlan:
    ccfg = tcfg.columns.get(col.name)
    identity = t.rowid_alias == col.name and pg.kind in ("bigint", "integer")
    start = None
    if identity:
        start = max(prof.int_max or 0, t.sequence or 0) + 1
        if pg.kind == "integer" and start > ID_MAX["integer"]:  # sqlite_sequence beyond int4
            pg, reason = PgType("bigint"), f"{reason}; sqlite_sequence exceeds integer -> bigint"
        if start > ID_MAX["bigint"]:
            start = ID_MAX["bigint"]
            warnings.append(
                f"{t.name}.{col.name}: the ids reached 9223372036854775807, the largest bigint; "
                "the identity cannot give new values (SQLite could not either)"
            )
    default = None
    if col.default_sql is not None and not identity:
        default = _default(col, pg, translator, t.name, warnings)
    generated = None
    if col.generated:
        try:
            generated = translator.expression(col.generated_sql or "")
        except Untranslatable as exc:
            warnings.append(
                f"{t.name}.{col.name}: generated column copied as a plain column with its "
                f"values ({exc})"
            )
    collation = None
    if col.collation == "NOCASE" and pg.kind in ("text", "varchar"):
        collation = "nocase"
    elif col.collation not in (None, "BINARY", "NOCASE"):
        warnings.append(f"{t.name}.{col.name}: collation {col.collation} not carried over")
    return ColumnPlan(
        source=col,
        name=name,
        type=pg,
        reason=reason,
        notnull=col.notnull or col.name in t.primary_key,
        default_sql=default,
        identity=identity,
        identity_start=start,
        generated_sql=generated,
        collation=collation,  # type: ignore[arg-type]
        on_invalid=ccfg.on_invalid if ccfg else "reject",
        nul=ccfg.nul if ccfg else "reject",
    )


def literal_sql(value: object) -> str:
    """A PostgreSQL literal for a converted value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "'Infinity'" if value > 0 else "'-Infinity'"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return "'\\x" + value.hex() + "'::bytea"
    text = str(value)
    return "'" + text.replace("'", "''") + "'"


def _default(
    col: SourceColumn, pg: PgType, translator: Translator, table: str, warnings: list[str]
) -> str | None:
    sql = col.default_sql or ""
    try:
        toks = tokenize(sql)
        while len(toks) >= 2 and toks[0].text == "(" and toks[-1].text == ")":
            toks = toks[1:-1]
        literal = _literal_value(toks)
    except Untranslatable as exc:
        warnings.append(f"{table}.{col.name}: DEFAULT {sql} not carried over ({exc})")
        return None
    if literal is not _NOT_LITERAL:
        if literal is None:
            return None
        try:
            value = converter_for(pg)(literal)
        except PolicyApplied as applied:
            value = applied.value
        except Reject as exc:
            warnings.append(f"{table}.{col.name}: DEFAULT {sql} not carried over ({exc})")
            return None
        return literal_sql(value) + (f"::{pg.sql}" if not isinstance(value, (int, bool)) else "")
    try:
        return translator.default(sql, pg.kind)
    except Untranslatable as exc:
        warnings.append(f"{table}.{col.name}: DEFAULT {sql} not carried over ({exc})")
        return None


_NOT_LITERAL = object()


def _literal_value(toks: list[Token]) -> object:
    sign = 1
    if len(toks) == 2 and toks[0].text in ("-", "+") and toks[1].kind == "num":
        sign = -1 if toks[0].text == "-" else 1
        toks = toks[1:]
    if len(toks) != 1:
        return _NOT_LITERAL
    tok = toks[0]
    if tok.kind == "num":
        text = tok.text
        if text.lower().startswith("0x"):
            return sign * int(text, 16)
        if all(ch.isdigit() for ch in text):
            return sign * int(text)
        return sign * float(text)
    if tok.kind == "str":
        return tok.text[1:-1].replace("''", "'")
    if tok.kind == "blob":
        return bytes.fromhex(tok.text[2:-1])
    if tok.is_word("NULL"):
        return None
    if tok.is_word("TRUE", "FALSE"):
        return 1 if tok.is_word("TRUE") else 0
    return _NOT_LITERAL


def _plan_index(
    t: SourceTable,
    table: str,
    idx: SourceIndex,
    col_names: dict[str, str],
    columns: list[ColumnPlan],
    translator: Translator,
    relation_names: set[str],
    warnings: list[str],
) -> IndexPlan | None:
    if idx.origin == "pk":
        return None
    nocase_cols = {c.source.name for c in columns if c.collation == "nocase"}
    terms: list[str] = []
    try:
        for col, expr, desc, coll in zip(
            idx.columns, idx.expressions, idx.descending, idx.collations, strict=True
        ):
            if col is not None:
                term = quote_ident(col_names[col])
                if (coll or "").upper() == "NOCASE" and col not in nocase_cols:
                    term += ' COLLATE "nocase"'
            elif expr is not None:
                term = f"({translator.expression(expr)})"
            else:
                raise Untranslatable("index term on the rowid")
            terms.append(term + (" DESC" if desc else ""))
        where = f" WHERE {translator.expression(idx.where_sql)}" if idx.where_sql else ""
    except Untranslatable as exc:
        warnings.append(f"{t.name}: index {idx.name} not created: {exc}")
        return None
    if idx.origin == "u":
        name = generated_name(table, *(col_names[c] for c in idx.columns if c), suffix="key")
    else:
        name = apply_policy(idx.name, "snake_case" if idx.name.isascii() else "preserve")
        if too_long(name) or name in relation_names:
            name = generated_name(table, name, suffix="idx")
    base, n = name, 1
    while name in relation_names:
        name = generated_name(base, suffix=str(n))
        n += 1
    relation_names.add(name)
    unique = "UNIQUE " if idx.unique else ""
    sql = f"CREATE {unique}INDEX {quote_ident(name)} ON {{table}} ({', '.join(terms)}){where}"
    return IndexPlan(name=name, unique=idx.unique, sql=sql, is_constraint=idx.origin == "u")


TIMESTAMP_NAMES = {
    "updatedat", "modifiedat", "lastmodified", "lastmodifiedat", "lastupdate", "lastupdated",
    "lastupdatedat", "updatedon", "modifiedon", "datemodified", "modifieddate", "updatedate",
    "updatetime", "modifytime", "mtime", "updated", "modified",
}  # fmt: skip


def timestamp_column(t: SourceTable) -> str | None:
    """A "last modified" column: named like updated_at/modified_at/last_modified/... (case
    and underscores ignored) and declared DATETIME or TIMESTAMP."""
    for c in t.columns:
        declared = c.declared_type.upper()
        if c.name.lower().replace("_", "") in TIMESTAMP_NAMES and (
            "DATETIME" in declared or "TIMESTAMP" in declared
        ):
            return c.name
    return None


def _strategy(t: SourceTable, tcfg: TableConfig) -> tuple[str, str | None]:
    if tcfg.strategy != "auto":
        if tcfg.strategy == "timestamp" and tcfg.column is None:
            return "timestamp", timestamp_column(t)
        return tcfg.strategy, tcfg.column
    if not t.primary_key:
        return "full", None
    column = timestamp_column(t)
    if column is not None:
        return "timestamp", column
    return "hash", None


def _plan_views(
    catalog: SourceCatalog,
    cfg: Config,
    table_names: dict[str, str],
    plans: dict[str, TablePlan],
    warnings: list[str],
) -> list[ViewPlan]:
    lower_tables = {k.lower(): v for k, v in table_names.items()}
    lower_cols = {c.source.name.lower(): c.name for p in plans.values() for c in p.columns}

    def resolve(ident: str) -> str:
        low = ident.lower()
        if low in lower_tables:
            return quote_ident(lower_tables[low])
        if low in lower_cols:
            return quote_ident(lower_cols[low])
        return quote_ident(apply_policy(ident, cfg.naming))

    out = []
    opts = TypeOptions(**cfg.types.model_dump())
    translator = Translator(resolve, lambda declared: _declared_sql(declared, opts))
    for v in catalog.views:
        name = apply_policy(v.name, cfg.naming)
        try:
            out.append(ViewPlan(name, v.name, translator.expression(v.select_sql)))
        except Untranslatable as exc:
            warnings.append(f"view {v.name} not copied: {exc}")
    return out
