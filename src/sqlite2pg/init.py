"""`sqlite2pg init`: a commented configuration for one database, ready to edit.

Every table is listed with its planned target name, mapping and change-detection strategy, so
the file documents what a sync will do; the generated file parses back to the same plan.
"""

from __future__ import annotations

import json
from pathlib import Path

from .model import MigrationPlan


def _q(value: str) -> str:
    """A YAML scalar, quoted when needed (JSON strings are valid YAML)."""
    plain = value.replace("_", "").replace("-", "").isalnum() and not value[:1].isdigit()
    return (
        value
        if plain and value.lower() not in ("yes", "no", "on", "off", "true", "false", "null")
        else json.dumps(value)
    )


def render_config(plan: MigrationPlan, source: Path) -> str:
    lines = [
        "# sqlite2pg configuration (docs/configuration.md has every key).",
        "# Values may use ${ENV_VAR} or ${ENV_VAR:-default}: keep passwords out of this file.",
        "",
        f"source: {_q(str(source))}",
        "",
        "# Where to copy to. Leave it out to use the embedded PostgreSQL (.sqlite2pg/pg).",
        "# target:",
        "#   url: postgresql://app@mycluster.cluster-xyz.eu-west-1.rds.amazonaws.com:5432/app",
        "#   password: ${PGPASSWORD}",
        "#   sslmode: verify-full",
        "#   sslrootcert: /etc/ssl/certs/rds-global-bundle.pem",
        "",
        f"schema: {_q(plan.schema)}",
        "naming: snake_case        # or: preserve (keep SQLite's names exactly)",
        "verify: checksum          # after every sync: off | counts | checksum | rows",
        "delete_guard: 0.5         # stop a run that would delete more than this share of a table",
        "batch_size: 5000",
        "# state: sqlite2pg-state.db   # run history and rejects (relative to this file)",
        "# report_dir: reports",
        "# log:",
        "#   file: sqlite2pg.log",
        "# notify:",
        "#   webhook: https://hooks.example.com/sqlite2pg",
        "#   on: [failure, rejected, differences]",
        "",
        "types:",
        "  varchar_as_text: false  # true: VARCHAR(n) becomes text",
        "  timestamptz: false      # true: DATETIME becomes timestamptz (values read as UTC)",
        "  int32: false            # true: INTEGER becomes integer where every value fits",
        "",
        "tables:",
    ]
    if not plan.tables:
        lines[-1] = "tables: {}"
    for t in plan.tables:
        lines.append(f"  {_q(t.source.name)}:  # -> {plan.schema}.{t.name}, {t.row_count:,} rows")
        lines.append("    include: true")
        lines.append(f"    # rename: {_q(t.name)}")
        why = {
            "hash": "primary key, no timestamp column: per-row hashes",
            "full": "no primary key: reloaded each run",
            "timestamp": "timestamp column found",
            "append": "insert-only key",
            "triggers": "change-log triggers",
        }.get(t.strategy, "")
        lines.append(
            f"    strategy: {t.strategy}  # {why}; or auto|hash|timestamp|append|triggers|full"
        )
        if t.strategy_column:
            lines.append(f"    column: {_q(t.strategy_column)}")
        lines.append("    # columns:")
        for c in t.columns:
            ident = " identity" if c.identity else ""
            lines.append(
                f"    #   {_q(c.source.name)}: {{}}  # {c.source.declared_type or '(none)'} -> "
                f"{c.name} {c.type.sql}{ident}"
            )
    for s in plan.skipped:
        lines.append(f"# not copied: {s.kind} {s.name}: {s.reason}")
    for w in plan.warnings:
        lines.append(f"# warning: {w}")
    return "\n".join(lines) + "\n"
