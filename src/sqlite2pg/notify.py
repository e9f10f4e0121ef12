"""Tell someone how an unattended run went: run a command and/or POST to a webhook.

The run summary is a JSON-serialisable mapping produced by the pipeline. This module reads:

* ``summary["status"]``: ``"ok"``, ``"rejected"``, ``"differences"`` or ``"failed"``;
* ``summary["counts"]["rejected"]`` and ``summary["counts"]["differences"]`` (optional ints):
  a non-zero count raises the matching event whatever the status.

Notifying never raises: a failure is logged and returned as a message, so a broken webhook
cannot turn a good run into a failed one.

Example::

    settings = NotifySettings(webhook="https://hooks.example.com/sqlite2pg",
                              headers={"Authorization": f"Bearer {token}"})
    problems = notify(report_summary, settings)
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlite2pg.redact import redact_text, redact_url

__all__ = ["DEFAULT_EVENTS", "EVENTS", "NotifySettings", "events_for", "notify"]

log = logging.getLogger("sqlite2pg.notify")

EVENTS = frozenset({"failure", "rejected", "differences", "success"})
DEFAULT_EVENTS = frozenset({"failure", "rejected", "differences"})

_STATUS_EVENTS = {
    "ok": "success",
    "rejected": "rejected",
    "differences": "differences",
    "failed": "failure",
}


@dataclass(frozen=True)
class NotifySettings:
    """Where and when to notify.

    ``command`` runs through ``/bin/sh -c`` with the JSON summary on stdin and the environment
    variables ``SQLITE2PG_STATUS`` (the summary's status) and ``SQLITE2PG_EVENTS``
    (comma-separated). ``webhook`` receives the summary as an ``application/json`` POST with
    ``headers`` added; a network error, a timeout, HTTP 429 or 5xx is retried ``retries``
    times, ``retry_wait`` seconds apart (doubling). ``on`` is the set of events worth a
    notification.
    """

    command: str | None = None
    webhook: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    on: AbstractSet[str] = DEFAULT_EVENTS
    timeout: float = 10.0
    retries: int = 2
    retry_wait: float = 1.0
    command_timeout: float = 60.0

    def __post_init__(self) -> None:
        on = frozenset(self.on)
        unknown = on - EVENTS
        if unknown:
            raise ValueError(
                f"unknown notification event(s) {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(sorted(EVENTS))}"
            )
        object.__setattr__(self, "on", on)
        if self.webhook is not None and urlsplit(self.webhook).scheme not in ("http", "https"):
            raise ValueError(f"webhook {redact_url(self.webhook)!r} must be an http(s) URL")
        if self.retries < 0 or self.timeout <= 0 or self.retry_wait < 0:
            raise ValueError("webhook timeout must be positive and retries/retry_wait >= 0")


def events_for(summary: Mapping[str, Any]) -> set[str]:
    """The events a run summary raises.

    ``failed`` -> ``{"failure"}``; ``rejected`` / ``differences`` -> that event; ``ok`` ->
    ``{"success"}``. Non-zero ``counts.rejected`` / ``counts.differences`` add their event
    (and then the run is no ``success``). A missing or unknown status counts as a failure:
    better a needless message than a silent broken run.
    """
    status = summary.get("status")
    events = {_STATUS_EVENTS.get(status, "failure") if isinstance(status, str) else "failure"}
    counts = summary.get("counts")
    if isinstance(counts, Mapping):
        for event in ("rejected", "differences"):
            value = counts.get(event)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                events.add(event)
    if len(events) > 1:
        events.discard("success")
    return events


def notify(summary: Mapping[str, Any], settings: NotifySettings) -> list[str]:
    """Send the notifications ``settings`` asks for this ``summary``; return what went wrong.

    An empty list means every configured channel succeeded (or none was due).
    """
    events = events_for(summary)
    due = events & settings.on
    if not due or (settings.command is None and settings.webhook is None):
        return []
    try:
        payload = json.dumps(summary, default=str, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        message = f"notification not sent: the run summary is not JSON-serialisable ({exc})"
        log.error(message)
        return [message]

    problems: list[str] = []
    status = str(summary.get("status", "failed"))
    if settings.command is not None:
        problem = _run_command(settings, payload, status, events)
        if problem:
            problems.append(problem)
    if settings.webhook is not None:
        problem = _post_webhook(settings, settings.webhook, payload)
        if problem:
            problems.append(problem)
    for problem in problems:
        log.error(problem)
    return problems


def _run_command(
    settings: NotifySettings, payload: bytes, status: str, events: set[str]
) -> str | None:
    assert settings.command is not None
    env = {
        **os.environ,
        "SQLITE2PG_STATUS": status,
        "SQLITE2PG_EVENTS": ",".join(sorted(events)),
    }
    shown = redact_text(settings.command)
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", settings.command],
            input=payload,
            env=env,
            capture_output=True,
            timeout=settings.command_timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"notify command {shown!r} did not finish within {settings.command_timeout:g}s"
    except OSError as exc:
        return f"notify command {shown!r} could not start: {exc}"
    if done.returncode != 0:
        stderr = redact_text(done.stderr.decode("utf-8", "replace").strip())[-500:]
        return f"notify command {shown!r} failed with exit status {done.returncode}: {stderr}"
    log.info("notification command %r ran", shown)
    return None


def _webhook_label(url: str) -> str:
    """Scheme and host only: webhook paths and queries often embed the credential."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}"


def _post_webhook(settings: NotifySettings, url: str, payload: bytes) -> str | None:
    label = _webhook_label(url)
    headers = {"User-Agent": "sqlite2pg", **settings.headers, "Content-Type": "application/json"}
    attempts = settings.retries + 1
    wait = settings.retry_wait
    last = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout) as response:
                response.read()
            log.info("notification posted to %s", label)
            return None
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                break  # the request itself is wrong: retrying will not help
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            last = str(reason) or type(reason).__name__
        if attempt < attempts:
            log.warning(
                "webhook %s attempt %d/%d failed (%s); retrying", label, attempt, attempts, last
            )
            time.sleep(wait)
            wait *= 2
    return f"webhook {label} failed after {attempt} attempt(s): {last}"
