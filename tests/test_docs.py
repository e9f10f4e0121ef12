"""Docs stay in step with behaviour: every command documented with an example, config examples
valid."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

from sqlite2pg.cli import main
from sqlite2pg.config import parse_config

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, full + " "))
    return out


def _docs_text() -> str:
    parts = [(ROOT / "README.md").read_text()]
    parts += [p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(parts)


def test_every_command_is_documented() -> None:
    text = _docs_text()
    missing = [
        name
        for name, _ in _commands(main)
        if f"sqlite2pg {name}" not in text
        and not (" " in name and f"{name.split()[0]} {name.split()[1]}" in text)
    ]
    assert not missing, f"commands missing from README/docs: {missing}"


def test_every_help_ends_with_an_example() -> None:
    runner = CliRunner()
    for name, _ in [("", main), *_commands(main)]:
        result = runner.invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        tail = result.output.strip().splitlines()[-5:]
        assert any(line.strip() == "Example:" for line in tail), (name, tail)
        assert "sqlite2pg" in "\n".join(tail), (name, tail)


def test_configuration_reference_parses() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert blocks, "docs/configuration.md has no yaml example"
    import os

    os.environ.setdefault("APP_DB_PASSWORD", "secret")
    for block in blocks:
        cfg = parse_config(block, "docs/configuration.md")
        assert cfg.tables["Track"].columns["Composer"].rename == "composer_name"


def test_aurora_examples_parse() -> None:
    import os

    os.environ.setdefault("APP_DB_PASSWORD", "secret")
    text = (ROOT / "docs" / "aurora.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    configs = [parse_config(b, "docs/aurora.md") for b in blocks]
    assert configs[0].target.sslmode == "verify-full"
    assert configs[1].target.auth == "iam" and configs[1].target.region == "eu-west-1"
