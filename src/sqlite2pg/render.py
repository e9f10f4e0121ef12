"""Terminal rendering of plans, run summaries and rejects (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from .model import MigrationPlan, Rejection, TableResult
from .pipeline import RunReport
from .report import HistoryPoint
from .verify import VerifyResult

console = Console(stderr=False)
err_console = Console(stderr=True)


class ProgressObserver:
    """A progress bar per table on the terminal (stderr)."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            TextColumn("{task.completed:>12,}/{task.total:<12,} rows"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def table_started(self, table: str, total: int) -> None:
        if table in self.tasks:
            self.progress.reset(self.tasks[table], total=total)
        else:
            self.tasks[table] = self.progress.add_task(table, total=max(total, 1))

    def advance(self, table: str, rows: int) -> None:
        self.progress.advance(self.tasks[table], rows)

    def table_done(self, result: TableResult) -> None:
        task = self.tasks.get(result.table)
        if task is not None:
            self.progress.update(task, completed=self.progress.tasks[task].total)

    def message(self, text: str) -> None:
        self.progress.console.print(text)

    def close(self) -> None:
        self.progress.stop()


def render_sync(report: RunReport) -> None:
    incremental = report.mode == "incremental"
    table = Table(title=f"sqlite2pg {report.mode} sync -> {report.target} (schema {report.schema})")
    table.add_column("table", no_wrap=True)
    if incremental:
        table.add_column("strategy")
        for col in ("ins", "upd", "del", "same"):
            table.add_column(col, justify="right")
    else:
        table.add_column("target", no_wrap=True)
        table.add_column("read", justify="right")
        table.add_column("written", justify="right")
    table.add_column("rej", justify="right")
    table.add_column("sec", justify="right")
    for name, t in report.tables.items():
        counts = (
            [t.strategy, f"{t.inserted:,}", f"{t.updated:,}", f"{t.deleted:,}", f"{t.unchanged:,}"]
            if incremental
            else [t.target, f"{t.read:,}", f"{t.written:,}"]
        )
        rej = f"[red]{t.rejected:,}[/red]" if t.rejected else "0"
        table.add_row(name, *counts, rej, f"{t.seconds:.2f}")
    console.print(table)
    for s in report.skipped:
        console.print(f"[yellow]not copied[/yellow]: {s['kind']} {s['name']}: {s['reason']}")
    for w in report.warnings:
        console.print(f"[yellow]warning[/yellow]: {w}")
    if report.verification:
        v = report.verification
        state = "[green]identical[/green]" if v.get("identical") else "[red]DIFFERENCES[/red]"
        console.print(f"verification ({v.get('level')}): {state}")
        for line in v.get("summary_lines", [])[:20]:
            console.print(f"  {line}")
    if report.rejected:
        console.print(
            f"[red]{report.rejected:,} row(s) rejected[/red]: see `sqlite2pg rejects` "
            f"(run {report.run_id})"
        )
    for f in report.report_files:
        console.print(f"report: {f}")
    colour = "green" if report.exit_code == 0 else "yellow" if report.exit_code == 1 else "red"
    console.print(
        f"[{colour}]{report.status}[/{colour}] in {report.seconds:.1f}s, run {report.run_id}"
    )


def render_plan(p: MigrationPlan) -> None:
    from .schema import plan_ddl

    for t in p.tables:
        table = Table(title=f"{t.source.name} -> {p.schema}.{t.name} ({t.row_count:,} rows)")
        for col in ("column", "declared", "target", "type", "why"):
            table.add_column(col)
        for c in t.columns:
            extra = " identity" if c.identity else ""
            table.add_row(
                c.source.name, c.source.declared_type, c.name, c.type.sql + extra, c.reason
            )
        console.print(table)
    for s in p.skipped:
        console.print(f"[yellow]not copied[/yellow]: {s.kind} {s.name}: {s.reason}")
    for w in p.warnings:
        console.print(f"[yellow]warning[/yellow]: {w}")
    console.print("\n-- DDL")
    console.print(plan_ddl(p), markup=False, highlight=False)


def render_rejects(run_id: str | None, items: Sequence[Rejection]) -> None:
    if run_id is None:
        console.print("no runs yet")
        return
    if not items:
        console.print(f"run {run_id}: no rejected rows")
        return
    table = Table(title=f"rejected rows of run {run_id}")
    for col in ("table", "key", "column", "value", "reason"):
        table.add_column(col, overflow="fold")
    for r in items:
        key = ", ".join(f"{k}={v}" for k, v in r.key.items())
        table.add_row(r.table, key, r.column, r.value, r.reason)
    console.print(table)


def render_history(points: Sequence[HistoryPoint]) -> None:
    if not points:
        console.print("no runs yet")
        return
    colours = {"ok": "green", "rejected": "yellow", "differences": "yellow", "failed": "red"}
    table = Table(title="runs, newest first")
    table.add_column("run", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("status")
    for col in ("inserted", "updated", "deleted", "rejected", "seconds"):
        table.add_column(col, justify="right")
    for p in points:
        colour = colours.get(p.status, "white")
        table.add_row(
            p.run_id if p.command == "sync" else f"{p.run_id} ({p.command})",
            p.started_at[5:16].replace("T", " "),
            f"[{colour}]{p.status}[/{colour}]",
            f"{p.inserted:,}",
            f"{p.updated:,}",
            f"{p.deleted:,}",
            f"[red]{p.rejected:,}[/red]" if p.rejected else "0",
            "-" if p.seconds is None else f"{p.seconds:.1f}",
        )
    console.print(table)


def render_status(st: Any) -> None:
    last = st.last_run
    if last is not None:
        console.print(f"last sync: {last.run_id} {last.status}, started {last.started_at}")
    table = Table(title="tables")
    for col in ("table", "target", "strategy", "high-water mark", "last run"):
        table.add_column(col)
    for t in st.tables:
        table.add_row(t["table"], t["target"], t["strategy"], t["high_water"] or "", t["run_id"])
    if st.tables:
        console.print(table)
    for p in st.problems:
        console.print(f"[red]problem[/red]: {p}")
    console.print("[green]healthy[/green]" if st.healthy else "[red]unhealthy[/red]")


def render_verify(result: VerifyResult) -> None:
    table = Table(title=f"sqlite2pg verify ({result.level})")
    cols = ("table", "source", "target", "missing", "extra", "differ", "rej")
    for col in cols:
        table.add_column(col, justify="left" if col == "table" else "right", no_wrap=True)
    table.add_column("result")

    def n(v: int | None) -> str:
        return "-" if v is None else f"{v:,}"

    for name, t in result.tables.items():
        table.add_row(
            name,
            n(t.source_rows),
            n(t.target_rows),
            n(t.missing_count),
            n(t.extra_count),
            n(t.different_count),
            n(t.rejected),
            "[green]identical[/green]" if t.identical else "[red]differs[/red]",
        )
    console.print(table)
    for line in result.summary_lines()[1:]:
        console.print(line, markup=False, highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]warning[/yellow]: {w}")
    verdict = "[green]identical[/green]" if result.identical else "[red]DIFFERENCES[/red]"
    console.print(f"{verdict} in {result.seconds:.1f}s")
