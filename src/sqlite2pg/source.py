"""Reading the SQLite source: opening it read-only, its catalog, one consistent snapshot, rows.

The file is opened with ``mode=ro`` so it is never modified. A sync reads every table inside one
read transaction: in WAL mode that is a snapshot that does not block the application's writers.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from .errors import SourceError
from .model import (
    SkippedObject,
    SourceCatalog,
    SourceColumn,
    SourceForeignKey,
    SourceIndex,
    SourceTable,
    SourceView,
)
from .sqlite_sql import (
    Untranslatable,
    join_tokens,
    paren_group,
    parse_create_table,
    split_top,
    tokenize,
    view_select,
)

SQLITE_HEADER = b"SQLite format 3\x00"
CHANGE_LOG_TABLE = "_sqlite2pg_changes"  # written into the source only by the `triggers` strategy


class RawText(bytes):
    """TEXT whose bytes are not valid UTF-8, read in careful mode and checked per value."""


def qi(name: str) -> str:
    """Quote an SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'


def balanced(items: Sequence[str], op: str) -> str:
    """Join SQL terms with a binary operator as a balanced tree: a wide table must not build
    an expression deeper than SQLite allows (1000)."""
    if len(items) == 1:
        return items[0]
    mid = len(items) // 2
    return f"({balanced(items[:mid], op)} {op} {balanced(items[mid:], op)})"


def open_source(
    path: str | Path, *, busy_timeout_ms: int = 30_000, recover: bool = False
) -> sqlite3.Connection:
    """Open the source read-only, with a clear error for a missing, empty or non-SQLite file.

    A writer that died mid-transaction leaves a hot journal that only a writable connection can
    roll back. With ``recover`` (the user allowed writes to the source: the triggers strategy)
    it is rolled back here, as the application's next open would; otherwise the error says so."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"source file {p} does not exist", "check the path given as --source")
    if p.is_dir():
        raise SourceError(f"source {p} is a directory, not an SQLite file", "give the .db file")
    try:
        with p.open("rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise SourceError(
            f"cannot read source file {p}: {exc.strerror}", "check permissions"
        ) from exc
    if not header:
        raise SourceError(f"source file {p} is empty (0 bytes)", "is this the right file?")
    if header != SQLITE_HEADER:
        raise SourceError(
            f"source file {p} is not an SQLite database", "give the application's .db file"
        )
    uri = f"file:{quote(str(p.resolve()))}?mode=ro"
    try:
        before = _file_id(p)
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, factory=SourceConnection
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if _file_id(p) == before:  # else replaced while opening: no twin (see twin())
            conn.opened = before
    except sqlite3.DatabaseError as exc:
        if "readonly database" in str(exc):
            if recover:
                _roll_back_hot_journal(p)
                return open_source(p, busy_timeout_ms=busy_timeout_ms)
            raise SourceError(
                f"source file {p} has an unfinished transaction from a writer that stopped "
                "(a hot journal) that a read-only reader cannot roll back",
                "open it once with the application or `sqlite3 FILE 'PRAGMA quick_check'`",
            ) from exc
        raise SourceError(
            f"source file {p} cannot be read as SQLite: {exc}",
            "the file may be corrupt; try `sqlite3 FILE 'PRAGMA integrity_check'`",
        ) from exc
    return conn


class SourceConnection(sqlite3.Connection):
    """A source connection that knows which file (device, inode) it opened, if sure."""

    opened: tuple[int, int] | None = None


def _file_id(p: Path) -> tuple[int, int]:
    st = os.stat(p)
    return st.st_dev, st.st_ino


@contextmanager
def twin(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection | None]:
    """A second read-only connection that sees exactly ``conn``'s snapshot, or None.

    Only for a rollback-journal database: while ``conn``'s read transaction holds its SHARED
    lock no writer can commit, so a read transaction begun meanwhile on the same file sees the
    same database. In WAL mode writers commit while readers read, and Python's sqlite3 cannot
    share a WAL snapshot between connections: no twin. Use inside ``snapshot(conn)``."""
    other = _open_twin(conn)
    try:
        yield other
    finally:
        if other is not None:
            other.close()


def twin_source(conn: sqlite3.Connection) -> tuple[Path, tuple[int, int], int] | None:
    """(path, device and inode, schema version) for another reader (a thread's or a
    process's) to open as a twin of ``conn`` and check it got one, or None when no twin can
    share ``conn``'s snapshot (see :func:`twin`)."""
    opened = getattr(conn, "opened", None)
    if opened is None or not conn.in_transaction:
        return None
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return None
    path = Path(next(str(r[2]) for r in conn.execute("PRAGMA database_list") if r[1] == "main"))
    return path, opened, int(conn.execute("PRAGMA schema_version").fetchone()[0])


def open_twin(path: Path, identity: tuple[int, int], version: int) -> sqlite3.Connection | None:
    """A read-only connection in a read transaction, if it is the twin :func:`twin_source`
    describes (same file, same schema), else None. It never waits for a lock: while a writer
    waits to commit no new reader may start, and then there is no twin."""
    other: sqlite3.Connection | None = None
    try:
        other = sqlite3.connect(
            f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None,
            check_same_thread=False, timeout=0,
        )  # fmt: skip
        other.execute("PRAGMA query_only = 1")
        other.execute("BEGIN")
        if other.execute("PRAGMA schema_version").fetchone()[0] == version and (
            _file_id(path) == identity
        ):
            return other
    except (sqlite3.Error, OSError):
        pass  # busy (a writer waits to commit), gone, unreadable: work without a twin
    if other is not None:
        other.close()
    return None


def _open_twin(conn: sqlite3.Connection) -> sqlite3.Connection | None:
    source = twin_source(conn)
    return None if source is None else open_twin(*source)


def _roll_back_hot_journal(p: Path) -> None:
    conn = sqlite3.connect(str(p), isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        conn.close()


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: every query inside sees the database at the same moment."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fixes the snapshot now
        yield conn
    finally:
        conn.text_factory = str
        conn.execute("ROLLBACK")


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return list(cur.execute(sql, params))


def _table_kinds(conn: sqlite3.Connection) -> dict[str, tuple[str, bool]]:
    """name -> (type, without_rowid) from PRAGMA table_list (SQLite >= 3.37), else {}."""
    try:
        rows = _rows(conn, "PRAGMA table_list")
    except sqlite3.DatabaseError:
        return {}
    return {r["name"]: (r["type"], bool(r["wr"])) for r in rows if r["schema"] == "main"}


def corrupt_source(exc: sqlite3.Error, what: str, conn: sqlite3.Connection) -> SourceError | None:
    """A SourceError (exit 2) for an SQLite error that means the file itself is damaged."""
    name = getattr(exc, "sqlite_errorname", "")
    damaged = name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or (
        not name and type(exc) is sqlite3.DatabaseError
    )
    if not damaged:
        return None
    try:
        file = next(str(r[2]) for r in conn.execute("PRAGMA database_list") if r[1] == "main")
    except (sqlite3.Error, StopIteration):
        file = "the source file"
    return SourceError(
        f"source file {file} is damaged: {what} cannot be read ({exc})",
        "check it with `sqlite3 FILE 'PRAGMA integrity_check'`; `.recover` in the sqlite3 "
        "shell can often save the readable rows into a new file",
    )


def read_catalog(conn: sqlite3.Connection, path: str = "") -> SourceCatalog:
    """Everything about the schema: tables, views, and what is not copied and why."""
    try:
        return _read_catalog(conn, path)
    except sqlite3.DatabaseError as exc:
        error = corrupt_source(exc, "the schema", conn)
        if error is None:
            raise
        raise error from exc


def _read_catalog(conn: sqlite3.Connection, path: str) -> SourceCatalog:
    objects = _rows(conn, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
    kinds = _table_kinds(conn)
    sequences: dict[str, int] = {}
    if any(o["name"] == "sqlite_sequence" for o in objects):
        sequences = {
            r[0]: r[1]
            for r in conn.execute("SELECT name, seq FROM sqlite_sequence")
            if isinstance(r[1], int)  # anything else was written by hand: max(id) decides
        }
    virtual = [o["name"] for o in objects if (o["sql"] or "").upper().startswith("CREATE VIRTUAL")]
    tables: list[SourceTable] = []
    views: list[SourceView] = []
    skipped: list[SkippedObject] = []
    for obj in objects:
        name, kind, sql = obj["name"], obj["type"], obj["sql"] or ""
        if name.startswith("sqlite_") or name == CHANGE_LOG_TABLE:
            continue
        if kind == "table":
            if name in virtual:
                skipped.append(SkippedObject("virtual table", name, _virtual_reason(sql)))
            elif _is_shadow(name, kinds, virtual):
                continue  # storage of a virtual table, reported with it
            else:
                tables.append(_read_table(conn, name, sql, sequences, kinds))
        elif kind == "view":
            try:
                views.append(SourceView(name, view_select(sql)))
            except Untranslatable as exc:
                skipped.append(SkippedObject("view", name, str(exc)))
        elif kind == "trigger":
            if obj["name"].startswith("_sqlite2pg_"):
                continue
            skipped.append(
                SkippedObject(
                    "trigger",
                    name,
                    "triggers hold application logic in SQLite's dialect; rewrite it in PL/pgSQL "
                    "if the application needs it after cutover",
                )
            )
    return SourceCatalog(path, tuple(tables), tuple(views), tuple(skipped))


_SHADOW_SUFFIXES = (
    "_content", "_data", "_idx", "_docsize", "_config",  # fts5 (and fts3/4's content)
    "_segments", "_segdir", "_stat",  # fts3/4
    "_node", "_parent", "_rowid",  # rtree
)  # fmt: skip


def _is_shadow(name: str, kinds: dict[str, tuple[str, bool]], virtual: list[str]) -> bool:
    """A virtual table's storage. PRAGMA table_list says so exactly (SQLite >= 3.37); older
    versions only by name, and then only with the suffixes the built-in modules use, so that
    a user's own ``docs_archive`` beside a virtual ``docs`` is still copied."""
    if kinds:
        return kinds.get(name, ("table", False))[0] == "shadow"
    low = name.lower()
    return any(
        low.startswith(v.lower() + "_") and low[len(v) :] in _SHADOW_SUFFIXES for v in virtual
    )


def _virtual_reason(sql: str) -> str:
    toks = tokenize(sql)
    module = next((toks[i + 1].text for i, t in enumerate(toks) if t.is_word("USING")), "?")
    return (
        f"virtual table (module {module}) has no PostgreSQL equivalent; for full-text search "
        "use a tsvector column and a GIN index"
    )


def _read_table(
    conn: sqlite3.Connection,
    name: str,
    sql: str,
    sequences: dict[str, int],
    kinds: dict[str, tuple[str, bool]],
) -> SourceTable:
    try:
        details = parse_create_table(sql)
    except (Untranslatable, StopIteration) as exc:
        raise SourceError(f"cannot read the definition of table {name!r}: {exc}") from exc
    xinfo = _rows(conn, f"PRAGMA table_xinfo({qi(name)})")
    columns: list[SourceColumn] = []
    for r in xinfo:
        if r["hidden"] == 1:
            continue
        d = details.columns.get(r["name"])
        generated = {2: "virtual", 3: "stored"}.get(r["hidden"], "")
        columns.append(
            SourceColumn(
                name=r["name"],
                declared_type=(r["type"] or "").strip(),
                notnull=bool(r["notnull"]),
                default_sql=r["dflt_value"],
                pk_position=int(r["pk"]),
                generated=generated,  # type: ignore[arg-type]
                generated_sql=d.generated_sql if d and generated else None,
                collation=d.collation if d else None,
                checks=tuple(d.checks) if d else (),
            )
        )
    pk = tuple(c.name for c in sorted(columns, key=lambda c: c.pk_position) if c.pk_position)
    without_rowid = kinds.get(name, ("table", _sql_without_rowid(sql)))[1]
    rowid_alias = None
    if not without_rowid and len(pk) == 1:
        col = next(c for c in columns if c.name == pk[0])
        if col.declared_type.upper() == "INTEGER":
            rowid_alias = col.name
    autoincrement = any(d.autoincrement for d in details.columns.values())
    return SourceTable(
        name=name,
        sql=sql,
        columns=tuple(columns),
        primary_key=pk,
        without_rowid=without_rowid,
        rowid_alias=rowid_alias,
        autoincrement=autoincrement,
        sequence=sequences.get(name),
        indexes=tuple(_read_indexes(conn, name)),
        foreign_keys=tuple(_read_foreign_keys(conn, name, pk)),
        checks=tuple(details.checks),
    )


def _sql_without_rowid(sql: str) -> bool:
    toks = [t.text.upper() for t in tokenize(sql)]
    return toks[-2:] == ["WITHOUT", "ROWID"] or ("ROWID" in toks[-4:] and "WITHOUT" in toks[-5:])


def _read_indexes(conn: sqlite3.Connection, table: str) -> Iterator[SourceIndex]:
    sql_by_name = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=?", (table,)
        )
    }
    for idx in _rows(conn, f"PRAGMA index_list({qi(table)})"):
        name = idx["name"]
        terms = [t for t in _rows(conn, f"PRAGMA index_xinfo({qi(name)})") if t["key"]]
        sql = sql_by_name.get(name)
        expressions: list[str | None] = [None] * len(terms)
        where_sql = None
        if sql:
            expr_terms, where_sql = _index_terms(sql)
            for i, t in enumerate(terms):
                if t["cid"] == -2 and i < len(expr_terms):
                    expressions[i] = expr_terms[i]
        yield SourceIndex(
            name=name,
            unique=bool(idx["unique"]),
            origin=idx["origin"],
            columns=tuple(t["name"] if t["cid"] >= 0 else None for t in terms),
            expressions=tuple(expressions),
            descending=tuple(bool(t["desc"]) for t in terms),
            collations=tuple(t["coll"] for t in terms),
            where_sql=where_sql,
            sql=sql,
        )


def _index_terms(sql: str) -> tuple[list[str], str | None]:
    """The SQL of each term of a CREATE INDEX (without COLLATE/ASC/DESC) and its WHERE clause."""
    toks = tokenize(sql)
    start = next(i for i, t in enumerate(toks) if t.text == "(")
    body, end = paren_group(toks, start)
    terms: list[str] = []
    for term in split_top(body):
        while term and term[-1].is_word("ASC", "DESC"):
            term = term[:-1]
        if len(term) >= 2 and term[-2].is_word("COLLATE"):
            term = term[:-2]
        terms.append(join_tokens(term))
    where = None
    while toks and toks[-1].text == ";":
        toks.pop()
    if end < len(toks) and toks[end].is_word("WHERE"):
        where = join_tokens(toks[end + 1 :])
    return terms, where


def _read_foreign_keys(
    conn: sqlite3.Connection, table: str, own_pk: tuple[str, ...]
) -> Iterator[SourceForeignKey]:
    """Foreign keys with every name spelled as its table/column declares it: SQLite matches
    names case-insensitively, so ``REFERENCES ARTIST(ARTISTID)`` names ``Artist.ArtistId``."""
    rows = _rows(conn, f"PRAGMA foreign_key_list({qi(table)})")
    by_id: dict[int, list[sqlite3.Row]] = {}
    for r in rows:
        by_id.setdefault(r["id"], []).append(r)
    own_columns = _column_names(conn, table)
    for fk_id in sorted(by_id, reverse=True):  # SQLite lists them last-declared first
        parts = sorted(by_id[fk_id], key=lambda r: r["seq"])
        parent = _table_named(conn, parts[0]["table"])
        ref_cols = tuple(r["to"] for r in parts)
        if any(c is None for c in ref_cols):
            ref_cols = own_pk if parent == table else _primary_key_of(conn, parent)
        parent_columns = _column_names(conn, parent)
        yield SourceForeignKey(
            columns=tuple(_spelled(r["from"], own_columns) for r in parts),
            ref_table=parent,
            ref_columns=tuple(_spelled(c, parent_columns) for c in ref_cols),
            on_update=parts[0]["on_update"],
            on_delete=parts[0]["on_delete"],
        )


def _table_named(conn: sqlite3.Connection, name: str) -> str:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return str(row[0]) if row else name


def _column_names(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r["name"] for r in _rows(conn, f"PRAGMA table_xinfo({qi(table)})")]


def _spelled(name: str, declared: list[str]) -> str:
    if name in declared:
        return name
    folded = _ascii_lower(name)  # SQLite folds ASCII letters only
    return next((d for d in declared if _ascii_lower(d) == folded), name)


def _ascii_lower(name: str) -> str:
    return name.encode("utf-8").lower().decode("utf-8")


def _primary_key_of(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    info = _rows(conn, f"PRAGMA table_info({qi(table)})")
    return tuple(r["name"] for r in sorted(info, key=lambda r: r["pk"]) if r["pk"])


def iter_batches(
    conn: sqlite3.Connection, sql: str, batch_size: int, params: Sequence[object] = ()
) -> Iterator[list[tuple[object, ...]]]:
    """Stream a query's rows in lists of at most ``batch_size``: memory stays flat."""
    cur = conn.execute(sql, params)
    while True:
        rows = cur.fetchmany(batch_size)
        if not rows:
            return
        yield rows
