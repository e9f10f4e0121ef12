"""The sync state that decides the next run, kept in the target's ``sqlite2pg`` schema and written
in the same transaction as the data it describes: the two can never disagree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from .model import TablePlan
from .sqlite_sql import quote_ident as qi

STATE_SCHEMA = "sqlite2pg"

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA};
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.synced_tables (
    target_schema text NOT NULL,
    source_table text NOT NULL,
    target_table text NOT NULL,
    strategy text NOT NULL,
    strategy_column text,
    high_water text,
    columns jsonb NOT NULL,
    run_id text NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_schema, source_table)
);
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.runs (
    run_id text PRIMARY KEY,
    target_schema text NOT NULL,
    command text NOT NULL,
    mode text NOT NULL,
    status text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    summary jsonb NOT NULL
);
"""


@dataclass(frozen=True)
class SyncedTable:
    source_table: str
    target_table: str
    strategy: str
    strategy_column: str | None
    high_water: str | None
    columns: list[dict[str, Any]]
    run_id: str


def column_signature(t: TablePlan) -> list[dict[str, Any]]:
    """What drift detection compares between runs: source columns and their target mapping."""
    return [
        {
            "source": c.source.name,
            "declared": c.source.declared_type,
            "target": c.name,
            "type": c.type.sql,
        }
        for c in t.columns
    ]


def ensure(cur: psycopg.Cursor[Any]) -> None:
    cur.execute(DDL)


def load(cur: psycopg.Cursor[Any], schema: str) -> dict[str, SyncedTable]:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{STATE_SCHEMA}.synced_tables",))
    row = cur.fetchone()
    if not row or not row[0]:
        return {}
    cur.execute(
        f"SELECT source_table, target_table, strategy, strategy_column, high_water, columns, "
        f"run_id FROM {STATE_SCHEMA}.synced_tables WHERE target_schema = %s",
        (schema,),
    )
    return {r[0]: SyncedTable(*r) for r in cur.fetchall()}


def save_table(
    cur: psycopg.Cursor[Any],
    schema: str,
    t: TablePlan,
    run_id: str,
    high_water: str | None,
) -> None:
    cur.execute(
        f"INSERT INTO {STATE_SCHEMA}.synced_tables AS s (target_schema, source_table, "
        "target_table, strategy, strategy_column, high_water, columns, run_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (target_schema, source_table) DO UPDATE SET target_table = "
        "EXCLUDED.target_table, strategy = EXCLUDED.strategy, strategy_column = "
        "EXCLUDED.strategy_column, high_water = EXCLUDED.high_water, columns = EXCLUDED.columns, "
        "run_id = EXCLUDED.run_id, synced_at = now()",
        (
            schema,
            t.source.name,
            t.name,
            t.strategy,
            t.strategy_column,
            high_water,
            json.dumps(column_signature(t)),
            run_id,
        ),
    )


def save_run(
    cur: psycopg.Cursor[Any],
    schema: str,
    run_id: str,
    command: str,
    mode: str,
    status: str,
    started_at: str,
    summary: dict[str, Any],
) -> None:
    cur.execute(
        f"INSERT INTO {STATE_SCHEMA}.runs (run_id, target_schema, command, mode, status, "
        "started_at, summary) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (run_id, schema, command, mode, status, started_at, json.dumps(summary, default=str)),
    )


@dataclass(frozen=True)
class PastRun:
    """A run as the target remembers it (the local history is rebuilt from these)."""

    run_id: str
    command: str
    mode: str
    status: str
    started_at: str
    finished_at: str
    summary: dict[str, Any]


def load_runs(cur: psycopg.Cursor[Any], schema: str) -> list[PastRun]:
    """Every run committed into ``schema``, oldest first."""
    cur.execute(
        "SELECT run_id, command, mode, status, started_at, finished_at, summary "
        f"FROM {STATE_SCHEMA}.runs WHERE target_schema = %s ORDER BY started_at, finished_at",
        (schema,),
    )
    return [
        PastRun(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            r[4].isoformat(timespec="seconds"),
            r[5].isoformat(timespec="seconds"),
            r[6] if isinstance(r[6], dict) else {},
        )
        for r in cur.fetchall()
    ]


def forget_table(cur: psycopg.Cursor[Any], schema: str, source_table: str) -> None:
    cur.execute(
        f"DELETE FROM {STATE_SCHEMA}.synced_tables WHERE target_schema = %s AND source_table = %s",
        (schema, source_table),
    )


def qualified(schema: str, table: str) -> str:
    return f"{qi(schema)}.{qi(table)}"
