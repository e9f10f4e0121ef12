"""Notifications: a real local HTTP server receives the webhook, a real command reads stdin."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sqlite2pg.notify import NotifySettings, events_for, notify

FAILED: dict[str, Any] = {
    "status": "failed",
    "run_id": "r-1",
    "error": "target unreachable",
    "counts": {"rejected": 0, "differences": 0},
}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables; the local server must be reached directly."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Hook:
    """What the local webhook server received, and the statuses it should answer with."""

    url: str
    replies: list[int] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append((self.path, dict(self.headers.items()), body))
            status = state.replies.pop(0) if state.replies else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0KEN-IN-PATH"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize(
    ("summary", "events"),
    [
        ({"status": "ok"}, {"success"}),
        ({"status": "ok", "counts": {"rejected": 0, "differences": 0}}, {"success"}),
        ({"status": "failed"}, {"failure"}),
        ({"status": "rejected", "counts": {"rejected": 4}}, {"rejected"}),
        ({"status": "differences"}, {"differences"}),
        ({"status": "ok", "counts": {"rejected": 2}}, {"rejected"}),
        (
            {"status": "rejected", "counts": {"rejected": 1, "differences": 3}},
            {"rejected", "differences"},
        ),
        ({"status": "failed", "counts": {"rejected": 1}}, {"failure", "rejected"}),
        ({"status": "exploded"}, {"failure"}),
        ({}, {"failure"}),
    ],
)
def test_events_for(summary: dict[str, Any], events: set[str]) -> None:
    assert events_for(summary) == events


def test_settings_validate_events_and_url() -> None:
    with pytest.raises(ValueError, match="unknown notification event"):
        NotifySettings(on={"failure", "sometimes"})
    with pytest.raises(ValueError, match="http"):
        NotifySettings(webhook="ftp://example.com/x")
    assert NotifySettings(on={"success"}).on == frozenset({"success"})
    assert NotifySettings().on == frozenset({"failure", "rejected", "differences"})


# --------------------------------------------------------------------------- webhook


def test_webhook_receives_summary_as_json(hook: Hook) -> None:
    settings = NotifySettings(webhook=hook.url, headers={"Authorization": "Bearer abc"})
    assert notify(FAILED, settings) == []
    ((path, headers, body),) = hook.requests
    assert path == "/hooks/T0KEN-IN-PATH"
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer abc"
    assert json.loads(body) == FAILED


def test_webhook_retries_server_errors(hook: Hook) -> None:
    hook.replies = [503, 502]
    settings = NotifySettings(webhook=hook.url, retry_wait=0)
    assert notify(FAILED, settings) == []
    assert len(hook.requests) == 3
    assert all(json.loads(body) == FAILED for _, _, body in hook.requests)


def test_webhook_gives_up_after_retries_without_raising(hook: Hook) -> None:
    hook.replies = [500, 500, 500, 500]
    problems = notify(FAILED, NotifySettings(webhook=hook.url, retry_wait=0))
    assert len(hook.requests) == 3  # first try + 2 retries
    (problem,) = problems
    assert "HTTP 500" in problem and "3 attempt" in problem
    assert "T0KEN" not in problem  # the path may be the credential


def test_webhook_client_error_is_not_retried(hook: Hook) -> None:
    hook.replies = [401]
    (problem,) = notify(FAILED, NotifySettings(webhook=hook.url, retry_wait=0))
    assert len(hook.requests) == 1
    assert "HTTP 401" in problem


def test_unreachable_webhook_is_reported_not_raised() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problems = notify(
        FAILED, NotifySettings(webhook=f"http://127.0.0.1:{port}/x", retries=1, retry_wait=0)
    )
    assert len(problems) == 1
    assert "2 attempt" in problems[0]


def test_success_is_not_sent_by_default(hook: Hook, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    settings = NotifySettings(webhook=hook.url, command=f"cat > '{out}'")
    assert notify({"status": "ok"}, settings) == []
    assert hook.requests == []
    assert not out.exists()

    settings = NotifySettings(webhook=hook.url, on={"success"})
    assert notify({"status": "ok"}, settings) == []
    assert len(hook.requests) == 1


# --------------------------------------------------------------------------- command


def test_command_gets_summary_on_stdin_and_status_in_env(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    env = tmp_path / "env.txt"
    command = f"cat > '{out}'; echo \"$SQLITE2PG_STATUS $SQLITE2PG_EVENTS\" > '{env}'"
    summary = {"status": "rejected", "counts": {"rejected": 2, "differences": 1}}
    assert notify(summary, NotifySettings(command=command)) == []
    assert json.loads(out.read_text()) == summary
    assert env.read_text() == "rejected differences,rejected\n"


def test_failing_command_is_reported(tmp_path: Path) -> None:
    (problem,) = notify(FAILED, NotifySettings(command="echo 'mailer down' >&2; exit 3"))
    assert "exit status 3" in problem and "mailer down" in problem


def test_command_and_webhook_fail_independently(hook: Hook, tmp_path: Path) -> None:
    hook.replies = [400]
    out = tmp_path / "out.json"
    problems = notify(FAILED, NotifySettings(command=f"cat > '{out}'", webhook=hook.url))
    assert json.loads(out.read_text()) == FAILED  # the command still ran
    assert len(problems) == 1 and "HTTP 400" in problems[0]


def test_unserialisable_summary_is_reported(hook: Hook) -> None:
    summary: dict[str, Any] = {"status": "failed"}
    summary["self"] = summary
    (problem,) = notify(summary, NotifySettings(webhook=hook.url))
    assert "JSON" in problem
    assert hook.requests == []
