"""AWS RDS / Aurora IAM authentication: a short-lived token used as the password.

Needs the optional extra: ``pip install 'sqlite2pg[iam]'`` (boto3). Credentials and region
come from the usual AWS sources (environment, ``~/.aws``, instance or task role). The token
is signed locally, without a network call, and is valid for 15 minutes: generate it right
before connecting, connect with ``sslmode=require`` (RDS refuses IAM logins without TLS),
and register it with :func:`sqlite2pg.logs.add_secrets` so it never reaches a log.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlite2pg.errors import ConfigError

__all__ = ["IamError", "iam_token"]

INSTALL_HINT = "pip install 'sqlite2pg[iam]'"


class IamError(ConfigError, RuntimeError):
    """IAM authentication is configured but cannot produce a token here."""

    stage = "iam"


def _boto3() -> Any:
    try:
        return importlib.import_module("boto3")
    except ImportError as exc:
        raise IamError(
            "IAM authentication needs boto3, which is not installed", hint=INSTALL_HINT
        ) from exc


def iam_token(host: str, port: int, user: str, region: str | None = None) -> str:
    """An RDS IAM authentication token for ``user`` at ``host:port``, to use as the password.

    ``region`` defaults to the one AWS configuration gives (``AWS_REGION``,
    ``AWS_DEFAULT_REGION``, ``~/.aws/config``). Raises :class:`IamError` with a hint when boto3
    is missing, no credentials or region are found, or signing fails.
    """
    boto3 = _boto3()
    botocore_exceptions = importlib.import_module("botocore.exceptions")
    try:
        # A fresh session, not boto3's process-wide default: that one keeps the credentials
        # and region it found first, and a long-lived process must see rotated ones.
        client = boto3.session.Session(region_name=region).client("rds")
        token = client.generate_db_auth_token(
            DBHostname=host, Port=int(port), DBUsername=user, Region=region
        )
    except botocore_exceptions.NoRegionError as exc:
        raise IamError(
            "IAM authentication needs an AWS region",
            hint="give the region in the configuration or set AWS_REGION",
        ) from exc
    except (
        botocore_exceptions.NoCredentialsError,
        botocore_exceptions.PartialCredentialsError,
    ) as exc:
        raise IamError(
            f"no usable AWS credentials to sign an IAM token for {user}@{host}",
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or run with an instance/task role",
        ) from exc
    except botocore_exceptions.BotoCoreError as exc:
        raise IamError(f"could not sign an IAM token for {user}@{host}: {exc}") from exc
    if not isinstance(token, str) or not token:
        raise IamError(f"boto3 returned no IAM token for {user}@{host}")
    return token
