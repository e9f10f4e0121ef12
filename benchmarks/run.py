#!/usr/bin/env python3
"""Benchmark harness: sqlite2pg side by side with pgloader and a shell "floor", on one server.

Every full load goes into a fresh database created for that run and dropped after it; the tools
run interleaved (A, B, C, A, B, C, ...) so that drift on the machine hits them all alike. Each load
is checked afterwards (row counts per table against SQLite; keys, indexes, foreign keys, NOT NULL
and column types counted) and a run with wrong counts is marked invalid.

Usage (from the repository root)::

    make bench BENCH_ARGS="--scales 60,1000 --repeats 3"
    .venv/bin/python benchmarks/run.py --scales 60 --repeats 3 --tools pgloader,floor

Only the standard library is used; PostgreSQL is driven through ``psql`` and SQLite through the
``sqlite3`` module and shell. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGET = "postgresql://postgres@127.0.0.1:5432/postgres"
ALL_TOOLS = ("sqlite2pg", "sqlite2pg-verify", "pgloader", "floor")
ALL_SECTIONS = ("full", "incremental", "verify")
ALL_STRATEGIES = ("timestamp", "append", "hash", "triggers")
ALL_LEVELS = ("counts", "checksum", "rows")
CHINOOK = Path("/work/shared/data/Chinook_Sqlite.sqlite")
GNU_TIME = "/usr/bin/time"
MB = 1_000_000
QUIET_BUSY = 0.15  # CPU share other work may use when a measurement starts
# pgloader's SQLite defaults turn varchar(n) into text and DATETIME into timestamptz; these casts
# give the column types the floor uses, so that both load into the same table definitions.
PGLOADER_CASTS = (
    "--cast 'type nvarchar to varchar keep typemod' "
    "--cast 'type varchar to varchar keep typemod' "
    "--cast 'type datetime to timestamp using sqlite-timestamp-to-timestamp'"
)

# Runs a command and writes "peak-RSS-KiB user-s system-s" of its process tree to argv[1], like
# GNU time -f "%M %U %S"; used when GNU time is absent. (The peak is never below the wrapper's
# own size, about 10 MiB, as the child is forked from it before exec.)
RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    f.write(f'{u.ru_maxrss} {u.ru_utime:.2f} {u.ru_stime:.2f}')\n"
    "sys.exit(rc if rc >= 0 else 128 - rc)\n"
)


class BenchError(Exception):
    """A problem that stops the harness (not a failed measurement, which is recorded)."""


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class ColumnInfo:
    name: str
    declared: str
    notnull: bool
    pk: int  # 1-based position in the primary key, 0 if not part of it


@dataclass
class IndexInfo:
    name: str
    unique: bool
    origin: str  # "c" (CREATE INDEX) or "u" (UNIQUE constraint); "pk" ones are not listed
    columns: list[str]
    plain: bool  # only named columns, no expressions, not partial


@dataclass
class ForeignKeyInfo:
    columns: list[str]
    parent: str
    parent_columns: list[str]
    on_update: str
    on_delete: str


@dataclass
class TableInfo:
    name: str
    columns: list[ColumnInfo]
    indexes: list[IndexInfo]
    foreign_keys: list[ForeignKeyInfo]
    rows: int

    @property
    def pk_columns(self) -> list[str]:
        return [c.name for c in sorted((c for c in self.columns if c.pk), key=lambda c: c.pk)]


@dataclass
class Source:
    builder: str
    scale: int
    seed: int
    path: str
    size_bytes: int
    tables: list[TableInfo]
    variant: str = ""

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def size_mb(self) -> float:
        return self.size_bytes / MB


@dataclass
class Outcome:
    returncode: int | None
    seconds: float
    peak_rss_kb: int | None
    cpu_seconds: float | None
    cpu_busy_during: float | None
    timed_out: bool
    stdout_path: str
    stderr_path: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclass
class TargetCheck:
    valid: bool
    mismatches: list[str]
    rows_loaded: int
    pk: tuple[int, int]  # (found, expected)
    fk: tuple[int, int]
    indexes: tuple[int, int]
    notnull: tuple[int, int]
    floor_types: tuple[int, int]


@dataclass
class Measurement:
    section: str
    tool: str
    scale: int
    repeat: int
    database: str
    command: str
    status: str  # "ok", "invalid", "failed", "timeout", "skipped"
    seconds: float | None = None
    peak_rss_kb: int | None = None
    cpu_seconds: float | None = None
    cpu_busy_during: float | None = None
    loadavg_before: float | None = None
    cpu_busy_before: float | None = None
    error: str | None = None
    check: TargetCheck | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    log: str = ""


@dataclass
class Settings:
    scales: list[int]
    seed: int
    repeats: int
    target: str
    tools: list[str]
    sections: list[str]
    workdir: Path
    out: Path
    json_path: Path
    timeout: float
    source_builder: str
    sqlite2pg: str
    python: str
    pgloader_args: list[str]
    strategies: list[str]
    fractions: list[float]
    rounds: int
    levels: list[str]
    rebuild: bool
    keep_dbs: bool
    install: bool
    quiet_wait: float
    argv: list[str]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def install_package(name: str) -> str | None:
    """``apt-get install -y NAME`` (as root, else through ``sudo -n``), refreshing the package
    lists once if the first attempt fails. None on success, else what went wrong."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return "not root and no sudo"
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "-q", name]
    log(f"{name} is missing: {shlex.join(install)}")
    for refresh in (False, True):
        try:
            if refresh:
                subprocess.run(
                    [*prefix, "apt-get", "update", "-q"],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    env=env,
                    check=False,
                )
            r = subprocess.run(
                install, capture_output=True, text=True, timeout=900, env=env, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if r.returncode == 0 and shutil.which(name):
            return None
    lines = (r.stderr or r.stdout).strip().splitlines()
    return lines[-1] if lines else f"apt-get exited with status {r.returncode}"


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def qident(name: str) -> str:
    """Quote an identifier for PostgreSQL or SQLite."""
    return '"' + name.replace('"', '""') + '"'


def qliteral(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def last_line(text: str) -> str:
    """The last line of a tool's output, skipping trailing "hint: ..." lines."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    while len(lines) > 1 and lines[-1].lower().startswith("hint:"):
        lines.pop()
    return lines[-1][:300] if lines else ""


def tail_file(path: str | Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            return last_line(f.read().decode("utf-8", "replace"))
    except OSError:
        return ""


def fold(name: str) -> str:
    """A name with case and separators dropped: InvoiceLine, invoiceline, invoice_line agree."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def redact(text: str) -> str:
    """Hide passwords in URLs (scheme://user:password@host)."""
    return re.sub(r"(://[^:/@\s]+):[^@\s]+@", r"\1:***@", text)


def shell_join(cmd: Sequence[str]) -> str:
    """A command as it would be typed from the repository root, passwords hidden."""
    root = f"{REPO_ROOT}{os.sep}"
    return redact(shlex.join(a[len(root) :] if a.startswith(root) else a for a in cmd))


def source_revision() -> str:
    """The checkout's commit and how many files under src/ differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head}" + (f" with {len(dirty)} uncommitted file(s) under src/" if dirty else "")


def fmt_int(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_float(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def fmt_mib(kb: int | None) -> str:
    return "—" if kb is None else f"{kb / 1024:,.0f} MiB"


def fmt_fraction(value: float) -> str:
    return f"{value * 100:g}%"


def cpu_times() -> tuple[int, int] | None:
    """(idle + iowait, total) jiffies over all cores since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])
    except (OSError, ValueError, IndexError):
        return None


def busy_between(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of all cores' time spent busy between two `cpu_times` samples."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 1 - (after[0] - before[0]) / (after[1] - before[1])


def cpu_busy(window: float = 1.0) -> float | None:
    """Share of all cores' time spent busy over the next `window` seconds."""
    before = cpu_times()
    time.sleep(window)
    return busy_between(before, cpu_times())


def wait_for_quiet(max_wait: float, threshold: float) -> float | None:
    """Wait (up to `max_wait` seconds) until other work leaves the CPUs nearly idle.

    Between measurements nothing of ours runs, so busy CPU belongs to someone else. Returns the
    last busy share seen (None where /proc/stat is unreadable).
    """
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    announced = False
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        if not announced:
            log(f"  waiting for the CPUs to quieten ({busy:.0%} busy) ...")
            announced = True
        busy = cpu_busy(2.0)
    return busy


def command_version(cmd: Sequence[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    text = (r.stdout or r.stderr).strip()
    if r.returncode != 0:
        return f"unavailable (exit {r.returncode}: {last_line(r.stderr or r.stdout)})"
    return text.splitlines()[0] if text else "unknown"


# --------------------------------------------------------------------------------------------
# PostgreSQL through psql
# --------------------------------------------------------------------------------------------


def psql(url: str, sql: str, timeout: float = 900) -> list[list[str]]:
    """Run SQL (one or more statements, autocommit) and return tab-separated rows."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", url]
    try:
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"psql timed out after {timeout:.0f}s running: {sql[:80]}") from exc
    if r.returncode != 0:
        raise BenchError(f"psql failed ({last_line(r.stderr)}) running: {sql[:120]}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def create_database(admin_url: str, name: str) -> str:
    psql(admin_url, f"DROP DATABASE IF EXISTS {qident(name)} WITH (FORCE);")
    psql(admin_url, f"CREATE DATABASE {qident(name)};")
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    try:
        psql(admin_url, f"DROP DATABASE IF EXISTS {qident(name)} WITH (FORCE);")
    except BenchError as exc:
        log(f"warning: could not drop {name}: {exc}")


def checkpoint(admin_url: str) -> None:
    """Flush dirty buffers so that one run's writes are not paid for by the next one."""
    try:
        psql(admin_url, "CHECKPOINT;")
    except BenchError as exc:
        log(f"warning: CHECKPOINT failed: {exc}")


# --------------------------------------------------------------------------------------------
# SQLite catalog
# --------------------------------------------------------------------------------------------


def read_catalog(path: str | Path, only: Iterable[str] | None = None) -> list[TableInfo]:
    """Tables of an SQLite file with their columns, indexes, foreign keys and row counts."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            )
        ]
        if only is not None:
            wanted = set(only)
            names = [n for n in names if n in wanted]
        tables: list[TableInfo] = []
        for name in names:
            q = qident(name)
            columns = [
                ColumnInfo(name=r[1], declared=r[2] or "", notnull=bool(r[3]), pk=int(r[5]))
                for r in con.execute(f"PRAGMA table_xinfo({q})")
                if r[6] == 0  # skip hidden and generated columns
            ]
            indexes: list[IndexInfo] = []
            for r in con.execute(f"PRAGMA index_list({q})"):
                idx_name, unique, origin, partial = r[1], bool(r[2]), r[3], bool(r[4])
                if origin == "pk":
                    continue
                info = list(con.execute(f"PRAGMA index_info({qident(idx_name)})"))
                cols = [c[2] for c in info]
                plain = not partial and all(c is not None for c in cols)
                indexes.append(IndexInfo(idx_name, unique, origin, [str(c) for c in cols], plain))
            fks: dict[int, ForeignKeyInfo] = {}
            for r in con.execute(f"PRAGMA foreign_key_list({q})"):
                fk_id, parent, col, pcol, on_update, on_delete = r[0], r[2], r[3], r[4], r[5], r[6]
                fk = fks.setdefault(fk_id, ForeignKeyInfo([], parent, [], on_update, on_delete))
                fk.columns.append(col)
                if pcol is not None:
                    fk.parent_columns.append(pcol)
            rows = int(con.execute(f"SELECT count(*) FROM {q}").fetchone()[0])
            tables.append(TableInfo(name, columns, indexes, list(fks.values()), rows))
        # A foreign key that names no parent columns references the parent's primary key.
        by_name = {t.name.lower(): t for t in tables}
        for t in tables:
            for fk in t.foreign_keys:
                parent = by_name.get(fk.parent.lower())
                if not fk.parent_columns and parent is not None:
                    fk.parent_columns = parent.pk_columns
        return tables
    finally:
        con.close()


def recount(path: str | Path, tables: list[TableInfo]) -> list[TableInfo]:
    """The same tables with their row counts read again (after changes were applied)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            dataclasses.replace(
                t, rows=int(con.execute(f"SELECT count(*) FROM {qident(t.name)}").fetchone()[0])
            )
            for t in tables
        ]
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# Sample databases
# --------------------------------------------------------------------------------------------


@functools.cache
def sample_module_digest() -> str:
    """A short digest of sqlite2pg's sample generator, so that a changed generator rebuilds.

    Read once per harness run, so that every section of one run uses the same samples.
    """
    path = REPO_ROOT / "src" / "sqlite2pg" / "sample.py"
    if not path.exists():
        return "absent"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def build_chinook_dev(out: Path, scale: int) -> None:
    """DEV AID ONLY: Chinook repeated `scale` times, every key offset so that keys stay unique.

    The published numbers must come from ``sqlite2pg sample`` (``--source-builder sample``).
    """
    shutil.copyfile(CHINOOK, out)
    base = read_catalog(CHINOOK)
    offsets: dict[str, int] = {}
    con = sqlite3.connect(out)
    try:
        for t in base:
            pk = t.pk_columns
            if len(pk) == 1:
                row = con.execute(f"SELECT max({qident(pk[0])}) FROM {qident(t.name)}").fetchone()
                offsets[t.name.lower()] = int(row[0] or 0)
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.execute("ATTACH DATABASE ? AS base", (f"file:{CHINOOK}?mode=ro",))
        for t in base if scale > 1 else []:
            fk_parent = {c: fk.parent.lower() for fk in t.foreign_keys for c in fk.columns}
            exprs = []
            for c in t.columns:
                if t.pk_columns == [c.name] and t.name.lower() in offsets:
                    exprs.append(f"b.{qident(c.name)} + k.n * {offsets[t.name.lower()]}")
                elif c.name in fk_parent and fk_parent[c.name] in offsets:
                    exprs.append(f"b.{qident(c.name)} + k.n * {offsets[fk_parent[c.name]]}")
                else:
                    exprs.append(f"b.{qident(c.name)}")
            cols = ", ".join(qident(c.name) for c in t.columns)
            con.execute(
                f"WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?) "
                f"INSERT INTO main.{qident(t.name)} ({cols}) "
                f"SELECT {', '.join(exprs)} FROM k, base.{qident(t.name)} AS b "
                f"ORDER BY k.n, b.rowid",
                (scale - 1,),
            )
            con.commit()
    finally:
        con.close()


def source_path(settings: Settings, scale: int, variant: str = "") -> Path:
    suffix = f"-{variant}" if variant else ""
    if settings.source_builder == "chinook-dev":
        return settings.workdir / "sources" / f"chinook-dev-s{scale}{suffix}.db"
    return settings.workdir / "sources" / f"sample-s{scale}-seed{settings.seed}{suffix}.db"


def ensure_source(settings: Settings, scale: int, variant: str = "") -> Source:
    """Build (or reuse the cached) source database for a scale; variant "updated_at" or ""."""
    path = source_path(settings, scale, variant)
    meta_path = path.with_suffix(".json")
    digest = sample_module_digest() if settings.source_builder == "sample" else "chinook"
    if path.exists() and meta_path.exists() and not settings.rebuild:
        meta = json.loads(meta_path.read_text())
        if meta.get("digest") == digest and meta.get("size_bytes") == path.stat().st_size:
            tables = [
                TableInfo(
                    name=t["name"],
                    columns=[ColumnInfo(**c) for c in t["columns"]],
                    indexes=[IndexInfo(**i) for i in t["indexes"]],
                    foreign_keys=[ForeignKeyInfo(**f) for f in t["foreign_keys"]],
                    rows=t["rows"],
                )
                for t in meta["tables"]
            ]
            return Source(
                settings.source_builder,
                scale,
                settings.seed,
                str(path),
                path.stat().st_size,
                tables,
                variant,
            )
    if settings.source_builder == "chinook-dev" and variant:
        raise BenchError(f"the chinook-dev builder has no {variant!r} variant")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    started = time.perf_counter()
    log(f"building source {path.name} ...")
    if settings.source_builder == "chinook-dev":
        build_chinook_dev(tmp, scale)
    else:
        cmd = [settings.python, "-m", "sqlite2pg", "sample", str(tmp)]
        cmd += ["--scale", str(scale), "--seed", str(settings.seed)]
        if variant == "updated_at":
            cmd.append("--updated-at")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=settings.timeout * 2)
        if r.returncode != 0 or not tmp.exists():
            raise BenchError(
                f"building the sample failed: {shell_join(cmd)}: "
                f"{last_line(r.stderr) or f'exit {r.returncode}'}\n"
                "hint: until `sqlite2pg sample` exists, develop with --source-builder chinook-dev"
            )
    tmp.replace(path)
    tables = read_catalog(path)
    meta = {
        "builder": settings.source_builder,
        "scale": scale,
        "seed": settings.seed,
        "variant": variant,
        "digest": digest,
        "size_bytes": path.stat().st_size,
        "tables": [dataclasses.asdict(t) for t in tables],
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    source = Source(
        settings.source_builder,
        scale,
        settings.seed,
        str(path),
        meta["size_bytes"],
        tables,
        variant,
    )
    log(
        f"built {path.name}: {source.total_rows:,} rows, {source.size_mb:.1f} MB "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return source


# --------------------------------------------------------------------------------------------
# The floor: sqlite3 -csv | psql \copy, then keys, indexes and foreign keys
# --------------------------------------------------------------------------------------------


def floor_type(declared: str) -> str:
    """The column type a careful DBA would pick for an SQLite declared type (format_type form)."""
    d = declared.strip().upper()
    m = re.match(r"^([A-Z_ ]*?)\s*(?:\(\s*([0-9]+)\s*(?:,\s*([0-9]+)\s*)?\))?$", d)
    base = m.group(1).strip() if m else d
    n1 = m.group(2) if m else None
    n2 = m.group(3) if m else None
    if "INT" in base:
        return "bigint"
    if any(word in base for word in ("CHAR", "CLOB", "TEXT")):
        return f"character varying({n1})" if n1 and "TEXT" not in base else "text"
    if "BLOB" in base:
        return "bytea"
    if any(word in base for word in ("REAL", "FLOA", "DOUB")):
        return "double precision"
    if base in ("NUMERIC", "DECIMAL"):
        if n1 and n2:
            return f"numeric({n1},{n2})"
        return f"numeric({n1},0)" if n1 else "numeric"
    if base in ("DATETIME", "TIMESTAMP"):
        return "timestamp without time zone"
    if base == "DATE":
        return "date"
    if base.startswith("BOOL"):
        return "boolean"
    return "text"


def floor_select_expr(column: ColumnInfo) -> str:
    """The SQLite expression that prints a column so that COPY (FORMAT csv) reads it back."""
    q = qident(column.name)
    pg_type = floor_type(column.declared)
    if pg_type == "bytea":  # bytea hex input; NULL must stay an empty unquoted field
        return f"CASE WHEN {q} IS NULL THEN NULL ELSE '\\x' || hex({q}) END"
    if pg_type == "double precision":  # the shell prints 15 digits; 17 round-trip a double
        return f"CASE WHEN typeof({q}) = 'real' THEN printf('%.17g', {q}) ELSE {q} END"
    return q


def floor_script(source: Source, out: Path) -> Path:
    """Write a self-contained bash script that loads `source` into $FLOOR_URL."""
    pre: list[str] = []
    post_pk: list[str] = []
    post_idx: list[str] = []
    post_fk: list[str] = []
    for t in source.tables:
        cols = [
            f"  {qident(c.name)} {floor_type(c.declared)}{' NOT NULL' if c.notnull else ''}"
            for c in t.columns
        ]
        pre.append(f"CREATE TABLE {qident(t.name)} (\n" + ",\n".join(cols) + "\n);")
        if t.pk_columns:
            post_pk.append(
                f"ALTER TABLE {qident(t.name)} ADD PRIMARY KEY "
                f"({', '.join(qident(c) for c in t.pk_columns)});"
            )
        for ix in t.indexes:
            if not ix.plain:
                continue  # expression and partial indexes are not part of the floor
            cols_sql = ", ".join(qident(c) for c in ix.columns)
            if ix.origin == "u":
                post_idx.append(f"ALTER TABLE {qident(t.name)} ADD UNIQUE ({cols_sql});")
            else:
                unique = "UNIQUE " if ix.unique else ""
                post_idx.append(
                    f"CREATE {unique}INDEX {qident(ix.name)} ON {qident(t.name)} ({cols_sql});"
                )
        for fk in t.foreign_keys:
            actions = ""
            if fk.on_delete.upper() not in ("NO ACTION", ""):
                actions += f" ON DELETE {fk.on_delete.upper()}"
            if fk.on_update.upper() not in ("NO ACTION", ""):
                actions += f" ON UPDATE {fk.on_update.upper()}"
            post_fk.append(
                f"ALTER TABLE {qident(t.name)} ADD FOREIGN KEY "
                f"({', '.join(qident(c) for c in fk.columns)}) REFERENCES {qident(fk.parent)} "
                f"({', '.join(qident(c) for c in fk.parent_columns)}){actions};"
            )
    psql_cmd = 'psql -X -q -v ON_ERROR_STOP=1 -d "$FLOOR_URL"'
    lines = [
        "#!/usr/bin/env bash",
        f"# Floor load of {Path(source.path).name}, generated by benchmarks/run.py.",
        "# Usage: FLOOR_URL=postgresql://user@host/db bash THIS_SCRIPT",
        "# sqlite3 -csv writes NULL as an empty unquoted field and '' as \"\": COPY (FORMAT csv)",
        "# reads them back as NULL and the empty string.",
        "set -euo pipefail",
        ': "${FLOOR_URL:?set FLOOR_URL to the target database URL}"',
        f"SRC={shlex.quote(source.path)}",
        "export PGCLIENTENCODING=UTF8",
        f"{psql_cmd} <<'SQL'",
        *pre,
        "SQL",
    ]
    for t in source.tables:
        select = (
            f"SELECT {', '.join(floor_select_expr(c) for c in t.columns)} FROM {qident(t.name)};"
        )
        copy = (
            f"\\copy {qident(t.name)} ({', '.join(qident(c.name) for c in t.columns)}) "
            "FROM pstdin WITH (FORMAT csv)"
        )
        lines.append(
            f'sqlite3 -batch -readonly -init /dev/null -csv -noheader "$SRC" {shlex.quote(select)}'
            f" \\\n  | {psql_cmd} -c {shlex.quote(copy)}"
        )
    lines += [f"{psql_cmd} <<'SQL'", *post_pk, *post_idx, *post_fk, "SQL", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return out


# --------------------------------------------------------------------------------------------
# Running and checking one measurement
# --------------------------------------------------------------------------------------------


def run_timed(
    cmd: Sequence[str], *, env: dict[str, str], timeout: float, log_stem: Path, cwd: Path
) -> Outcome:
    """Run a command in its own process group: wall seconds, and the peak RSS and CPU seconds
    (user + system) of its process tree; also how busy all CPUs were meanwhile.

    `cwd` is a directory of the run's own, so that files a tool keeps in its working directory
    (sqlite2pg's state database and run lock) neither leak between runs nor into the checkout.
    """
    log_stem.parent.mkdir(parents=True, exist_ok=True)
    out_path = log_stem.with_name(log_stem.name + ".out")
    err_path = log_stem.with_name(log_stem.name + ".err")
    rss_path = log_stem.with_name(log_stem.name + ".rss")
    rss_path.unlink(missing_ok=True)
    if os.access(GNU_TIME, os.X_OK):
        wrapped = [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_path), "--", *cmd]
    else:
        wrapped = [sys.executable, "-c", RUSAGE_WRAPPER, str(rss_path), *cmd]
    timed_out = False
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        jiffies = cpu_times()
        started = time.perf_counter()
        proc = subprocess.Popen(
            wrapped,
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the group this harness started for the run
            proc.wait()
            rc = None
        seconds = time.perf_counter() - started
        busy = busy_between(jiffies, cpu_times())
    peak: int | None = None
    cpu: float | None = None
    try:  # "Command exited with non-zero status N" may precede the figures
        for line in rss_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].isdigit():
                peak, cpu = int(parts[0]), round(float(parts[1]) + float(parts[2]), 2)
    except (OSError, ValueError):
        pass
    outcome = Outcome(rc, seconds, peak, cpu, busy, timed_out, str(out_path), str(err_path))
    if timed_out:
        outcome.error = f"timed out after {timeout:g} s"
    elif rc != 0:
        outcome.error = f"exit {rc}: {tail_file(err_path) or tail_file(out_path)}"
    return outcome


def max_or_none(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def record(m: Measurement, outcome: Outcome) -> None:
    """Copy the figures of a finished command into its measurement."""
    m.seconds = round(outcome.seconds, 3)
    m.peak_rss_kb = outcome.peak_rss_kb
    m.cpu_seconds = outcome.cpu_seconds
    m.cpu_busy_during = (
        None if outcome.cpu_busy_during is None else round(outcome.cpu_busy_during, 3)
    )


def target_catalog(url: str) -> dict[str, tuple[str, str]]:
    """Table name, then its folded form -> (schema, name) of user tables; public schema first.

    Tools name tables differently (Album, album, media_type for MediaType); an exact name wins,
    then the folded one (see `fold`).
    """
    rows = psql(
        url,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY (n.nspname = 'public') DESC, n.nspname",
    )
    found: dict[str, tuple[str, str]] = {}
    for schema, name in rows:
        found.setdefault(name, (schema, name))
    for schema, name in rows:
        found.setdefault(fold(name), (schema, name))
    return found


def check_target(url: str, tables: list[TableInfo]) -> TargetCheck:
    """Row counts per table against SQLite, plus what schema objects the load built."""
    catalog = target_catalog(url)
    mismatches: list[str] = []
    located: dict[str, tuple[str, str]] = {}
    for t in tables:
        hit = catalog.get(t.name) or catalog.get(fold(t.name))
        if hit is None:
            mismatches.append(f"{t.name}: table missing")
        else:
            located[t.name] = hit
    rows_loaded = 0
    if located:
        union = " UNION ALL ".join(
            f"SELECT {qliteral(name)}, count(*) FROM {qident(s)}.{qident(n)}"
            for name, (s, n) in located.items()
        )
        counts = {r[0]: int(r[1]) for r in psql(url, union + ";")}
        for t in tables:
            if t.name in counts:
                rows_loaded += counts[t.name]
                if counts[t.name] != t.rows:
                    mismatches.append(f"{t.name}: {counts[t.name]:,} rows, expected {t.rows:,}")
    oids = ", ".join(
        qliteral(f"{qident(s)}.{qident(n)}") + "::regclass" for s, n in located.values()
    )
    pk = fk = idx = 0
    notnull_found = types_found = 0
    if oids:
        r = psql(
            url,
            f"SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
            f"AND conrelid IN ({oids})), "
            f"(SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN ({oids})), "
            f"(SELECT count(*) FROM pg_index i WHERE indrelid IN ({oids}) AND NOT EXISTS "
            f"(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype = 'p'))",
        )[0]
        pk, fk, idx = int(r[0]), int(r[1]), int(r[2])
        cols = psql(
            url,
            "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
            "a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE a.attrelid IN ({oids}) AND a.attnum > 0 AND NOT a.attisdropped",
        )
        names = {where: name for name, where in located.items()}
        by_table: dict[str, dict[str, tuple[str, bool]]] = {}
        for schema, rel, att, pg_type, notnull in cols:
            by_table.setdefault(names[(schema, rel)], {})[fold(att)] = (pg_type, notnull == "t")
        for t in tables:
            have = by_table.get(t.name, {})
            for c in t.columns:
                typ, nn = have.get(fold(c.name), ("", False))
                if nn and (c.notnull or c.pk):
                    notnull_found += 1
                if typ == floor_type(c.declared):
                    types_found += 1
    expected_pk = sum(1 for t in tables if t.pk_columns)
    expected_fk = sum(len(t.foreign_keys) for t in tables)
    expected_idx = sum(len(t.indexes) for t in tables)
    expected_nn = sum(1 for t in tables for c in t.columns if c.notnull or c.pk)
    expected_types = sum(len(t.columns) for t in tables)
    return TargetCheck(
        valid=not mismatches,
        mismatches=mismatches,
        rows_loaded=rows_loaded,
        pk=(pk, expected_pk),
        fk=(fk, expected_fk),
        indexes=(idx, expected_idx),
        notnull=(notnull_found, expected_nn),
        floor_types=(types_found, expected_types),
    )


class Bench:
    """One harness run: settings, the machine, and every measurement taken."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.admin_url = settings.target
        self.counter = 0
        self.measurements: list[Measurement] = []
        self.sources: dict[int, Source] = {}
        self.notes: list[str] = []
        self.commands: dict[str, str] = {}
        self.env = dict(os.environ)
        self.env.setdefault("PGCLIENTENCODING", "UTF8")
        self.started = dt.datetime.now(dt.timezone.utc)
        self.machine: dict[str, Any] = {}
        self.available: dict[str, bool] = {}

    # -- helpers ------------------------------------------------------------------------------

    def next_db(self, label: str) -> str:
        self.counter += 1
        return f"bench_{re.sub(r'[^a-z0-9]+', '_', label.lower())}_{self.counter}"

    def settle(self, m: Measurement) -> None:
        """Just before a timed command: wait for a quiet machine, record how quiet it was."""
        busy = wait_for_quiet(self.s.quiet_wait, QUIET_BUSY) if self.s.quiet_wait > 0 else None
        m.cpu_busy_before = None if busy is None else round(busy, 3)
        m.loadavg_before = round(os.getloadavg()[0], 2)

    def run_dir(self, dbname: str) -> Path:
        """An empty working directory for one run (removed after a successful run)."""
        path = self.s.workdir / "runs" / dbname
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def log_stem(self, scale: int, label: str) -> Path:
        run = self.started.strftime("%Y%m%dT%H%M%S")
        return self.s.workdir / "logs" / run / f"s{scale}" / f"{self.counter:03d}-{label}"

    def sqlite2pg_cmd(self, *args: str) -> list[str]:
        return [self.s.sqlite2pg, *args]

    def load_command(self, tool: str, source: Source, url: str, floor: Path) -> list[str]:
        if tool == "floor":
            return ["bash", str(floor)]
        if tool == "pgloader":
            root = self.s.workdir / "runs" / url.rsplit("/", 1)[-1] / "pgloader"
            return [
                "pgloader",
                "--root-dir",
                str(root),
                *self.s.pgloader_args,
                f"sqlite://{Path(source.path).resolve()}",
                url,
            ]
        verify = ["--verify", "off"] if tool == "sqlite2pg" else []
        return self.sqlite2pg_cmd(
            "sync", "--source", source.path, "--target", url, *verify, "--json"
        )

    def probe_tools(self) -> None:
        wants_pgloader = "pgloader" in self.s.tools
        if wants_pgloader and shutil.which("pgloader") is None and self.s.install:
            problem = install_package("pgloader")
            if problem:
                self.notes.append(f"installing pgloader failed: {problem}.")
            else:
                self.notes.append("pgloader was missing; the harness installed it with apt-get.")
        self.available = {
            "floor": bool(shutil.which("sqlite3") and shutil.which("psql")),
            "pgloader": shutil.which("pgloader") is not None,
            "sqlite2pg": os.access(self.s.sqlite2pg, os.X_OK),
        }
        self.available["sqlite2pg-verify"] = self.available["sqlite2pg"]
        self.byte_compile()
        if not self.available["pgloader"] and wants_pgloader:
            self.notes.append(
                "pgloader is not installed here, so it was skipped "
                "(Debian/Ubuntu: `apt-get install -y pgloader`)."
            )
        if not self.available["floor"] and "floor" in self.s.tools:
            self.notes.append("the floor needs the sqlite3 and psql programs; skipped.")
        if not self.available["sqlite2pg"]:
            self.notes.append(f"{self.s.sqlite2pg} is not executable; sqlite2pg rows failed.")

    def byte_compile(self) -> None:
        """Write sqlite2pg's .pyc files, as `pip install` does for a regular install.

        An editable install has none, and with PYTHONDONTWRITEBYTECODE set (as on CI machines)
        every run would compile the package again: ~0.1 s that a user's install does not pay,
        a noticeable share of a one-second incremental run."""
        code = "import os, sqlite2pg; print(os.path.dirname(sqlite2pg.__file__))"
        found = subprocess.run([self.s.python, "-c", code], capture_output=True, text=True)
        if found.returncode != 0:
            return  # sqlite2pg is not importable here: its runs fail and say why
        package = found.stdout.strip()
        done = subprocess.run(
            [self.s.python, "-m", "compileall", "-q", package], capture_output=True, text=True
        )
        if done.returncode != 0:
            self.notes.append(f"byte-compiling {package} failed: {last_line(done.stderr)}.")

    # -- full load ----------------------------------------------------------------------------

    def measure_load(self, tool: str, source: Source, repeat: int, floor: Path) -> Measurement:
        dbname = self.next_db(tool)
        url = with_database(self.admin_url, dbname)
        cmd = self.load_command(tool, source, url, floor)
        env = dict(self.env)
        if tool == "floor":
            env["FLOOR_URL"] = url
            shown = f"FLOOR_URL={redact(url)} {shell_join(['bash', str(floor)])}"
        else:
            shown = shell_join(cmd)
        m = Measurement("full", tool, source.scale, repeat, dbname, shown, "failed")
        if not self.available.get(tool, False):
            m.status, m.error = "skipped", "not available"
            return m
        try:
            create_database(self.admin_url, dbname)
            checkpoint(self.admin_url)
            self.settle(m)
            stem = self.log_stem(source.scale, tool)
            m.log = str(stem)
            cwd = self.run_dir(dbname)
            outcome = run_timed(cmd, env=env, timeout=self.s.timeout, log_stem=stem, cwd=cwd)
            record(m, outcome)
            if outcome.timed_out:
                m.status, m.error = "timeout", outcome.error
            elif not outcome.ok:
                m.status, m.error = "failed", outcome.error
            else:
                m.check = check_target(url, source.tables)
                m.status = "ok" if m.check.valid else "invalid"
                if not m.check.valid:
                    m.error = "; ".join(m.check.mismatches[:4])
        except BenchError as exc:
            m.status, m.error = "failed", str(exc)
        finally:
            if not self.s.keep_dbs:
                drop_database(self.admin_url, dbname)
            if m.status == "ok":
                shutil.rmtree(self.s.workdir / "runs" / dbname, ignore_errors=True)
        rate = (
            f"{source.total_rows / m.seconds:,.0f} rows/s" if m.status == "ok" and m.seconds else ""
        )
        log(
            f"  {tool:<17} s{source.scale} #{repeat + 1}: {m.status} "
            f"{fmt_float(m.seconds)} s {rate} {m.error or ''}"
            + (f" (CPU {m.cpu_busy_before:.0%} busy before)" if m.cpu_busy_before else "")
        )
        return m

    def run_full(self, source: Source) -> None:
        floor = floor_script(source, self.s.workdir / "floor" / f"{Path(source.path).stem}.sh")
        self.commands["floor"] = "FLOOR_URL=postgresql://…/bench_floor_N " + shell_join(
            ["bash", str(floor)]
        )
        for tool in ("pgloader", "sqlite2pg", "sqlite2pg-verify"):
            example = self.load_command(
                tool,
                source,
                with_database(self.admin_url, f"bench_{tool.replace('-', '_')}_N"),
                floor,
            )
            self.commands[tool] = shell_join(example)
        for repeat in range(self.s.repeats):
            for tool in self.s.tools:
                self.measurements.append(self.measure_load(tool, source, repeat, floor))

    def full_load_seconds(self, scale: int) -> float | None:
        times = [
            m.seconds
            for m in self.measurements
            if m.section == "full"
            and m.tool == "sqlite2pg"
            and m.scale == scale
            and m.status == "ok"
            and m.seconds is not None
        ]
        return statistics.median(times) if times else None

    # -- incremental sync ---------------------------------------------------------------------

    def run_incremental(self, scale: int) -> None:
        self.commands["incremental"] = (
            "sqlite2pg sync --source COPY.db --target postgresql://…/bench_incr_<s>_N "
            "--config sqlite2pg.yaml --verify off --json once, then --rounds times, each timed "
            "and each after python -c 'from sqlite2pg.sample import apply_changes; "
            'apply_changes("COPY.db", fraction=F, seed=SEED+ROUND)\''
        )
        for strategy in self.s.strategies:
            for fraction in self.s.fractions:
                self.measurements.append(self.bench_incremental_sync(scale, strategy, fraction))

    def bench_incremental_sync(self, scale: int, strategy: str, fraction: float) -> Measurement:
        """Load, change `fraction` of the rows, then time one `sqlite2pg sync` with `strategy`.

        The timestamp strategy runs on the sample variant that has an updated_at column.
        """
        label = f"incr-{strategy}-{fraction:g}"
        dbname = self.next_db(f"incr_{strategy}")
        url = with_database(self.admin_url, dbname)
        workdir = self.run_dir(dbname)
        copy = workdir / "source.db"
        config = workdir / "sqlite2pg.yaml"
        sync = self.sqlite2pg_cmd(
            "sync", "--source", str(copy), "--target", url, "--config", str(config),
            "--verify", "off", "--json",
        )  # fmt: skip
        m = Measurement("incremental", strategy, scale, 0, dbname, shell_join(sync), "failed")
        m.extra = {"fraction": fraction}
        try:
            variant = "updated_at" if strategy == "timestamp" else ""
            source = ensure_source(self.s, scale, variant)
            shutil.copyfile(source.path, copy)
            synced = write_strategy_config(config, source.tables, strategy)
            left_out = [t.name for t in source.tables if t not in synced]
            if left_out:
                m.extra["left_out"] = left_out
            create_database(self.admin_url, dbname)
            stem = self.log_stem(scale, label)
            initial = run_timed(
                sync,
                env=self.env,
                timeout=self.s.timeout,
                log_stem=stem.with_name(stem.name + "-0"),
                cwd=workdir,
            )
            m.extra["initial_seconds"] = round(initial.seconds, 3)
            if not initial.ok:
                m.status, m.error = "failed", f"initial sync: {initial.error}"
                return m
            rounds: list[tuple[Outcome, str]] = []
            for n in range(self.s.rounds):  # a new seed each round: another week of changes
                changed = apply_sample_changes(self.s, copy, fraction, strategy, round_=n)
                checkpoint(self.admin_url)
                self.settle(m)
                m.log = str(stem) if n == 0 else f"{stem}-r{n}"
                outcome = run_timed(
                    sync, env=self.env, timeout=self.s.timeout, log_stem=Path(m.log), cwd=workdir
                )
                if not outcome.ok:
                    record(m, outcome)
                    m.status = "timeout" if outcome.timed_out else "failed"
                    m.error = f"round {n + 1}: {outcome.error}"
                    return m
                rounds.append((outcome, changed))
            by_time = sorted(rounds, key=lambda r: r[0].seconds)
            median, m.extra["changes"] = by_time[(len(by_time) - 1) // 2]
            record(m, median)
            m.peak_rss_kb = max_or_none(r[0].peak_rss_kb for r in rounds)
            m.extra["round_seconds"] = [round(r[0].seconds, 3) for r in rounds]
            m.check = check_target(url, recount(copy, synced))
            m.status = "ok" if m.check.valid else "invalid"
            m.error = "; ".join(m.check.mismatches[:4]) or None
        except BenchError as exc:
            m.status, m.error = "failed", str(exc)
        finally:
            if not self.s.keep_dbs:
                drop_database(self.admin_url, dbname)
            copy.unlink(missing_ok=True)
            if m.status == "ok":
                shutil.rmtree(workdir, ignore_errors=True)
            log(f"  incremental {strategy} {fmt_fraction(fraction)} s{scale}: {m.status} "
                f"{fmt_float(m.seconds)} s {m.error or ''}")  # fmt: skip
        return m

    # -- verify -------------------------------------------------------------------------------

    def bench_verify_levels(self, scale: int) -> None:
        """Load once with sqlite2pg, then time `sqlite2pg verify --level L` for each level."""
        source = ensure_source(self.s, scale)
        probe = subprocess.run(
            self.sqlite2pg_cmd("verify", "--help"), capture_output=True, text=True, timeout=60
        )
        if probe.returncode != 0:  # no command yet: record that rather than load for nothing
            error = f"exit {probe.returncode}: {last_line(probe.stderr or probe.stdout)}"
            for level in self.s.levels:
                cmd = self.sqlite2pg_cmd("verify", "--level", level)
                self.measurements.append(
                    Measurement("verify", level, scale, 0, "", shell_join(cmd), "failed",
                                error=error)
                )  # fmt: skip
                log(f"  verify {level} s{scale}: failed {error}")
            return
        dbname = self.next_db("verify")
        url = with_database(self.admin_url, dbname)
        example = ["verify", "--source", source.path, "--target", url, "--level", "L", "--json"]
        self.commands["verify"] = shell_join(self.sqlite2pg_cmd(*example))
        load = self.sqlite2pg_cmd(
            "sync", "--source", source.path, "--target", url, "--verify", "off", "--json"
        )
        workdir = self.run_dir(dbname)
        try:
            create_database(self.admin_url, dbname)
            stem = self.log_stem(scale, "verify-load")
            loaded = run_timed(
                load, env=self.env, timeout=self.s.timeout, log_stem=stem, cwd=workdir
            )
            for level in self.s.levels:
                cmd = self.sqlite2pg_cmd(
                    "verify", "--source", source.path, "--target", url, "--level", level, "--json"
                )
                for repeat in range(self.s.repeats):
                    m = Measurement("verify", level, scale, repeat, dbname, shell_join(cmd), "")
                    if not loaded.ok:
                        m.status, m.error = "failed", f"load before verify: {loaded.error}"
                    else:
                        self.settle(m)
                        stem = self.log_stem(scale, f"verify-{level}-{repeat}")
                        m.log = str(stem)
                        outcome = run_timed(
                            cmd, env=self.env, timeout=self.s.timeout, log_stem=stem, cwd=workdir
                        )
                        record(m, outcome)
                        m.status = "ok" if outcome.ok else (
                            "timeout" if outcome.timed_out else "failed"
                        )  # fmt: skip
                        m.error = outcome.error
                    log(f"  verify {level} s{scale} #{repeat + 1}: {m.status} "
                        f"{fmt_float(m.seconds)} s {m.error or ''}")  # fmt: skip
                    self.measurements.append(m)
                    if m.status != "ok":
                        break  # a failing level fails the same way on every repeat
        except BenchError as exc:
            self.measurements.append(
                Measurement("verify", "load", scale, 0, dbname, shell_join(load), "failed",
                            error=str(exc))
            )  # fmt: skip
        finally:
            if not self.s.keep_dbs:
                drop_database(self.admin_url, dbname)

    # -- the whole run ------------------------------------------------------------------------

    def run(self) -> None:
        self.probe_tools()  # first: it may install pgloader, whose version the machine names
        self.machine = describe_machine(self.s)
        for scale in self.s.scales:
            source = ensure_source(self.s, scale)
            self.sources[scale] = source
            log(
                f"scale {scale}: {source.total_rows:,} rows in {len(source.tables)} tables, "
                f"{source.size_mb:.1f} MB"
            )
            if "full" in self.s.sections:
                self.run_full(source)
            if "incremental" in self.s.sections:
                self.run_incremental(scale)
            if "verify" in self.s.sections:
                self.bench_verify_levels(scale)
            self.write_outputs()  # keep what is measured so far if a later scale fails

    def write_outputs(self) -> None:
        self.s.out.parent.mkdir(parents=True, exist_ok=True)
        self.s.out.write_text(render_markdown(self))
        self.s.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.s.json_path.write_text(json.dumps(results_json(self), indent=1) + "\n")


def appendable(table: TableInfo) -> bool:
    """Whether the append strategy can follow a table: a single integer primary key."""
    pk = [c for c in table.columns if c.pk]
    return len(pk) == 1 and "INT" in pk[0].declared.upper()


def write_strategy_config(path: Path, tables: list[TableInfo], strategy: str) -> list[TableInfo]:
    """A sqlite2pg config selecting one change-detection strategy for every table.

    Append needs a growing integer key; tables without one (Chinook's PlaylistTrack) are left
    out of the append run rather than measured with another strategy. Returns the tables synced.
    """
    lines = ["# generated by benchmarks/run.py", "tables:"]
    synced: list[TableInfo] = []
    for t in tables:
        if strategy == "append" and not appendable(t):
            lines.append(f"  {json.dumps(t.name)}: {{include: false}}")
            continue
        has_updated_at = any(c.name == "updated_at" for c in t.columns)
        column = ", column: updated_at" if strategy == "timestamp" and has_updated_at else ""
        lines.append(f"  {json.dumps(t.name)}: {{strategy: {strategy}{column}}}")
        synced.append(t)
    path.write_text("\n".join(lines) + "\n")
    return synced


def apply_sample_changes(
    settings: Settings, path: Path, fraction: float, strategy: str, round_: int = 0
) -> str:
    """Change `fraction` of the rows with sqlite2pg.sample.apply_changes (seed + `round_`);
    returns its output.

    Keyword arguments are passed only where apply_changes declares them. The append strategy
    detects new rows only, so it gets inserts only; the others a mix of inserts, updates and
    deletes (apply_changes' default shares).
    """
    code = (
        "import inspect, json, sys\n"
        "from sqlite2pg.sample import apply_changes\n"
        "wanted = json.loads(sys.argv[2])\n"
        "params = inspect.signature(apply_changes).parameters\n"
        "takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())\n"
        "kwargs = {k: v for k, v in wanted.items() if takes_all or k in params}\n"
        "result = apply_changes(sys.argv[1], **kwargs)\n"
        "print(result if result is not None else '')\n"
    )
    wanted: dict[str, float] = {"fraction": fraction, "seed": settings.seed + round_}
    if strategy == "append":
        wanted |= {"inserts": 1.0, "updates": 0.0, "deletes": 0.0}
    cmd = [settings.python, "-c", code, str(path), json.dumps(wanted)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=settings.timeout)
    if r.returncode != 0:
        raise BenchError(f"apply_changes failed: {last_line(r.stderr) or f'exit {r.returncode}'}")
    return last_line(r.stdout)


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


def describe_machine(settings: Settings) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    except OSError:
        pass
    pg: dict[str, str] = {}
    try:
        names = (
            "server_version", "shared_buffers", "work_mem", "maintenance_work_mem",
            "max_wal_size", "checkpoint_timeout", "wal_level", "fsync", "synchronous_commit",
            "full_page_writes", "max_parallel_maintenance_workers", "max_worker_processes",
        )  # fmt: skip
        rows = psql(
            settings.target,
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN ("
            + ", ".join(qliteral(n) for n in names)
            + ") ORDER BY name;",
        )
        pg = {r[0]: r[1] for r in rows}
    except BenchError as exc:
        raise BenchError(f"cannot reach the target PostgreSQL: {exc}") from exc
    host = urlsplit(settings.target).hostname or "local socket"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram": ram,
        "os": os_name,
        "postgresql": pg.pop("server_version", "unknown"),
        "postgresql_host": host,
        "postgresql_settings": pg,
        "python": platform.python_version(),
        "versions": {
            "sqlite3 (shell)": command_version(["sqlite3", "--version"]).split(" ")[0],
            "sqlite3 (python module)": sqlite3.sqlite_version,
            "psql": command_version(["psql", "--version"]),
            "pgloader": command_version(["pgloader", "--version"]),
            "sqlite2pg": command_version([settings.sqlite2pg, "--version"]),
            "sqlite2pg source": source_revision(),
        },
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------------------------
# Summaries and rendering
# --------------------------------------------------------------------------------------------


@dataclass
class Summary:
    tool: str
    runs: int
    ok: int
    median: float | None
    low: float | None
    high: float | None
    rows_per_s: float | None
    mb_per_s: float | None
    peak_rss_kb: int | None
    cpu_seconds: float | None
    check: TargetCheck | None
    errors: list[str]


def summarize(bench: Bench, scale: int, tool: str) -> Summary | None:
    runs = [
        m for m in bench.measurements if m.section == "full" and m.scale == scale and m.tool == tool
    ]
    if not runs:
        return None
    source = bench.sources[scale]
    good = [m for m in runs if m.status == "ok" and m.seconds]
    times = [m.seconds for m in good if m.seconds is not None]
    median = statistics.median(times) if times else None
    rss = [m.peak_rss_kb for m in good if m.peak_rss_kb is not None]
    cpu = [m.cpu_seconds for m in good if m.cpu_seconds is not None]
    check = next((m.check for m in runs if m.check is not None), None)
    errors = sorted({f"{m.status}: {m.error}" for m in runs if m.status != "ok" and m.error})
    return Summary(
        tool=tool,
        runs=len(runs),
        ok=len(good),
        median=median,
        low=min(times) if times else None,
        high=max(times) if times else None,
        rows_per_s=source.total_rows / median if median else None,
        mb_per_s=source.size_mb / median if median else None,
        peak_rss_kb=max(rss) if rss else None,
        cpu_seconds=statistics.median(cpu) if cpu else None,
        check=check,
        errors=errors,
    )


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def schema_cell(check: TargetCheck | None) -> str:
    if check is None:
        return "—"
    parts = [
        ("PK", check.pk),
        ("FK", check.fk),
        ("idx", check.indexes),
        ("NOT NULL", check.notnull),
        ("floor types", check.floor_types),
    ]
    return " · ".join(f"{label} {found}/{expected}" for label, (found, expected) in parts)


def reproduce_command(bench: Bench) -> str:
    args = bench.s.argv
    shown = redact(shlex.join(args)) if args else ""
    return f'make bench BENCH_ARGS="{shown}"' if args else "make bench"


def render_markdown(bench: Bench) -> str:
    s, mach = bench.s, bench.machine
    out: list[str] = [
        "# Benchmarks",
        "",
        f"Generated by `benchmarks/run.py` on {bench.started:%Y-%m-%d %H:%M} UTC; rerun it to "
        "update this page rather than editing by hand. How the harness works and what each tool "
        "does: [benchmarks/README.md](../benchmarks/README.md).",
        "",
        "## Reproduce",
        "",
        "```sh",
        reproduce_command(bench),
        f"# equivalently: .venv/bin/python benchmarks/run.py {redact(shlex.join(s.argv))}".rstrip(),
        "```",
        "",
        f"Scales {', '.join(map(str, s.scales))} (Chinook multiples), seed {s.seed}, "
        f"{s.repeats} repeat(s) per tool, interleaved; timeout {s.timeout:.0f} s per measurement; "
        f"sources built with `{source_builder_text(s)}`. Each run loads into a fresh database "
        "(`CREATE DATABASE bench_<tool>_<n>`, dropped afterwards) after a `CHECKPOINT`.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {mach.get('cpu')} ({mach.get('cores')} cores) |",
        f"| RAM | {mach.get('ram')} |",
        f"| OS | {mach.get('os')} |",
        f"| PostgreSQL | {mach.get('postgresql')} on {mach.get('postgresql_host')} |",
        "| PostgreSQL settings | "
        + ", ".join(f"{k}={v}" for k, v in mach.get("postgresql_settings", {}).items())
        + " |",
        f"| Python | {mach.get('python')} |",
    ]
    for name, version in mach.get("versions", {}).items():
        out.append(f"| {name} | {version} |")
    out.append(f"| Load average at start | {mach.get('loadavg_at_start')} |")
    out.append("")

    if "full" in s.sections:
        out += render_full(bench)
    if "incremental" in s.sections:
        out += render_incremental(bench)
    if "verify" in s.sections:
        out += render_verify(bench)

    out += ["## Commands", ""]
    for tool in [*s.tools, "incremental", "verify"]:
        if tool in bench.commands:
            out += [f"- **{tool}**: `{bench.commands[tool]}`"]
    if bench.commands:
        out.append("")
    out += [
        "## How to read this",
        "",
        "- *wall s*: median wall-clock seconds of the valid runs (min-max in brackets), from "
        "starting the tool to its exit, on an empty database; creating and dropping the database "
        "and the checks afterwards are not timed.",
        "- *rows/s* = source rows ÷ median; *MB/s* = SQLite file size (10^6 bytes) ÷ median.",
        "- *tool CPU s*: user + system CPU seconds of the tool's process tree (GNU time `%U` + "
        "`%S`), median; for the floor that is sqlite3, psql and bash. *peak RSS*: the largest "
        "resident set of any single process in that tree (`%M`), the maximum over runs. "
        "PostgreSQL's backends are counted in neither.",
        "- *x floor*, *x pgloader*: the tool's median time divided by theirs (below 1 is faster); "
        "the rows/s ratio is the inverse.",
        "- *schema built*: found/expected in the target after the load — primary keys, foreign "
        "keys, secondary indexes, NOT NULL columns, and columns whose type equals the one the "
        "floor uses (bigint, varchar(n), numeric(p,s), timestamp, text). A run whose row counts "
        "differ from SQLite's is *invalid* and left out of the median.",
        "- The PostgreSQL server runs on the same machine, so it competes with the tool for "
        "the same cores.",
        "",
    ]
    notes = automatic_notes(bench) + bench.notes
    if notes:
        out += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(out)


def automatic_notes(bench: Bench) -> list[str]:
    """Caveats that follow from how this run was made."""
    notes: list[str] = []
    if bench.s.source_builder == "chinook-dev":
        notes.append(
            "The sources are Chinook scaled by INSERT…SELECT (`--source-builder chinook-dev`), a "
            "development aid: rerun with the default builder (`sqlite2pg sample`) for figures "
            "on the published sample."
        )
    timed = [m for m in bench.measurements if m.seconds is not None]
    busy = [m for m in timed if m.cpu_busy_before is not None and m.cpu_busy_before > QUIET_BUSY]
    if busy:
        worst = max(m.cpu_busy_before or 0 for m in busy)
        notes.append(
            f"{len(busy)} of {len(timed)} measurements started while other work kept the CPUs "
            f"more than {QUIET_BUSY:.0%} busy (up to {worst:.0%}, after waiting "
            f"{bench.s.quiet_wait:g} s for quiet); other programs on this machine may have slowed "
            "them, which widens the min-max ranges. Per-run values are in the JSON."
        )
    if "pgloader" in bench.s.tools and any(
        m.tool == "pgloader" and m.check is not None for m in bench.measurements
    ):
        notes.append(
            "pgloader (3.6) creates no NOT NULL constraints for an SQLite source and has no "
            "`keep not null` cast for it (dimitri/pgloader#1451); it also builds an extra "
            "unique index for "
            "each `sqlite_autoindex` next to the primary key; the *schema built* column counts "
            "both. Its other defaults match the floor's work: create tables, indexes, primary "
            "and foreign keys after the data, reset sequences."
        )
    return notes


def source_builder_text(s: Settings) -> str:
    if s.source_builder == "chinook-dev":
        return "Chinook scaled by INSERT…SELECT (development aid, not the published sample)"
    return f"sqlite2pg sample OUT.db --scale N --seed {s.seed}"


def render_full(bench: Bench) -> list[str]:
    out = ["## Full load", ""]
    for scale in bench.s.scales:
        source = bench.sources.get(scale)
        if source is None:
            continue
        out += [
            f"### Scale {scale}: {source.total_rows:,} rows in {len(source.tables)} tables, "
            f"{source.size_mb:,.1f} MB SQLite file",
            "",
            "| tool | valid runs | wall s, median (min-max) | rows/s | MB/s | tool CPU s "
            "| peak RSS | x floor | x pgloader | schema built |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        summaries = {t: summarize(bench, scale, t) for t in bench.s.tools}
        floor = summaries.get("floor")
        pgl = summaries.get("pgloader")
        failures: list[str] = []
        for tool, sm in summaries.items():
            if sm is None:
                continue
            spread = (
                f"{sm.median:.2f} ({sm.low:.2f}-{sm.high:.2f})"
                if sm.median is not None and sm.low is not None and sm.high is not None
                else "failed"
            )
            out.append(
                f"| {tool} | {sm.ok}/{sm.runs} | {spread} | {fmt_int(sm.rows_per_s)} "
                f"| {fmt_float(sm.mb_per_s, 1)} | {fmt_float(sm.cpu_seconds, 1)} "
                f"| {fmt_mib(sm.peak_rss_kb)} "
                f"| {fmt_ratio(ratio(sm.median, floor.median if floor else None))} "
                f"| {fmt_ratio(ratio(sm.median, pgl.median if pgl else None))} "
                f"| {schema_cell(sm.check)} |"
            )
            failures += [f"{tool}: {e}" for e in sm.errors]
        out.append("")
        ratio_rows = []
        for tool in ("sqlite2pg", "sqlite2pg-verify"):
            sm = summaries.get(tool)
            if sm is None:
                continue
            ratio_rows.append(
                f"| {tool} | {fmt_ratio(ratio(sm.median, pgl.median if pgl else None))} "
                f"| {fmt_ratio(ratio(sm.rows_per_s, pgl.rows_per_s if pgl else None))} "
                f"| {fmt_ratio(ratio(sm.median, floor.median if floor else None))} "
                f"| {fmt_ratio(ratio(sm.rows_per_s, floor.rows_per_s if floor else None))} |"
            )
        if ratio_rows:
            out += [
                "| ratio | time ÷ pgloader | rows/s ÷ pgloader | time ÷ floor | rows/s ÷ floor |",
                "|---|---|---|---|---|",
                *ratio_rows,
                "",
            ]
        if failures:
            out += ["Failed or invalid runs:", "", *[f"- {redact(f)}" for f in failures], ""]
    return out


def render_incremental(bench: Bench) -> list[str]:
    out = [
        "## Incremental sync",
        "",
        "After a full load, rounds of: change a share of the rows with "
        "`sqlite2pg.sample.apply_changes` (a new seed each round), then one timed `sqlite2pg "
        "sync`; the strategy chosen for every table in a generated config (`tables: {<Table>: "
        "{strategy: <s>}}`); *wall s* = the rounds' median (min-max); *share* = that ÷ the "
        "median full "
        "load by sqlite2pg (`--verify off`) at that scale (or the initial sync when the full "
        "load was not run); *share of own load* = that ÷ the strategy's own initial sync of "
        "the same source (`--verify off`), which for `timestamp` is the updated_at variant and "
        "for `append` leaves out the tables it cannot follow.",
        "",
        "| scale | strategy | rows changed | status | wall s | share of full load "
        "| share of own load | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in bench.measurements:
        if m.section != "incremental":
            continue
        base = bench.full_load_seconds(m.scale) or m.extra.get("initial_seconds")
        share = ratio(m.seconds, base) if m.status == "ok" else None
        own = ratio(m.seconds, m.extra.get("initial_seconds")) if m.status == "ok" else None
        out.append(
            f"| {m.scale} | {m.tool} | {fmt_fraction(float(m.extra.get('fraction', 0)))} "
            f"| {m.status} | {fmt_rounds(m)} | {fmt_share(share)} | {fmt_share(own)} "
            f"| {redact(incremental_note(m)).replace('|', '/')} |"
        )
    out.append("")
    return out


def fmt_share(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def fmt_rounds(m: Measurement) -> str:
    rounds = m.extra.get("round_seconds") or []
    if len(rounds) < 2:
        return fmt_float(m.seconds)
    return f"{fmt_float(m.seconds)} ({fmt_float(min(rounds))}-{fmt_float(max(rounds))})"


def incremental_note(m: Measurement) -> str:
    if m.error:
        return m.error
    note = str(m.extra.get("changes") or "")
    if m.extra.get("left_out"):
        note += f"; not synced (no integer key): {', '.join(m.extra['left_out'])}"
    return note


def render_verify(bench: Bench) -> list[str]:
    out = [
        "## Verify",
        "",
        "`sqlite2pg verify --level L` on a database just loaded by sqlite2pg; median of the "
        "repeats; *share* = its time ÷ the median full load by sqlite2pg (`--verify off`).",
        "",
        "| scale | level | status | wall s | share of full load | note |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(m.scale, m.tool) for m in bench.measurements if m.section == "verify"},
        key=lambda k: (k[0], ALL_LEVELS.index(k[1]) if k[1] in ALL_LEVELS else 99),
    )
    for scale, level in keys:
        runs = [
            m
            for m in bench.measurements
            if m.section == "verify" and m.scale == scale and m.tool == level
        ]
        times = [m.seconds for m in runs if m.status == "ok" and m.seconds is not None]
        median = statistics.median(times) if times else None
        status = "ok" if times else runs[-1].status
        share = ratio(median, bench.full_load_seconds(scale))
        note = next((m.error for m in runs if m.error), "") or ""
        out.append(
            f"| {scale} | {level} | {status} | {fmt_float(median)} "
            f"| {'—' if share is None else f'{share * 100:.1f}%'} "
            f"| {redact(note).replace('|', '/')} |"
        )
    out.append("")
    return out


def results_json(bench: Bench) -> dict[str, Any]:
    summaries = {
        str(scale): {
            tool: dataclasses.asdict(sm)
            for tool in bench.s.tools
            if (sm := summarize(bench, scale, tool)) is not None
        }
        for scale in bench.sources
    }
    return {
        "generated": bench.started.isoformat(timespec="seconds"),
        "command": reproduce_command(bench),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(bench.s).items()
            if k != "target"
        }
        | {"target": redact(bench.s.target)},
        "machine": bench.machine,
        "sources": {
            str(scale): {
                "builder": src.builder,
                "seed": src.seed,
                "path": src.path,
                "size_bytes": src.size_bytes,
                "rows": src.total_rows,
                "tables": {t.name: t.rows for t in src.tables},
            }
            for scale, src in bench.sources.items()
        },
        "commands": bench.commands,
        "summaries": summaries,
        "measurements": [dataclasses.asdict(m) for m in bench.measurements],
        "notes": bench.notes,
    }


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def csv_list(value: str, allowed: Sequence[str] | None = None) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if allowed is not None:
        unknown = [v for v in items if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)} (choose from {', '.join(allowed)})"
            )
    if not items:
        raise argparse.ArgumentTypeError("empty list")
    return items


def parse_args(argv: Sequence[str]) -> Settings:
    default_s2p = REPO_ROOT / ".venv" / "bin" / "sqlite2pg"
    p = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Benchmark sqlite2pg against pgloader and a sqlite3|psql floor.",
        epilog="Example: .venv/bin/python benchmarks/run.py --scales 60 --repeats 3 "
        "--tools pgloader,floor",
    )
    p.add_argument("--scales", default="60,1000", help="Chinook multiples (default 60,1000)")
    p.add_argument("--seed", type=int, default=1, help="sample seed (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="runs per tool and scale (default 3)")
    p.add_argument(
        "--target",
        default=os.environ.get("SQLITE2PG_BENCH_PG_URL", DEFAULT_TARGET),
        help="PostgreSQL URL of a superuser connection; databases are created next to it "
        "(default $SQLITE2PG_BENCH_PG_URL or %(default)s)",
    )
    p.add_argument(
        "--tools",
        default=",".join(ALL_TOOLS),
        help="full-load tools, run interleaved in this order (default %(default)s)",
    )
    p.add_argument(
        "--sections", default="full", help=f"any of {','.join(ALL_SECTIONS)} (default full)"
    )
    p.add_argument(
        "--workdir",
        default="benchmarks/work",
        type=Path,
        help="cached samples, floor scripts, logs, run directories (default %(default)s)",
    )
    p.add_argument(
        "--out", default="docs/benchmarks.md", type=Path, help="Markdown report (%(default)s)"
    )
    p.add_argument(
        "--json",
        default="benchmarks/results/latest.json",
        type=Path,
        dest="json_path",
        help="every measurement as JSON (%(default)s)",
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    p.add_argument(
        "--source-builder",
        choices=("sample", "chinook-dev"),
        default="sample",
        help="sample: `sqlite2pg sample` (default); chinook-dev: scaled Chinook, a dev aid only",
    )
    p.add_argument("--sqlite2pg", default=str(default_s2p), help="the sqlite2pg executable")
    p.add_argument("--python", default=sys.executable, help="python with sqlite2pg installed")
    p.add_argument(
        "--pgloader-args",
        default=PGLOADER_CASTS,
        help="pgloader options before SOURCE TARGET (default: casts that give the floor's column "
        "types, %(default)s)",
    )
    p.add_argument(
        "--strategies",
        default=",".join(ALL_STRATEGIES),
        help="incremental section: change-detection strategies (default %(default)s)",
    )
    p.add_argument(
        "--fractions",
        default="0.001,0.01",
        help="incremental section: shares of rows changed (default %(default)s)",
    )
    p.add_argument(
        "--levels",
        default=",".join(ALL_LEVELS),
        help="verify section: levels (default %(default)s)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="incremental section: change-and-sync rounds after each full load; the median "
        "(the lower middle one for an even count) is reported (default 3)",
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild cached source databases")
    p.add_argument("--keep-dbs", action="store_true", help="do not drop the bench_* databases")
    p.add_argument(
        "--no-install",
        dest="install",
        action="store_false",
        help="do not try to install a missing pgloader with apt-get",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each measurement wait up to this many seconds for the CPUs to be at most "
        f"{QUIET_BUSY * 100:.0f}%% busy with other work (default 60; 0 to skip)",
    )
    a = p.parse_args(argv)
    try:
        scales = [int(x) for x in csv_list(a.scales)]
        fractions = [float(x) for x in csv_list(a.fractions)]
        tools = csv_list(a.tools, ALL_TOOLS)
        sections = csv_list(a.sections, ALL_SECTIONS)
        strategies = csv_list(a.strategies, ALL_STRATEGIES)
        levels = csv_list(a.levels, ALL_LEVELS)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        p.error(str(exc))
    if a.repeats < 1 or a.rounds < 1 or any(s < 1 for s in scales):
        p.error("--repeats, --rounds and --scales must be positive")
    return Settings(
        scales=scales,
        seed=a.seed,
        repeats=a.repeats,
        target=a.target,
        tools=tools,
        sections=sections,
        workdir=a.workdir.resolve(),
        out=a.out,
        json_path=a.json_path,
        timeout=a.timeout,
        source_builder=a.source_builder,
        sqlite2pg=resolve_program(a.sqlite2pg),
        python=a.python,
        pgloader_args=shlex.split(a.pgloader_args),
        strategies=strategies,
        fractions=fractions,
        rounds=a.rounds,
        levels=levels,
        rebuild=a.rebuild,
        keep_dbs=a.keep_dbs,
        install=a.install,
        quiet_wait=a.quiet_wait,
        argv=list(argv),
    )


def resolve_program(name: str) -> str:
    """A program given by path is kept; a bare name is looked up on PATH."""
    return name if os.sep in name else shutil.which(name) or name


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(sys.argv[1:] if argv is None else argv)
    bench = Bench(settings)
    try:
        bench.run()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if bench.measurements:
            bench.write_outputs()
        return 2
    except KeyboardInterrupt:
        print("interrupted; writing what was measured", file=sys.stderr)
        bench.write_outputs()
        return 130
    bench.write_outputs()
    log(f"wrote {settings.out} and {settings.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
