"""Typed records passed between the stages: source catalog -> plan -> results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SqliteValue = None | int | float | str | bytes


# --------------------------------------------------------------------------- source catalog


@dataclass(frozen=True)
class SourceColumn:
    name: str
    declared_type: str
    notnull: bool
    default_sql: str | None
    pk_position: int  # 1-based position in the primary key, 0 when not part of it
    generated: Literal["", "virtual", "stored"] = ""
    generated_sql: str | None = None
    collation: str | None = None
    checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceIndex:
    name: str
    unique: bool
    origin: Literal["c", "u", "pk"]  # CREATE INDEX, UNIQUE constraint, PRIMARY KEY
    columns: tuple[str | None, ...]  # None where the index term is an expression
    expressions: tuple[str | None, ...]  # SQL of each term when it is an expression
    descending: tuple[bool, ...]
    collations: tuple[str | None, ...]
    where_sql: str | None
    sql: str | None


@dataclass(frozen=True)
class SourceForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]  # resolved to the parent's primary key when omitted
    on_update: str
    on_delete: str


@dataclass(frozen=True)
class SourceTable:
    name: str
    sql: str
    columns: tuple[SourceColumn, ...]
    primary_key: tuple[str, ...]
    without_rowid: bool
    rowid_alias: str | None  # the INTEGER PRIMARY KEY column that aliases the rowid
    autoincrement: bool
    sequence: int | None  # sqlite_sequence value for AUTOINCREMENT tables
    indexes: tuple[SourceIndex, ...]
    foreign_keys: tuple[SourceForeignKey, ...]
    checks: tuple[str, ...]  # table-level CHECK expressions

    def column(self, name: str) -> SourceColumn:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class SkippedObject:
    kind: str  # "view", "trigger", "virtual table", ...
    name: str
    reason: str


@dataclass(frozen=True)
class SourceView:
    name: str
    select_sql: str


@dataclass(frozen=True)
class SourceCatalog:
    path: str
    tables: tuple[SourceTable, ...]
    views: tuple[SourceView, ...]
    skipped: tuple[SkippedObject, ...]

    def table(self, name: str) -> SourceTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)


# --------------------------------------------------------------------------- value profile


@dataclass(frozen=True)
class ColumnProfile:
    """What one scan of the source learned about a column's stored values."""

    nulls: int | None = 0  # None: not counted (the quick profile of a nullable column)
    integers: int = 0
    reals: int = 0
    texts: int = 0
    blobs: int = 0
    int_min: int | None = None
    int_max: int | None = None
    max_text_chars: int | None = None
    dirty: int = 0  # values that do not pass the target type's fast-path check

    @property
    def non_null(self) -> int:
        return self.integers + self.reals + self.texts + self.blobs


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PgType:
    """A PostgreSQL column type. ``kind`` selects the value converter."""

    kind: Literal[
        "smallint",
        "integer",
        "bigint",
        "double",
        "numeric",
        "text",
        "varchar",
        "bytea",
        "boolean",
        "timestamp",
        "timestamptz",
        "date",
        "time",
        "jsonb",
        "uuid",
    ]
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @property
    def sql(self) -> str:
        if self.kind == "varchar":
            return f"varchar({self.length})" if self.length else "varchar"
        if self.kind == "numeric":
            if self.precision is None:
                return "numeric"
            if self.scale is None:
                return f"numeric({self.precision})"
            return f"numeric({self.precision},{self.scale})"
        return {
            "double": "double precision",
            "timestamp": "timestamp",
            "timestamptz": "timestamptz",
            "time": "time",
        }.get(self.kind, self.kind)


InvalidPolicy = Literal["reject", "null"]
NulPolicy = Literal["reject", "strip"]


@dataclass(frozen=True)
class ColumnPlan:
    source: SourceColumn
    name: str  # target name
    type: PgType
    reason: str  # why this type (shown by `plan`)
    notnull: bool
    default_sql: str | None  # PostgreSQL expression, already translated
    identity: bool = False
    identity_start: int | None = None
    generated_sql: str | None = None  # PostgreSQL expression of a STORED generated column
    collation: Literal["nocase"] | None = None
    on_invalid: InvalidPolicy = "reject"
    nul: NulPolicy = "reject"

    @property
    def copied(self) -> bool:
        """Generated columns are computed by PostgreSQL, not copied."""
        return self.generated_sql is None


@dataclass(frozen=True)
class IndexPlan:
    name: str
    unique: bool
    sql: str  # CREATE [UNIQUE] INDEX ... (fully quoted)
    is_constraint: bool  # UNIQUE table constraint rather than a plain index


@dataclass(frozen=True)
class ForeignKeyPlan:
    name: str
    columns: tuple[str, ...]
    ref_table: str  # target name
    ref_columns: tuple[str, ...]
    on_update: str
    on_delete: str
    source: SourceForeignKey


@dataclass(frozen=True)
class TablePlan:
    source: SourceTable
    name: str
    columns: tuple[ColumnPlan, ...]
    primary_key: tuple[str, ...]  # target column names
    indexes: tuple[IndexPlan, ...]
    foreign_keys: tuple[ForeignKeyPlan, ...]
    checks: tuple[str, ...]  # translated CHECK expressions
    row_count: int
    profiles: dict[str, ColumnProfile] = field(default_factory=dict)
    strategy: str = "full"
    strategy_column: str | None = None

    @property
    def copy_columns(self) -> tuple[ColumnPlan, ...]:
        return tuple(c for c in self.columns if c.copied)

    def column_by_source(self, name: str) -> ColumnPlan:
        for col in self.columns:
            if col.source.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class ViewPlan:
    name: str
    source_name: str
    sql: str  # translated SELECT


@dataclass(frozen=True)
class MigrationPlan:
    source_path: str
    schema: str
    tables: tuple[TablePlan, ...]
    views: tuple[ViewPlan, ...]
    skipped: tuple[SkippedObject, ...]
    warnings: tuple[str, ...]
    needs_nocase: bool = False

    def table(self, source_name: str) -> TablePlan:
        for t in self.tables:
            if t.source.name == source_name:
                return t
        raise KeyError(source_name)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Rejection:
    table: str
    key: dict[str, Any]
    column: str
    value: str  # repr of the original value, shortened
    reason: str


@dataclass
class TableResult:
    table: str  # source name
    target: str
    strategy: str = "full"
    read: int = 0
    written: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0
    changed_by_policy: int = 0
    seconds: float = 0.0
    orphans: dict[str, int] = field(default_factory=dict)
    orphan_samples: dict[str, list[Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "strategy": self.strategy,
            "read": self.read,
            "written": self.written,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "changed_by_policy": self.changed_by_policy,
            "seconds": round(self.seconds, 3),
            "orphans": self.orphans,
            "orphan_samples": self.orphan_samples,
        }
