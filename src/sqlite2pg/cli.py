"""Command line: parse options, call the library, render the result, exit with a documented status.

No SQL here. Every command's help ends with an example.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from psycopg.conninfo import conninfo_to_dict

from . import api
from .errors import EXIT_FAILED, Sqlite2pgError
from .logs import setup_logging
from .redact import redact_text
from .render import (
    ProgressObserver,
    console,
    render_history,
    render_plan,
    render_rejects,
    render_status,
    render_sync,
    render_verify,
)
from .report import load_report, render_summary, run_points
from .target import as_url

F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(config: str | None, target: str | None) -> None:
    """JSON lines to the config's log file, warnings (or more with -v) on stderr, secrets
    registered so that no log line, report or message shows them."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    cfg = api.load(config)
    secrets = [
        s for s in (cfg.target.password, os.environ.get("PGPASSWORD"), password_in(target)) if s
    ]
    root.meta.setdefault("secrets", []).extend(secrets)
    log_file = cfg.resolve(cfg.log.file, cfg.log.file) if cfg.log.file else None
    verbose, quiet = bool(root.params.get("verbose")), bool(root.params.get("quiet"))
    setup_logging(
        log_file,
        level=cfg.log.level,
        console=not quiet,
        quiet=not verbose,
        verbose=verbose,
        max_bytes=cfg.log.max_bytes,
        backups=cfg.log.backups,
        secrets=secrets,
    )


def password_in(url: str | None) -> str | None:
    if not url:
        return None
    try:
        value = conninfo_to_dict(url).get("password")
    except Exception:  # an unparseable URL is reported by the command itself
        return None
    return str(value) if value else None


def handle_errors(fn: F) -> F:
    """One line naming the problem and a hint, the documented exit status, no traceback
    (unless --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        secrets: list[str] = ctx.find_root().meta.setdefault("secrets", [])
        try:
            return fn(*args, **kwargs)
        except Sqlite2pgError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {redact_text(exc.message, secrets)}", err=True)
            if exc.hint:
                click.echo(f"hint: {redact_text(exc.hint, secrets)}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was committed by the unfinished run", err=True)
            sys.exit(EXIT_FAILED)
        except Exception as exc:  # a bug: still one line, and --debug shows where
            if debug:
                traceback.print_exc()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            first = redact_text(first, secrets)
            click.echo(f"error: unexpected {type(exc).__name__}: {first}", err=True)
            click.echo("hint: run again with --debug and report the traceback", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example:\n\n  sqlite2pg sync --source app.db --target postgresql://me@db.example.com/app",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress (and debug details) to stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr (the log file keeps all).")
@click.version_option(package_name="sqlite2pg")
def main(debug: bool, verbose: bool, quiet: bool) -> None:
    """Migrate an SQLite database into PostgreSQL faithfully and fast, then keep it in sync.

    Exit status: 0 ok, 1 finished but rows were rejected or differ, 2 bad usage/config/input,
    3 the run failed, 75 another run holds the lock.
    """


def _common(fn: F) -> F:
    for opt in reversed(
        [
            click.option("-c", "--config", type=click.Path(dir_okay=False), help="YAML config."),
            click.option("--source", help="SQLite file (overrides the config)."),
            click.option("--target", help="libpq URL, e.g. postgresql://user@host:5432/db."),
            click.option("--schema", help="Target schema (default: public)."),
        ]
    ):
        fn = opt(fn)
    return fn


@main.command(
    epilog="Example:\n\n  sqlite2pg sync --source Chinook.sqlite --target postgresql://postgres@localhost/app"
)
@_common
@click.option("--state", help="Local state database (default: beside the config).")
@click.option("--full", is_flag=True, help="Reload tables completely instead of incrementally.")
@click.option("--tables", help="Comma-separated source tables (with --full).")
@click.option(
    "--verify",
    type=click.Choice(["off", "counts", "checksum", "rows"]),
    help="Verification after the sync (default: checksum).",
)
@click.option("--allow-mass-delete", is_flag=True, help="Allow deleting more than the guard.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@handle_errors
def sync(
    config: str | None,
    source: str | None,
    target: str | None,
    schema: str | None,
    state: str | None,
    full: bool,
    tables: str | None,
    verify: str | None,
    allow_mass_delete: bool,
    as_json: bool,
) -> None:
    """Copy SQLite into PostgreSQL: the full migration the first time, only the changes after."""
    _setup_logging(config, target)
    observer = None if as_json or not console.is_terminal else ProgressObserver()
    try:
        report = api.sync(
            source,
            target,
            config=config,
            schema=schema,
            state=state,
            full=full,
            tables=tables.split(",") if tables else None,
            verify=verify,  # type: ignore[arg-type]
            allow_mass_delete=allow_mass_delete,
            observer=observer,
        )
    finally:
        if observer is not None:
            observer.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        render_sync(report)
    sys.exit(report.exit_code)


@main.command(
    epilog="Example:\n\n  sqlite2pg verify --source app.db --target postgresql://me@db.example.com/app"
)
@_common
@click.option("--state", help="Local state database: rows the last sync rejected are expected.")
@click.option("--tables", help="Comma-separated source tables (default: all).")
@click.option(
    "--level",
    type=click.Choice(["counts", "checksum", "rows"]),
    default="checksum",
    show_default=True,
    help="checksum: hashes over key ranges, bisected down to the differing rows.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@handle_errors
def verify(
    config: str | None,
    source: str | None,
    target: str | None,
    schema: str | None,
    state: str | None,
    tables: str | None,
    level: str,
    as_json: bool,
) -> None:
    """Prove the target holds exactly the source: schema, counts, checksums, differing rows."""
    run = api.verify(
        source,
        target,
        config=config,
        schema=schema,
        state=state,
        tables=tables.split(",") if tables else None,
        level=level,  # type: ignore[arg-type]
    )
    if as_json:
        out = {**run.result.as_dict(), "run_id": run.run_id, "report_files": run.report_files}
        click.echo(json.dumps(out, default=str, indent=2))
    else:
        render_verify(run.result)
        for f in run.report_files:
            console.print(f"report: {f}")
    sys.exit(run.result.exit_code)


@main.command(epilog="Example:\n\n  sqlite2pg plan --source Chinook.sqlite")
@_common
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@handle_errors
def plan(
    config: str | None, source: str | None, target: str | None, schema: str | None, as_json: bool
) -> None:
    """Show the type mapping and the DDL a sync would run, without writing anything."""
    p = api.plan(source, config=config, schema=schema)
    if as_json:
        click.echo(json.dumps(api.plan_as_dict(p), indent=2, default=str))
    else:
        render_plan(p)


@main.command(epilog="Example:\n\n  sqlite2pg rejects --table Invoice")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--state", help="Local state database.")
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option("--table", help="Only this source table.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def rejects(
    config: str | None,
    state: str | None,
    run_id: str | None,
    table: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List the rows a run rejected, with table, key, column, original value and reason."""
    rid, items = api.rejects(config=config, state=state, run_id=run_id, table=table, limit=limit)
    if as_json:
        click.echo(json.dumps({"run_id": rid, "rejects": [r.__dict__ for r in items]}, default=str))
    else:
        render_rejects(rid, items)


@main.command(epilog="Example:\n\n  sqlite2pg report --open")
@click.argument("run_id", required=False)
@click.option("-c", "--config", type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--open", "open_page", is_flag=True, help="Open the HTML page in a browser.")
@handle_errors
def report(run_id: str | None, config: str | None, open_page: bool) -> None:
    """Summarise a run's report and print the path of its HTML page (default: the latest run).

    RUN_ID may be a unique prefix of a run id.
    """
    path = api.report_path(run_id, config=config)
    if open_page:
        import webbrowser

        if not webbrowser.open(path.as_uri()):
            click.echo(f"no browser found; open {path}", err=True)
        click.echo(str(path))
        return
    click.echo(render_summary(load_report(path)))


@main.command(epilog="Example:\n\n  sqlite2pg history --limit 10")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--state", help="Local state database.")
@click.option("--limit", type=int, default=20, show_default=True, help="Runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@handle_errors
def history(config: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List past runs, newest first: status, rows inserted/updated/deleted/rejected, duration."""
    points = run_points(api.history(config=config, state=state, limit=limit))
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in points], indent=2))
    else:
        render_history(points)


@main.command(
    "schedule",
    epilog='Example:\n\n  sqlite2pg schedule -c /srv/app/job.yml --weekly "sun 02:00" --install',
)
@click.option("-c", "--config", required=True, type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--weekly", help='Day and time, e.g. "sun 02:00".')
@click.option("--daily", help='Time of day, e.g. "02:00".')
@click.option("--cron", "cron_expr", help='A cron expression, e.g. "0 2 * * 0".')
@click.option("--install", is_flag=True, help="Add (or replace) the entry in your crontab.")
@click.option("--remove", is_flag=True, help="Remove the entry from your crontab.")
@click.option("--systemd", is_flag=True, help="Also print a systemd service and timer.")
@handle_errors
def schedule_cmd(
    config: str,
    weekly: str | None,
    daily: str | None,
    cron_expr: str | None,
    install: bool,
    remove: bool,
    systemd: bool,
) -> None:
    """Print or install a cron entry (or systemd timer) that runs the sync unattended."""
    result = api.schedule(
        config,
        weekly=weekly,
        daily=daily,
        cron=cron_expr,
        install=install,
        remove=remove,
        systemd=systemd,
    )
    if remove:
        click.echo("removed the cron entry" if result.changed else "no cron entry to remove")
        return
    click.echo(result.cron_line)
    if result.service and result.timer:
        click.echo("\n# sqlite2pg-sync.service\n" + result.service)
        click.echo("# sqlite2pg-sync.timer\n" + result.timer)
    if install:
        click.echo("installed in your crontab" if result.changed else "already installed")


@main.command(epilog="Example:\n\n  sqlite2pg status -c sqlite2pg.yml --max-age-hours 192")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--state", help="Local state database.")
@click.option("--target", help="libpq URL (overrides the config).")
@click.option("--max-age-hours", type=float, help="Unhealthy when the last sync is older.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def status(
    config: str | None,
    state: str | None,
    target: str | None,
    max_age_hours: float | None,
    as_json: bool,
) -> None:
    """Health of the job for monitoring: exit 0 healthy, 1 when the last sync failed, had
    rejects or differences, or is older than the configured age."""
    st = api.status(config=config, state=state, target=target, max_age_hours=max_age_hours)
    if as_json:
        last = st.last_run.__dict__ if st.last_run else None
        click.echo(
            json.dumps(
                {
                    "healthy": st.healthy,
                    "problems": st.problems,
                    "last_run": last,
                    "tables": st.tables,
                },
                default=str,
                indent=2,
            )
        )
    else:
        render_status(st)
    sys.exit(0 if st.healthy else 1)


@main.group(epilog="Example:\n\n  sqlite2pg server start")
def server() -> None:
    """Manage the embedded PostgreSQL (data in .sqlite2pg/pg of the working folder)."""


@server.command("start", epilog="Example:\n\n  sqlite2pg server start")
@handle_errors
def server_start() -> None:
    """Start the embedded server (or find it running) and print its URL."""
    click.echo(api.server_url(start=True))


@server.command("url", epilog='Example:\n\n  psql "$(sqlite2pg server url)"')
@handle_errors
def server_url() -> None:
    """Print the embedded server's URL (starting it if needed)."""
    click.echo(api.server_url(start=True))


@server.command("stop", epilog="Example:\n\n  sqlite2pg server stop")
@handle_errors
def server_stop() -> None:
    """Stop the embedded server."""
    stopped = api.server_stop()
    click.echo("stopped" if stopped else "not running")


@main.command(epilog="Example:\n\n  sqlite2pg sample demo.db --scale 10 --seed 1")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--scale", type=float, default=1.0, show_default=True, help="Multiple of Chinook.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--updated-at", is_flag=True, help="Add an updated_at column to every table.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@handle_errors
def sample(out: str, scale: float, seed: int, updated_at: bool, overwrite: bool) -> None:
    """Write a database with Chinook's schema, filled with generated rows."""
    counts = api.sample(
        Path(out), scale=scale, seed=seed, updated_at=updated_at, overwrite=overwrite
    )
    click.echo(f"wrote {out}: {sum(counts.values()):,} rows in {len(counts)} tables")


@main.command(
    epilog="Example:\n\n  sqlite2pg init app.db -o sqlite2pg.yml && sqlite2pg sync -c sqlite2pg.yml"
)
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="sqlite2pg.yml", show_default=True, help="Config to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
@handle_errors
def init(source: str, output: str, force: bool) -> None:
    """Write a commented config for SOURCE: every table, its mapping and strategy."""
    path = api.init_config(source, output, overwrite=force)
    click.echo(f"wrote {path}; edit it, then run: sqlite2pg sync -c {path}")


@main.command(epilog="Example:\n\n  sqlite2pg demo")
@handle_errors
def demo() -> None:
    """Migrate a generated sample into the embedded PostgreSQL, change it, sync again, verify."""
    observer = ProgressObserver() if console.is_terminal else None
    try:
        result = api.demo(observer=observer)
    finally:
        if observer is not None:
            observer.close()
    console.print(f"[bold]1. full migration of {result.database}[/bold]")
    render_sync(result.full)
    ch = result.changes
    console.print(
        f"\n[bold]2. the application changed the sample[/bold]: {ch['inserted']} inserted, "
        f"{ch['updated']} updated, {ch['deleted']} deleted rows"
    )
    console.print("[bold]3. incremental sync[/bold]")
    render_sync(result.incremental)
    # never wrapped: the line must stay copy-pasteable
    console.print(f'\nlook at the data:  psql "{as_url(result.url)}"', soft_wrap=True)
    console.print("stop the server:   sqlite2pg server stop")
    sys.exit(max(result.full.exit_code, result.incremental.exit_code))


if __name__ == "__main__":  # pragma: no cover
    main()
