"""IAM tokens: signed locally by boto3 with dummy credentials, checked by recomputing the
AWS Signature Version 4 independently; clear errors without boto3 or credentials."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from sqlite2pg.errors import ConfigError
from sqlite2pg.iam import IamError, iam_token

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An AWS environment with nothing but what the test sets (no files, no metadata)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def _signature(token: str, host: str, secret: str) -> tuple[str, str]:
    """(signature in the token, SigV4 signature recomputed from the token's own fields)."""
    query = parse_qsl(urlsplit("https://" + token).query, keep_blank_values=True)
    fields = dict(query)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query)
        if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, f"host:{host}\n", "host", hashlib.sha256(b"").hexdigest()]
    )
    scope = fields["X-Amz-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            fields["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return fields["X-Amz-Signature"], expected


def test_token_is_a_valid_sigv4_presigned_connect_request(aws_env: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)

    token = iam_token("db.example.com", 5432, "app_user", "eu-west-1")

    assert token.startswith("db.example.com:5432/?")
    fields = dict(parse_qsl(urlsplit("https://" + token).query))
    assert fields["Action"] == "connect"
    assert fields["DBUser"] == "app_user"
    assert fields["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["X-Amz-Expires"] == "900"
    access_key, _date, region, service, _ = fields["X-Amz-Credential"].split("/")
    assert (access_key, region, service) == (ACCESS_KEY, "eu-west-1", "rds-db")
    in_token, recomputed = _signature(token, "db.example.com:5432", SECRET_KEY)
    assert in_token == recomputed
    assert SECRET_KEY not in token


def test_region_from_environment(aws_env: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    aws_env.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    token = iam_token("db.example.com", 6543, "app", None)
    assert token.startswith("db.example.com:6543/?")
    assert "%2Fap-southeast-2%2Frds-db%2F" in token


def test_missing_credentials_give_a_clear_error(aws_env: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    with pytest.raises(IamError) as caught:
        iam_token("db.example.com", 5432, "app", "eu-west-1")
    assert "credentials" in str(caught.value)
    assert caught.value.hint and "AWS_ACCESS_KEY_ID" in caught.value.hint


def test_missing_region_gives_a_clear_error(aws_env: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    with pytest.raises(IamError, match="region"):
        iam_token("db.example.com", 5432, "app")


def test_without_boto3_the_error_says_how_to_install_it() -> None:
    """A real interpreter in which boto3 cannot be imported."""
    script = (
        "import sys\n"
        "sys.modules['boto3'] = None  # makes 'import boto3' raise ImportError\n"
        "from sqlite2pg.iam import iam_token, IamError\n"
        "try:\n"
        "    iam_token('h', 5432, 'u', 'eu-west-1')\n"
        "except IamError as exc:\n"
        "    print(isinstance(exc, RuntimeError), exc.exit_code, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == (
        "True 2 IAM authentication needs boto3, which is not installed "
        "(hint: pip install 'sqlite2pg[iam]')"
    )


def test_iam_error_is_a_config_error() -> None:
    err = IamError("x", hint="y")
    assert isinstance(err, ConfigError) and isinstance(err, RuntimeError)


def test_rotated_credentials_are_picked_up(aws_env: pytest.MonkeyPatch) -> None:
    """No process-wide caching: a long-lived process sees the credentials of the moment."""
    pytest.importorskip("boto3")
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    first = iam_token("db.example.com", 5432, "app", "eu-west-1")
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIDROTATED")
    second = iam_token("db.example.com", 5432, "app", "eu-west-1")
    assert f"X-Amz-Credential={ACCESS_KEY}%2F" in first
    assert "X-Amz-Credential=AKIDROTATED%2F" in second
