"""Run history, per-table statistics and rejected rows, in a local SQLite database.

This is the record a person reads (`status`, `history`, `rejects`, reports). What decides the
next sync lives in the target, committed with the data (see ``syncstate.py``); this file can be
lost without losing data.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import InputError
from .model import Rejection, TableResult
from .syncstate import PastRun

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    error TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS table_runs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    table_name TEXT NOT NULL,
    stats TEXT NOT NULL,
    PRIMARY KEY (run_id, table_name)
);
CREATE TABLE IF NOT EXISTS rejects (
    run_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    row_key TEXT NOT NULL,
    column_name TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_run ON rejects (run_id, table_name);
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    command: str
    source: str
    target: str
    schema: str
    started_at: str
    finished_at: str | None
    status: str
    error: str | None
    summary: dict[str, Any] | None


class StateDB:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise InputError(
                f"state database {path} cannot be opened: {exc}",
                "give another path with --state, or move the damaged file away",
            ) from exc
        self._pending: list[tuple[str, str, str, str, str, str]] = []

    def close(self) -> None:
        self.flush()
        self.conn.close()

    def start_run(self, run_id: str, command: str, source: str, target: str, schema: str) -> None:
        self.conn.execute(
            "INSERT INTO runs (run_id, command, source, target, schema_name, started_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running')",
            (run_id, command, source, target, schema, now_iso()),
        )

    def finish_run(
        self,
        run_id: str,
        status: str,
        summary: dict[str, Any] | None,
        tables: dict[str, TableResult] | None = None,
        error: str | None = None,
    ) -> None:
        self.flush()
        self.conn.execute("BEGIN")
        self.conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, error = ?, summary = ? WHERE run_id = ?",
            (
                now_iso(),
                status,
                error,
                json.dumps(summary, default=str) if summary else None,
                run_id,
            ),
        )
        for name, res in (tables or {}).items():
            self.conn.execute(
                "INSERT OR REPLACE INTO table_runs VALUES (?, ?, ?)",
                (run_id, name, json.dumps(res.as_dict(), default=str)),
            )
        self.conn.execute("COMMIT")

    # -- rejects (streamed: a table of bad rows never sits in memory)

    def reject_sink(self, run_id: str) -> RejectWriter:
        return RejectWriter(self, run_id)

    def add_reject(self, run_id: str, r: Rejection) -> None:
        self._pending.append(
            (run_id, r.table, json.dumps(r.key, default=str), r.column, r.value, r.reason)
        )
        if len(self._pending) >= 1000:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.conn.executemany("INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?)", self._pending)
            self._pending = []

    def discard_rejects(self, run_id: str, table: str) -> None:
        self.flush()
        self.conn.execute(
            "DELETE FROM rejects WHERE run_id = ? AND table_name = ?", (run_id, table)
        )

    def rejects(
        self, run_id: str, table: str | None = None, limit: int | None = None
    ) -> Iterator[Rejection]:
        self.flush()
        sql = "SELECT table_name, row_key, column_name, value, reason FROM rejects WHERE run_id = ?"
        params: list[Any] = [run_id]
        if table:
            sql += " AND table_name = ?"
            params.append(table)
        sql += " ORDER BY rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for t, key, col, value, reason in self.conn.execute(sql, params):
            yield Rejection(t, json.loads(key), col, value, reason)

    # -- history

    def runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self.conn.execute(
            "SELECT run_id, command, source, target, schema_name, started_at, finished_at, "
            "status, error, summary FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            RunRecord(*r[:9], summary=json.loads(r[9]) if r[9] else None)  # type: ignore[misc]
            for r in rows
        ]

    def knows(self, target: str, schema: str) -> bool:
        """Whether any finished run into this target and schema is recorded here."""
        row = self.conn.execute(
            "SELECT 1 FROM runs WHERE target = ? AND schema_name = ? AND status <> 'running' "
            "LIMIT 1",
            (target, schema),
        ).fetchone()
        return row is not None

    def restore(self, runs: list[PastRun], source: str, target: str, schema: str) -> int:
        """Rebuild the history of a target from the runs it committed (a lost or new state
        database). The per-table counts come back; rejected rows' details do not (they were
        only ever kept here). Returns how many runs were added."""
        added = 0
        self.conn.execute("BEGIN")
        for r in runs:
            tables = r.summary.get("tables") or {}
            totals = {
                k: sum(int(t.get(k) or 0) for t in tables.values())
                for k in ("inserted", "updated", "deleted", "rejected")
            }
            summary = {
                "run_id": r.run_id, "command": r.command, "mode": r.mode, "status": r.status,
                "started_at": r.started_at, "finished_at": r.finished_at, "tables": tables,
                "totals": totals, "restored_from_target": True,
            }  # fmt: skip
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO runs (run_id, command, source, target, schema_name, "
                "started_at, finished_at, status, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.run_id, r.command, source, target, schema, r.started_at, r.finished_at,
                    r.status, json.dumps(summary, default=str),
                ),
            )  # fmt: skip
            if cur.rowcount:
                added += 1
                for name, stats in tables.items():
                    self.conn.execute(
                        "INSERT OR REPLACE INTO table_runs VALUES (?, ?, ?)",
                        (r.run_id, name, json.dumps(stats, default=str)),
                    )
        self.conn.execute("COMMIT")
        return added

    def run(self, run_id: str) -> RunRecord | None:
        for r in self.runs(limit=1_000_000):
            if r.run_id == run_id:
                return r
        return None

    def table_stats(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT table_name, stats FROM table_runs WHERE run_id = ?", (run_id,)
        ).fetchall()
        return {name: json.loads(stats) for name, stats in rows}


class RejectWriter:
    """A RejectSink that streams into the state database under one run id."""

    def __init__(self, db: StateDB, run_id: str) -> None:
        self.db = db
        self.run_id = run_id

    def add(self, rejection: Rejection) -> None:
        self.db.add_reject(self.run_id, rejection)

    def discard(self, table: str) -> None:
        self.db.discard_rejects(self.run_id, table)
