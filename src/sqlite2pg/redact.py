"""Keep passwords out of logs, reports and messages.

* :func:`redact_url` hides the password of one connection string, URL or libpq conninfo.
* :func:`redact_text` hides known secret values anywhere in a text, and also any password it
  can recognise by shape (``scheme://user:pw@``, ``password=...``) even when not told about it.
* :class:`RedactingFilter` applies :func:`redact_text` to every log record passing through a
  handler: message, arguments, extra fields, exception and stack text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote

__all__ = ["MASK", "RedactingFilter", "is_secret_key", "redact_text", "redact_url"]

MASK = "***"

# Names whose values are secrets, as words ending in one of these (case-insensitive):
# password, sslpassword, PGPASSWORD, db_password, passwd, secret, client_secret, token,
# access_token, api_key, apikey.
_SECRET_KEY = r"[A-Za-z0-9_]*(?:password|passwd|secret|token|api_?key)"
_SECRET_KEY_RE = re.compile(_SECRET_KEY, re.IGNORECASE)

# key=value pairs as in libpq conninfo ("host=x password='a b'"), env dumps and query strings.
_QUOTED = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_CONNINFO_RE = re.compile(
    rf"(?P<key>\b{_SECRET_KEY})(?P<eq>\s*=\s*)(?P<value>{_QUOTED}|\S+)", re.IGNORECASE
)
_TEXT_KEY_VALUE_RE = re.compile(
    rf"(?P<key>\b{_SECRET_KEY})(?P<eq>[\"']?\s*[=:]\s*)(?P<value>{_QUOTED}|[^\s&;,'\"]+)",
    re.IGNORECASE,
)
# scheme://user:password@host  (the password may itself contain '@' when not percent-encoded)
_URL_USERINFO_RE = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@?#]*:)(?P<password>[^\s/?#]*)(?P<at>@)"
)


def is_secret_key(key: str) -> bool:
    """Whether a parameter / setting name holds a secret (``password``, ``api_key`` ...)."""
    return _SECRET_KEY_RE.fullmatch(key.strip()) is not None


def redact_url(url: str) -> str:
    """``url`` with its passwords replaced by ``***``; everything else unchanged.

    Handles URLs (``postgresql://user:secret@host/db?password=x&sslpassword=y`` ->
    ``postgresql://user:***@host/db?password=***&sslpassword=***``) and libpq conninfo strings
    (``host=x password=y`` -> ``host=x password=***``, quoted values included).
    """
    if "://" in url:
        scheme, _, rest = url.partition("://")
        # The userinfo ends at the last '@' before the query: a password typed without
        # percent-encoding may itself hold '@' or '/'.
        query_start = rest.find("?")
        at = rest.rfind("@", 0, query_start if query_start != -1 else len(rest))
        if at != -1 and ":" in rest[:at]:
            user = rest[:at].partition(":")[0]
            rest = f"{user}:{MASK}{rest[at:]}"
        end = len(rest)
        for stop in "/?#":
            index = rest.find(stop, rest.find("@") + 1)
            if index != -1:
                end = min(end, index)
        netloc, tail = rest[:end], rest[end:]
        path, question, query = tail.partition("?")
        if question:
            query, hash_, fragment = query.partition("#")
            query = "&".join(_redact_query_item(item) for item in query.split("&"))
            tail = f"{path}?{query}{hash_}{fragment}"
        return f"{scheme}://{netloc}{tail}"
    return _CONNINFO_RE.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", url)


def _redact_query_item(item: str) -> str:
    key, eq, _ = item.partition("=")
    if eq and is_secret_key(unquote(key)):
        return f"{key}={MASK}"
    return item


def _variants(secret: str) -> set[str]:
    """The forms a secret may take in text: as is, percent-encoded, form-encoded."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe="")}


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every occurrence of each known secret replaced by ``***``.

    Secrets are also found percent-encoded (as they appear inside URLs). On top of the known
    values, passwords recognisable by shape are hidden: ``scheme://user:pw@`` and
    ``password=...``, ``sslpassword: ...``, ``PGPASSWORD=...`` (see :func:`is_secret_key`).
    Empty secrets are ignored.
    """
    values: set[str] = set()
    for secret in secrets:
        if secret:
            values.update(_variants(secret))
    for value in sorted(values, key=len, reverse=True):  # longest first: no partial leftovers
        text = text.replace(value, MASK)
    text = _URL_USERINFO_RE.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)
    return _TEXT_KEY_VALUE_RE.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_RECORD_ATTRS = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    """A handler filter hiding secrets in each record (never drops a record).

    The message is rendered with its arguments and redacted (``record.args`` becomes empty),
    string values passed through ``extra=`` are redacted, and exception and stack text is
    rendered and redacted so formatters print the scrubbed version. Add secrets learnt later
    (a freshly generated token) with :meth:`add`.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset(s for s in secrets if s)

    @property
    def secrets(self) -> frozenset[str]:
        return self._secrets

    def add(self, *secrets: str) -> None:
        """Also hide these values from now on."""
        with self._lock:
            self._secrets = self._secrets | {s for s in secrets if s}

    def redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # malformed args: let the handler report it, but scrub what we can
            record.msg = self.redact(str(record.msg))
        else:
            record.msg = self.redact(message)
            record.args = ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_RECORD_ATTRS:
                record.__dict__[key] = self._redact_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        return value
