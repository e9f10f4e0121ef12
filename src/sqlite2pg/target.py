"""Reaching PostgreSQL: which server (flag, config, PG* environment, or the embedded one),
connecting with a one-line error naming the problem, and the embedded server itself."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .config import Config, TargetConfig
from .errors import TargetError, TargetUnavailable

EMBEDDED_DIR = ".sqlite2pg/pg"
APP_NAME = "sqlite2pg"
_PG_ENV = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGHOSTADDR")


@dataclass(frozen=True)
class Target:
    conninfo: str  # full libpq connection string (may hold a password: never print it)
    display: str  # safe to print: user@host:port/db, no secrets
    embedded: bool = False
    # IAM tokens allow new connections for 15 minutes: a fresh conninfo for every connection
    refresh: Callable[[], str] | None = field(default=None, compare=False)

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        conninfo = self.refresh() if self.refresh is not None else self.conninfo
        return connect(conninfo, self.display, autocommit=autocommit)

    @property
    def secrets(self) -> list[str]:
        """Values that must never appear in a log, report or message."""
        found = [str(conninfo_to_dict(self.conninfo).get("password") or "")]
        found.append(os.environ.get("PGPASSWORD", ""))
        return [s for s in found if s]


def as_url(conninfo: str) -> str:
    """A postgresql:// URL for a connection string (for psql); no password is included."""
    d = conninfo_to_dict(conninfo)
    user = quote(str(d.get("user") or ""), safe="")
    db = quote(str(d.get("dbname") or ""), safe="")
    host = str(d.get("host") or "")
    if host.startswith("/"):
        return f"postgresql://{user}@/{db}?host={quote(host, safe='/')}"
    port = f":{d['port']}" if d.get("port") else ""
    return f"postgresql://{user}@{host}{port}/{db}"


def describe(conninfo: str) -> str:
    """user@host:port/dbname without any password."""
    try:
        d = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "(unparseable connection string)"
    host = str(d.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(d.get("port") or os.environ.get("PGPORT") or "5432")
    db = str(d.get("dbname") or os.environ.get("PGDATABASE") or "")
    user = str(d.get("user") or os.environ.get("PGUSER") or "")
    where = f"{host}:{port}" if not host.startswith("/") else f"socket {host}"
    return f"{user + '@' if user else ''}{where}/{db}"


def _from_parts(t: TargetConfig, password: str | None) -> str:
    params: dict[str, Any] = {
        k: v
        for k, v in {
            "host": t.host,
            "port": t.port,
            "user": t.user,
            "password": password,
            "dbname": t.dbname,
            "sslmode": t.sslmode,
            "sslrootcert": t.sslrootcert,
        }.items()
        if v is not None
    }
    return make_conninfo(t.url or "", **params)


def resolve_target(url: str | None, cfg: Config, *, workdir: Path | None = None) -> Target:
    """--target, then the config's target, then the PG* environment, then the embedded server."""
    t = cfg.target
    try:
        if url:
            conninfo = make_conninfo(url)
        elif t.url or t.host or t.dbname or t.user:
            if t.auth == "iam":

                def fresh() -> str:
                    token = _iam_password(t)
                    from .logs import add_secrets

                    add_secrets(token)
                    return _from_parts(t, token)

                conninfo = fresh()
                return Target(conninfo, describe(conninfo), refresh=fresh)
            conninfo = _from_parts(t, t.password)
        elif any(os.environ.get(k) for k in _PG_ENV):
            conninfo = ""
        else:
            base = workdir or cfg.base_dir()
            conninfo = start_embedded(base / EMBEDDED_DIR)
            return Target(conninfo, f"embedded PostgreSQL ({base / EMBEDDED_DIR})", embedded=True)
    except psycopg.ProgrammingError as exc:
        raise TargetError(
            f"target connection string is not valid: {str(exc).splitlines()[0]}",
            "use postgresql://user@host:5432/dbname",
        ) from None
    return Target(conninfo, describe(conninfo))


def _iam_password(t: TargetConfig) -> str:
    from .iam import iam_token

    if not (t.host and t.user and t.region):
        raise TargetError(
            "auth: iam needs target.host, target.user and target.region",
            "see docs/aurora.md",
        )
    return iam_token(t.host, t.port or 5432, t.user, t.region)


def connect(conninfo: str, display: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            conninfo, autocommit=autocommit, application_name=APP_NAME, connect_timeout=15
        )
    except psycopg.OperationalError as exc:
        from .retry import is_transient

        err = connection_error(exc, display)
        if is_transient(exc):
            raise TargetUnavailable(err.message, err.hint) from exc
        raise err from None


def connection_error(exc: Exception, display: str) -> TargetError:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line.split("FATAL:", 1)[-1].strip() for line in lines if "FATAL" in line]
    # libpq: 'connection to server at "h" (1.2.3.4), port 1 failed: Connection refused' then
    # a hint line; the cause is after the last "failed:".
    causes = [line.rsplit("failed:", 1)[-1].strip() for line in lines if "failed:" in line]
    first = (fatal or causes or lines or ["unknown error"])[0]
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        hint = "check the user and password (PGPASSWORD, ~/.pgpass, or ${ENV} in the config)"
    elif "does not exist" in low and "database" in low:
        hint = "create the database first (createdb NAME) or fix the database name"
    elif "connection refused" in low or "could not connect" in low or "timeout" in low:
        hint = "is the server running and reachable from here? check host, port and firewall"
    elif "ssl" in low or "certificate" in low:
        hint = "check sslmode and sslrootcert (see docs/aurora.md)"
    else:
        hint = "check the target connection settings"
    return TargetError(f"cannot connect to PostgreSQL at {display}: {first}", hint)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL whose data lives in ``data_dir``; its URL."""
    try:
        from pgserver.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - a dependency
        raise TargetError(
            "the embedded PostgreSQL (pgserver) is not installed",
            "pip install pgserver, or give --target",
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # platformdirs, harmless here
    try:
        server = get_server(data_dir, cleanup_mode=None)
    except Exception as exc:  # pgserver raises plain exceptions from its subprocesses
        raise TargetError(
            f"the embedded PostgreSQL in {data_dir} did not start: {exc}",
            f"look at {data_dir}/log, or give --target URL",
        ) from exc
    return str(server.get_uri())


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    if not (data_dir / "postmaster.pid").exists():
        return False
    from pgserver.postgres_server import get_server

    server = get_server(data_dir, cleanup_mode="stop")
    server.cleanup()
    return True
