"""YAML configuration -> validated, typed settings.

Unknown keys, wrong types and missing values are errors that name the key and its line, with a
"did you mean" hint. ``${VAR}`` (or ``${VAR:-default}``) in any string is replaced from the
environment, so passwords never have to sit in the file.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

Strategy = Literal["auto", "hash", "timestamp", "append", "triggers", "full"]
Event = Literal["failure", "rejected", "differences", "success"]
VerifyLevel = Literal["off", "counts", "checksum", "rows"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnConfig(_Model):
    rename: str | None = None
    type: str | None = Field(
        default=None, description="PostgreSQL type to use instead of the mapped one"
    )
    on_invalid: Literal["reject", "null"] = "reject"
    nul: Literal["reject", "strip"] = "reject"


class TableConfig(_Model):
    include: bool = True
    rename: str | None = None
    strategy: Strategy = "auto"
    column: str | None = Field(default=None, description="timestamp or append column")
    lookback_seconds: float = Field(default=300.0, ge=0)
    columns: dict[str, ColumnConfig] = Field(default_factory=dict)


class TargetConfig(_Model):
    url: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    dbname: str | None = None
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        None
    )
    sslrootcert: str | None = None
    auth: Literal["password", "iam"] = "password"
    region: str | None = None


class TypesConfig(_Model):
    varchar_as_text: bool = False
    timestamptz: bool = False
    int32: bool = False


class RetryConfig(_Model):
    attempts: int = Field(default=5, ge=1, le=100)
    initial_wait: float = Field(default=1.0, ge=0)
    max_wait: float = Field(default=60.0, ge=0)


_DEFAULT_EVENTS: list[Event] = ["failure", "rejected", "differences"]


class NotifyConfig(_Model):
    command: str | None = None
    webhook: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    on: list[Event] = Field(default_factory=lambda: _DEFAULT_EVENTS.copy())


class LogConfig(_Model):
    file: str | None = None
    max_bytes: int = Field(default=10_000_000, ge=10_000)
    backups: int = Field(default=5, ge=0)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(_Model):
    source: str | None = None
    target: TargetConfig = Field(default_factory=TargetConfig)
    schema_: str = Field(default="public", alias="schema")
    naming: Literal["snake_case", "preserve"] = "snake_case"
    state: str | None = None
    report_dir: str | None = None
    log: LogConfig = Field(default_factory=LogConfig)
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    workers: int = Field(default=2, ge=1, le=64)
    verify: VerifyLevel = "checksum"
    delete_guard: float = Field(default=0.5, ge=0, le=1)
    max_age_hours: float | None = Field(default=None, gt=0)
    types: TypesConfig = Field(default_factory=TypesConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    tables: dict[str, TableConfig] = Field(default_factory=dict)
    path: str | None = Field(default=None, exclude=True)  # where it was loaded from

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _schema_name(cls, v: str) -> str:
        if not v or len(v.encode()) > 63:
            raise ValueError("schema name must be 1 to 63 bytes")
        return v

    def table(self, name: str) -> TableConfig:
        return self.tables.get(name, TableConfig())

    def base_dir(self) -> Path:
        return Path(self.path).resolve().parent if self.path else Path.cwd()

    def resolve(self, value: str | None, default: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value or default).expanduser()
        return p if p.is_absolute() else self.base_dir() / p


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, so `on:` or `NO` stay strings."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = (*path, str(key.value))
                lines[k] = key.start_mark.line + 1
                walk(value, k)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                here = (*path, str(i))
                lines[here] = item.start_mark.line + 1
                walk(item, here)

    root = yaml.compose(text, Loader=_Loader)
    if root is not None:
        walk(root, ())
    return lines


def _interpolate(
    value: Any, path: tuple[str, ...], lines: dict[tuple[str, ...], int], file: str
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, str(k)), lines, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, str(i)), lines, file) for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            where = _where(file, path, lines)
            raise ConfigError(
                f"{where}: environment variable {name} is not set (used by '{'.'.join(path)}')",
                f"export {name}=... before running, or write ${{{name}:-default}}",
            )

        return _ENV.sub(sub, value)
    return value


def _where(file: str, path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> str:
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            return f"{file}, line {lines[path[:cut]]}"
    return file


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at the mapping that holds ``loc`` (for "did you mean")."""
    model: Any = Config
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = next(
                (f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part),
                None,
            )
            if field is None:
                return []
            ann = field.annotation
            args = getattr(ann, "__args__", ())
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                model = ann
            elif args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
                model = args[-1]  # dict[str, Model]: the next part is a free key
                model = _DictOf(model)
            else:
                model = None
        elif isinstance(model, _DictOf):
            model = model.model
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items() if n != "path"]
    return []


class _DictOf:
    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model


def parse_config(text: str, file: str = "<config>") -> Config:
    try:
        data = yaml.load(text, Loader=_Loader) if text.strip() else {}
        lines = _line_map(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}, line {mark.line + 1}" if mark else file
        raise ConfigError(
            f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})",
            "check indentation and quoting",
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: the configuration must be a mapping of keys to values",
            "see docs/configuration.md",
        )
    data = _interpolate(data, (), lines, file)
    try:
        return Config.model_validate({**data, "path": None if file == "<config>" else file})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        where = _where(file, loc, lines)
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            known = _known_keys(err["loc"])
            close = difflib.get_close_matches(loc[-1], known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(f"{where}: unknown key '{key}'", hint) from None
        if err["type"] == "missing":
            raise ConfigError(
                f"{where}: '{key}' is required", "see docs/configuration.md"
            ) from None
        raise ConfigError(
            f"{where}: '{key}' {err['msg'].lower()} (got {err.get('input')!r})",
            "see docs/configuration.md",
        ) from None


def load_config(path: str | Path) -> Config:
    p = Path(path)
    if not p.exists():
        raise ConfigError(
            f"config file {p} does not exist", "create one with `sqlite2pg init SOURCE.db`"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {p}: {exc}", "check the path and encoding"
        ) from exc
    cfg = parse_config(text, str(p))
    return cfg.model_copy(update={"path": str(p.resolve())})
