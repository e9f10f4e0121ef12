"""Redaction of passwords in URLs, conninfo strings, free text and log records."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import psycopg
import pytest

from sqlite2pg.redact import RedactingFilter, is_secret_key, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://user:secret@host/db?password=x&sslpassword=y",
            "postgresql://user:***@host/db?password=***&sslpassword=***",
        ),
        (
            "postgresql://user:secret@host:5432/db?sslmode=require&application_name=a",
            "postgresql://user:***@host:5432/db?sslmode=require&application_name=a",
        ),
        ("postgresql://u:p@ss/w@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),
        ("postgresql://u:p%40ss@host/db#frag", "postgresql://u:***@host/db#frag"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("postgresql:///db?host=/tmp&password=z", "postgresql:///db?host=/tmp&password=***"),
        ("postgresql://h/db?PASSWORD=z", "postgresql://h/db?PASSWORD=***"),
        ("host=x password=y dbname=d", "host=x password=*** dbname=d"),
        ("host=x password = 'a b\\' c' user=u", "host=x password = *** user=u"),
        ("host=x sslpassword=k", "host=x sslpassword=***"),
        ("host=x dbname=d", "host=x dbname=d"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redacted_url_still_connects_identically_apart_from_password() -> None:
    """The redacted form keeps every other parameter exactly as psycopg reads it."""
    url = "postgresql://alice:s3cr%2Ft@db.example:6543/app?sslmode=require&password=other"
    original = psycopg.conninfo.conninfo_to_dict(url)
    redacted = psycopg.conninfo.conninfo_to_dict(redact_url(url))
    assert redacted.pop("password") == "***"
    original.pop("password")
    assert redacted == original


def test_redact_text_known_secrets_everywhere() -> None:
    text = "auth with hunter2 failed; url postgresql://u:hunter%402@h/db; again hunter@2!"
    out = redact_text(text, ["hunter2", "hunter@2", ""])
    assert "hunter" not in out
    assert out == "auth with *** failed; url postgresql://u:***@h/db; again ***!"


def test_redact_text_finds_passwords_by_shape() -> None:
    text = (
        "dsn postgresql://bob:pw1@db/x; conninfo host=h password=pw2; env PGPASSWORD=pw3; "
        '{"password": "pw4"}; api_key: pw5'
    )
    out = redact_text(text)
    for leaked in ("pw1", "pw2", "pw3", "pw4", "pw5"):
        assert leaked not in out
    assert "postgresql://bob:***@db/x" in out
    assert redact_text("password authentication failed") == "password authentication failed"


def test_redact_text_leaves_ordinary_text_alone() -> None:
    text = "copied 1,000 rows into users (host=db port=5432) at http://example.com:8080/x"
    assert redact_text(text, ["not-present"]) == text


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("sslpassword", True),
        ("PGPASSWORD", True),
        ("client_secret", True),
        ("api_key", True),
        ("host", False),
        ("sslkey", False),
        ("tokens_used", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, RedactingFilter]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(detail)s"))
    flt = RedactingFilter(["s3cret"])
    handler.addFilter(flt)
    logger = logging.getLogger("sqlite2pg.test_redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream, flt
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_filter_scrubs_message_args_and_extra(
    captured: tuple[logging.Logger, io.StringIO, RedactingFilter],
) -> None:
    logger, stream, _ = captured
    logger.info(
        "connecting to %s as %s",
        "postgresql://app:s3cret@db/x",
        "app",
        extra={"detail": "pw=s3cret"},
    )
    out = stream.getvalue()
    assert "s3cret" not in out
    assert out == "INFO connecting to postgresql://app:***@db/x as app pw=***\n"


def test_filter_scrubs_exception_text(
    captured: tuple[logging.Logger, io.StringIO, RedactingFilter],
) -> None:
    logger, stream, _ = captured
    try:
        raise RuntimeError("login with s3cret refused")
    except RuntimeError:
        logger.exception("failed", extra={"detail": ""})
    out = stream.getvalue()
    assert "RuntimeError: login with *** refused" in out
    assert "s3cret" not in out


def test_filter_learns_new_secrets(
    captured: tuple[logging.Logger, io.StringIO, RedactingFilter],
) -> None:
    logger, stream, flt = captured
    logger.info("token %s", "tok-123", extra={"detail": ""})
    flt.add("tok-456")
    logger.info("value %s", "tok-456", extra={"detail": ""})
    assert stream.getvalue() == "INFO token tok-123 \nINFO value *** \n"
    assert "tok-456" in flt.secrets
