"""Run reports: the JSON document (stable keys), the self-contained HTML page (escaped, complete,
charted), the terminal summary, finding reports, and the page as headless Chromium draws it."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sqlite2pg.errors import InputError
from sqlite2pg.model import Rejection
from sqlite2pg.report import (
    build_document,
    latest_report,
    load_report,
    render_html,
    render_summary,
    run_points,
    write_run_report,
)
from sqlite2pg.state import RunRecord

HOSTILE = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")

REPORT_KEYS = [
    "run_id",
    "command",
    "status",
    "mode",
    "exit_code",
    "source",
    "target",
    "schema",
    "started_at",
    "finished_at",
    "seconds",
    "totals",
    "tables",
    "warnings",
    "skipped",
    "verification",
    "error",
    "report_files",
    "rejects",
    "rejects_truncated",
    "history",
    "report_format",
]
HISTORY_KEYS = {
    "run_id",
    "command",
    "started_at",
    "status",
    "seconds",
    "inserted",
    "updated",
    "deleted",
    "rejected",
}


# -- realistic run reports (the shape of RunReport.as_dict())


def table_result(
    target: str,
    strategy: str = "full",
    *,
    read: int = 0,
    inserted: int = 0,
    updated: int = 0,
    deleted: int = 0,
    unchanged: int = 0,
    rejected: int = 0,
    seconds: float = 0.1,
    orphans: dict[str, int] | None = None,
    orphan_samples: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    return {
        "target": target,
        "strategy": strategy,
        "read": read,
        "written": inserted + updated,
        "inserted": inserted,
        "updated": updated,
        "deleted": deleted,
        "unchanged": unchanged,
        "rejected": rejected,
        "changed_by_policy": 0,
        "seconds": seconds,
        "orphans": orphans or {},
        "orphan_samples": orphan_samples or {},
    }


def run_report(
    run_id: str,
    *,
    started: str,
    finished: str | None,
    seconds: float,
    tables: dict[str, dict[str, Any]],
    status: str = "ok",
    mode: str = "full",
    verification: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    skipped: list[dict[str, str]] | None = None,
    error: str | None = None,
    source: str = "/srv/app/Chinook.sqlite",
) -> dict[str, Any]:
    exit_code = {"ok": 0, "rejected": 1, "differences": 1, "failed": 3}[status]
    return {
        "run_id": run_id,
        "command": "sync",
        "status": status,
        "mode": mode,
        "exit_code": exit_code,
        "source": source,
        "target": "postgresql://app@db.example.com:5432/app",
        "schema": "public",
        "started_at": started,
        "finished_at": finished,
        "seconds": seconds,
        "totals": {
            k: sum(t[k] for t in tables.values())
            for k in ("read", "written", "inserted", "updated", "deleted", "rejected")
        },
        "tables": tables,
        "warnings": warnings or [],
        "skipped": skipped or [],
        "verification": verification,
        "error": error,
        "report_files": [],
    }


def identical_verification(tables: dict[str, int]) -> dict[str, Any]:
    return {
        "level": "checksum",
        "identical": True,
        "tables": {
            name: {
                "target": name.lower(),
                "source_rows": n,
                "target_rows": n,
                "missing": [],
                "extra": [],
                "different": [],
                "rejected": 0,
            }
            for name, n in tables.items()
        },
        "schema_differences": [],
        "summary_lines": [f"{len(tables)} tables identical ({sum(tables.values()):,} rows)"],
        "seconds": 1.8,
    }


CHINOOK_ROWS = {
    "Artist": 275,
    "Album": 347,
    "Track": 3503,
    "Customer": 59,
    "Invoice": 412,
    "InvoiceLine": 2240,
    "PlaylistTrack": 8715,
}


def full_run() -> dict[str, Any]:
    tables = {
        name: table_result(name.lower(), read=n, inserted=n, seconds=round(n / 20000, 3))
        for name, n in CHINOOK_ROWS.items()
    }
    return run_report(
        "20240301T090000-a1b2c3",
        started="2024-03-01T09:00:00+00:00",
        finished="2024-03-01T09:00:04+00:00",
        seconds=3.912,
        tables=tables,
        verification=identical_verification(CHINOOK_ROWS),
        skipped=[{"kind": "view", "name": "TopTracks", "reason": "views are not copied"}],
    )


def incremental_run() -> dict[str, Any]:
    tables = {
        "Track": table_result(
            "track",
            "updated_at",
            read=140,
            inserted=120,
            updated=18,
            deleted=2,
            unchanged=3363,
            seconds=0.31,
        ),
        "Invoice": table_result(
            "invoice", "rowid", read=40, inserted=40, unchanged=412, seconds=0.12
        ),
        "InvoiceLine": table_result(
            "invoiceline",
            "hash",
            read=2290,
            inserted=50,
            deleted=7,
            unchanged=2233,
            seconds=0.44,
            orphans={"fk_invoiceline_trackid": 2},
            orphan_samples={
                "fk_invoiceline_trackid": [{"InvoiceLineId": 2241}, {"InvoiceLineId": 2242}]
            },
        ),
        "Artist": table_result("artist", "hash", read=275, unchanged=275, seconds=0.02),
    }
    counts = {"Track": 3621, "Invoice": 452, "InvoiceLine": 2283, "Artist": 275}
    return run_report(
        "20240302T090000-d4e5f6",
        started="2024-03-02T09:00:00+00:00",
        finished="2024-03-02T09:00:02+00:00",
        seconds=1.274,
        mode="incremental",
        tables=tables,
        verification=identical_verification(counts),
        warnings=["table Artist has no change column: compared by row hashes"],
    )


def failed_run() -> dict[str, Any]:
    return run_report(
        "20240303T090000-0f0f0f",
        started="2024-03-03T09:00:00+00:00",
        finished="2024-03-03T09:00:31+00:00",
        seconds=31.0,
        status="failed",
        mode="incremental",
        tables={},
        error=(
            "sync failed, nothing was changed in the target: connection to server at "
            '"db.example.com" (10.0.0.5), port 5432 failed: Connection refused'
        ),
    )


def differences_run() -> dict[str, Any]:
    tables = {
        "Track": table_result(
            "track", "updated_at", read=12, inserted=10, updated=2, unchanged=3609, seconds=0.2
        ),
        "Invoice": table_result(
            "invoice", "rowid", read=5, inserted=3, unchanged=452, rejected=2, seconds=0.1
        ),
    }
    verification = {
        "level": "rows",
        "identical": False,
        "tables": {
            "Track": {
                "target": "track",
                "source_rows": 3631,
                "target_rows": 3631,
                "missing": [{"TrackId": 17}],
                "extra": [{"TrackId": 90001}],
                "different": [
                    {
                        "key": {"TrackId": 5},
                        "columns": {
                            "UnitPrice": ["0.99", "1.99"],
                            "Name": ["Princess of the Dawn", "Princess of the Dawn (remaster)"],
                        },
                    }
                ],
                "rejected": 0,
            },
            "Invoice": {
                "target": "invoice",
                "source_rows": 455,
                "target_rows": 453,
                "missing": [],
                "extra": [],
                "different": [],
                "rejected": [{"InvoiceId": 413}, {"InvoiceId": 414}],
            },
        },
        "schema_differences": [
            "index ifk_trackalbumid on public.track is missing in the target",
            "column public.invoice.total: plan says numeric(10,2), target has text",
        ],
        "summary_lines": [
            "Track: 1 missing, 1 extra, 1 different",
            "Invoice: identical (2 rejected rows are absent as expected)",
        ],
        "seconds": 0.9,
    }
    return run_report(
        "20240304T090000-beef01",
        started="2024-03-04T09:00:00+00:00",
        finished="2024-03-04T09:00:02+00:00",
        seconds=1.9,
        status="differences",
        mode="incremental",
        tables=tables,
        verification=verification,
    )


def differences_rejects() -> list[Rejection]:
    return [
        Rejection(
            "Invoice",
            {"InvoiceId": 413},
            "InvoiceDate",
            "'2024-02-30 00:00:00'",
            "not a valid timestamp: day is out of range for month",
        ),
        Rejection(
            "Invoice",
            {"InvoiceId": 414},
            "Total",
            "'twelve'",
            "text 'twelve' in a numeric(10,2) column",
        ),
    ]


def hostile_run() -> dict[str, Any]:
    tables = {
        HOSTILE: table_result(
            "script_alert_1_script",
            "hash",
            read=3,
            inserted=2,
            rejected=1,
            orphans={'fk_"><img src=x onerror=alert(2)>': 1},
            orphan_samples={'fk_"><img src=x onerror=alert(2)>': [{"id": "<b>1</b>"}]},
        )
    }
    verification = {
        "level": "rows",
        "identical": False,
        "tables": {
            HOSTILE: {
                "target": "script_alert_1_script",
                "source_rows": 3,
                "target_rows": 3,
                "missing": [{"id": "<svg onload=alert(3)>"}],
                "extra": [],
                "different": [
                    {"key": {"id": 1}, "columns": {"<i>note</i>": ["</td></tr></table>", "&amp;"]}}
                ],
                "rejected": 1,
            }
        },
        "schema_differences": [f"table {HOSTILE} has no primary key in the target"],
        "summary_lines": [f"{HOSTILE}: 1 missing, 1 different"],
        "seconds": 0.01,
    }
    return run_report(
        "20240305T090000-c0ffee",
        started="2024-03-05T09:00:00+00:00",
        finished="2024-03-05T09:00:01+00:00",
        seconds=0.5,
        status="differences",
        mode="incremental",
        tables=tables,
        verification=verification,
        warnings=[f"column {HOSTILE}.x has no declared type"],
        skipped=[{"kind": "trigger", "name": "<iframe src=//evil>", "reason": "<b>bold</b>"}],
        source="/tmp/\"'><svg onload=alert(4)>.db",
    )


def hostile_rejects() -> list[Rejection]:
    return [Rejection(HOSTILE, {"id": "<img src=x onerror=alert(5)>"}, "v", "'<script>'", HOSTILE)]


def record(report: dict[str, Any], *, with_summary: bool = True) -> RunRecord:
    """The state database's record of a finished run."""
    return RunRecord(
        run_id=report["run_id"],
        command=report["command"],
        source=report["source"],
        target=report["target"],
        schema=report["schema"],
        started_at=report["started_at"],
        finished_at=report["finished_at"],
        status=report["status"],
        error=report["error"],
        summary=report if with_summary else None,
    )


def running(report: dict[str, Any]) -> RunRecord:
    """The state database's record of the run being reported (finished only after the report)."""
    return RunRecord(
        report["run_id"],
        report["command"],
        report["source"],
        report["target"],
        report["schema"],
        report["started_at"],
        None,
        "running",
        None,
        None,
    )


def newest_first(*records: RunRecord) -> list[RunRecord]:
    """As StateDB.runs() returns them."""
    return sorted(records, key=lambda r: r.started_at, reverse=True)


def full_history_case() -> tuple[dict[str, Any], list[RunRecord], list[Rejection]]:
    """The differences run, after a full load, an incremental sync and a failed sync."""
    report = differences_run()
    history = newest_first(
        record(full_run()),
        record(incremental_run()),
        record(failed_run(), with_summary=False),
        running(report),
    )
    return report, history, differences_rejects()


# -- an HTML reader that sees what a browser sees


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def with_class(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and cls in a.get("class", "").split()]


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "nav", "section", "footer",
    "div", "span", "h1", "h2", "h3", "p", "a", "b", "i", "code", "pre", "dl", "dt", "dd",
    "ul", "li", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "details", "summary",
    "svg", "g", "rect", "line", "circle", "polyline", "text",
}  # fmt: skip


def write(tmp_path: Path, report: dict[str, Any], **kw: Any) -> tuple[dict[str, Any], str]:
    history = kw.pop("history", [running(report)])
    rejects = kw.pop("rejects", [])
    paths = write_run_report(report, folder=tmp_path, history=history, rejects=rejects, **kw)
    json_path, html_path = paths
    assert json_path == tmp_path / f"{report['run_id']}.json"
    assert html_path == tmp_path / f"{report['run_id']}.html"
    return json.loads(json_path.read_text("utf-8")), html_path.read_text("utf-8")


# -- JSON


def test_json_of_a_full_run_has_the_stable_keys_and_the_run_itself(tmp_path: Path) -> None:
    report = full_run()
    doc, _ = write(tmp_path, report)
    assert list(doc) == REPORT_KEYS
    for key in REPORT_KEYS[:17]:
        assert doc[key] == report[key], key
    assert doc["report_files"] == [
        str(tmp_path / "20240301T090000-a1b2c3.json"),
        str(tmp_path / "20240301T090000-a1b2c3.html"),
    ]
    assert doc["rejects"] == []
    assert doc["rejects_truncated"] == 0
    assert doc["report_format"] == 1
    # the run's own record (still "running" in the state database) is replaced by its report
    assert doc["history"] == [
        {
            "run_id": "20240301T090000-a1b2c3",
            "command": "sync",
            "started_at": "2024-03-01T09:00:00+00:00",
            "status": "ok",
            "seconds": 3.912,
            "inserted": sum(CHINOOK_ROWS.values()),
            "updated": 0,
            "deleted": 0,
            "rejected": 0,
        }
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_json_history_is_oldest_first_with_durations_of_failed_runs(tmp_path: Path) -> None:
    report, history, rejects = full_history_case()
    doc, _ = write(tmp_path, report, history=history, rejects=rejects)
    hist = doc["history"]
    assert [h["run_id"] for h in hist] == [
        "20240301T090000-a1b2c3",
        "20240302T090000-d4e5f6",
        "20240303T090000-0f0f0f",
        "20240304T090000-beef01",
    ]
    assert all(set(h) == HISTORY_KEYS for h in hist)
    assert [h["status"] for h in hist] == ["ok", "ok", "failed", "differences"]
    assert hist[1] == {
        "run_id": "20240302T090000-d4e5f6",
        "command": "sync",
        "started_at": "2024-03-02T09:00:00+00:00",
        "status": "ok",
        "seconds": 1.274,
        "inserted": 210,
        "updated": 18,
        "deleted": 9,
        "rejected": 0,
    }
    # a failed run has no summary: its duration comes from its start and end
    assert hist[2]["seconds"] == 31.0
    assert (hist[2]["inserted"], hist[2]["updated"], hist[2]["deleted"]) == (0, 0, 0)
    assert hist[3]["rejected"] == 2


def test_json_keeps_the_first_rejects_and_counts_the_rest(tmp_path: Path) -> None:
    report = differences_run()
    many = [
        Rejection("Invoice", {"InvoiceId": 1000 + i}, "Total", f"'x{i}'", "not a number")
        for i in range(5)
    ]
    doc, page = write(tmp_path, report, rejects=iter(many), max_rejects=2)
    assert doc["rejects"] == [
        {
            "table": "Invoice",
            "key": {"InvoiceId": 1000},
            "column": "Total",
            "value": "'x0'",
            "reason": "not a number",
        },
        {
            "table": "Invoice",
            "key": {"InvoiceId": 1001},
            "column": "Total",
            "value": "'x1'",
            "reason": "not a number",
        },
    ]
    assert doc["rejects_truncated"] == 3
    assert "Showing the first 2 of 5 rejected values" in Page(page).text


def test_a_run_id_that_is_not_a_file_name_is_refused(tmp_path: Path) -> None:
    report = full_run() | {"run_id": "../escape"}
    with pytest.raises(ValueError, match="cannot name a report file"):
        write_run_report(report, folder=tmp_path / "r", history=[], rejects=[])
    assert not (tmp_path / "escape.json").exists()


# -- HTML


def test_page_of_a_full_run(tmp_path: Path) -> None:
    _, text = write(tmp_path, full_run())
    page = Page(text)
    header = page.with_class("header", "run")
    assert header
    assert "status-ok" in header[0]["class"]
    words = page.text
    for expected in (
        "sqlite2pg sync · full",
        "/srv/app/Chinook.sqlite",
        "postgresql://app@db.example.com:5432/app",
        "public",
        "2024-03-01 09:00:00 UTC",
        "2024-03-01 09:00:04 UTC",
        "3.91 s",
        "15,551",  # rows read/written/inserted in total
        "identical",
        "TopTracks",
        "views are not copied",
    ):
        assert expected in words, expected
    for name, rows in CHINOOK_ROWS.items():
        assert name in words
        assert f"{rows:,}" in words
    assert "Rejected rows" not in words  # no empty sections


def test_page_of_an_incremental_run_shows_changes_strategies_and_orphans(tmp_path: Path) -> None:
    report = incremental_run()
    history = newest_first(record(full_run()), running(report))
    _, text = write(tmp_path, report, history=history)
    page = Page(text)
    rows = {}
    section = text.split('<section id="tables">')[1].split("</section>")[0]
    for tr in section.split("<tr>")[1:]:
        cells = [c for c in Page("<tr>" + tr.split("</tr>")[0]).texts if c.strip()]
        if cells and cells[0] in report["tables"]:
            rows[cells[0]] = cells
    # table, target, strategy, read, written, inserted, updated, deleted, unchanged, rejected, ...
    assert rows["Track"][2:10] == ["updated_at", "140", "138", "120", "18", "2", "3,363", "0"]
    assert rows["InvoiceLine"][2] == "hash"
    assert "fk_invoiceline_trackid: 2" in page.text
    assert "InvoiceLineId=2241" in page.text
    assert "table Artist has no change column: compared by row hashes" in page.text
    assert "status-ok" in page.with_class("header", "run")[0]["class"]


def test_page_of_a_failed_run_shows_the_error_in_red(tmp_path: Path) -> None:
    report = failed_run()
    _, text = write(tmp_path, report)
    page = Page(text)
    assert "status-failed" in page.with_class("header", "run")[0]["class"]
    assert page.with_class("section", "error")
    assert "Connection refused" in page.text
    assert '"db.example.com"' in page.text
    assert "&quot;db.example.com&quot;" in text
    assert "The run failed before verification." in page.text
    assert "31.0 s" in page.text


def test_page_with_differences_and_rejects_names_every_key_value_and_reason(
    tmp_path: Path,
) -> None:
    report, history, rejects = full_history_case()
    _, text = write(tmp_path, report, history=history, rejects=rejects)
    page = Page(text)
    words = page.text
    assert "status-differences" in page.with_class("header", "run")[0]["class"]
    assert "differences found" in words
    for expected in (
        "TrackId=17",  # missing
        "TrackId=90001",  # extra
        "TrackId=5",  # different, with both values
        "UnitPrice",
        "0.99",
        "1.99",
        "Princess of the Dawn",
        "Princess of the Dawn (remaster)",
        "InvoiceId=413",  # rejected, expected to be absent
        "index ifk_trackalbumid on public.track is missing in the target",
        "column public.invoice.total: plan says numeric(10,2), target has text",
        "Track: 1 missing, 1 extra, 1 different",
    ):
        assert expected in words, expected
    # the rejected rows: table, key, column, value and reason in one row
    reject_rows = [tr for tr in text.split("<tr>") if "InvoiceDate" in tr and "413" in tr]
    assert reject_rows
    cells = Page("<tr>" + reject_rows[0]).texts
    assert cells[:5] == [
        "Invoice",
        "InvoiceId=413",
        "InvoiceDate",
        "'2024-02-30 00:00:00'",
        "not a valid timestamp: day is out of range for month",
    ]
    assert "text 'twelve' in a numeric(10,2) column" in words
    assert "Rejected rows (2)" in words


def test_every_value_is_escaped(tmp_path: Path) -> None:
    report = hostile_run()
    _, text = write(tmp_path, report, rejects=hostile_rejects())
    page = Page(text)
    # nothing but the page's own markup: no script, no event handler, no frame, no image
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    assert not [(t, k) for t, a in page.tags for k in a if k.startswith("on")]
    assert "<script" not in text.lower()
    assert "<img" not in text and "<iframe" not in text and "<svg onload" not in text
    # ... and every hostile value is shown as text
    words = page.text
    for expected in (
        HOSTILE,
        "script_alert_1_script",
        'fk_"><img src=x onerror=alert(2)>: 1',
        "id=<svg onload=alert(3)>",
        "<i>note</i>",
        "</td></tr></table>",
        "&amp;",
        "<iframe src=//evil>",
        "<b>bold</b>",
        "/tmp/\"'><svg onload=alert(4)>.db",
        "id=<img src=x onerror=alert(5)>",
        f"column {HOSTILE}.x has no declared type",
    ):
        assert expected in words, expected
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&amp;amp;" in text


def test_page_is_self_contained(tmp_path: Path) -> None:
    report, history, rejects = full_history_case()
    _, text = write(tmp_path, report, history=history, rejects=rejects)
    page = Page(text)
    assert "<style>" in text
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe", "object")]
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                # in-page anchors and the JSON report beside the page; nothing else
                assert value.startswith("#") or value == f"{report['run_id']}.json", (tag, value)
    assert "url(" not in text and "@import" not in text


def test_chart_has_one_bar_and_one_point_per_run(tmp_path: Path) -> None:
    report, history, rejects = full_history_case()
    _, text = write(tmp_path, report, history=history, rejects=rejects)
    page = Page(text)
    run_ids = [r.run_id for r in sorted(history, key=lambda r: r.started_at)]
    bars = page.with_class("g", "bar")
    points = page.with_class("circle", "point")
    assert [b["data-run"] for b in bars] == run_ids
    assert [p["data-run"] for p in points] == run_ids
    assert [p["data-run"] for p in page.with_class("circle", "current")] == [report["run_id"]]
    # the full load changed the most rows: its bar is the tallest
    heights: dict[str, float] = {}
    chart = text.split('class="chart changes"')[1].split("</svg>")[0]
    for part in chart.split('<g class="bar" data-run="')[1:]:
        run = part.split('"')[0]
        heights[run] = sum(
            float(h.split('"')[0]) for h in part.split("</g>")[0].split('height="')[1:]
        )
    assert max(heights, key=lambda r: heights[r]) == "20240301T090000-a1b2c3"
    assert heights["20240303T090000-0f0f0f"] < 2  # the failed run changed nothing


def test_chart_of_many_runs(tmp_path: Path) -> None:
    base = incremental_run()
    records = []
    for day in range(1, 29):
        r = base | {
            "run_id": f"202404{day:02d}T090000-{day:06d}",
            "started_at": f"2024-04-{day:02d}T09:00:00+00:00",
            "finished_at": f"2024-04-{day:02d}T09:00:02+00:00",
            "seconds": 1.0 + day / 10,
        }
        records.append(record(r))
    current = base | {
        "run_id": "20240429T090000-ffffff",
        "started_at": "2024-04-29T09:00:00+00:00",
    }
    _, text = write(tmp_path, current, history=newest_first(*records))
    page = Page(text)
    assert len(page.with_class("g", "bar")) == 29
    assert len(page.with_class("circle", "point")) == 29
    assert "History (29 runs)" in page.text


def test_run_points_for_the_history_command() -> None:
    records = [record(differences_run()), record(failed_run(), with_summary=False)]
    points = run_points(records)
    assert [(p.run_id, p.status, p.changed, p.rejected, p.seconds) for p in points] == [
        ("20240304T090000-beef01", "differences", 15, 2, 1.9),
        ("20240303T090000-0f0f0f", "failed", 0, 0, 31.0),
    ]
    assert run_points([running(full_run())])[0].seconds is None


# -- terminal summary


def test_summary_lines() -> None:
    text = render_summary(full_run() | {"report_files": ["/r/x.json", "/r/x.html"]})
    lines = text.splitlines()
    assert lines[0] == "run 20240301T090000-a1b2c3: sync (full), status ok (exit 0)"
    assert lines[1] == (
        "/srv/app/Chinook.sqlite -> postgresql://app@db.example.com:5432/app, schema public"
    )
    assert "(3.91 s)" in lines[2]
    assert lines[3] == (
        "7 table(s): 15,551 inserted, 0 updated, 0 deleted, 0 rejected "
        "(read 15,551, written 15,551)"
    )
    assert "verification (checksum): identical" in lines
    assert lines[-2:] == ["report: /r/x.json", "report: /r/x.html"]


def test_summary_of_differences_and_of_a_failure() -> None:
    text = render_summary(differences_run())
    assert "status differences (exit 1)" in text
    assert (
        "verification (rows): DIFFERENCES: 1 missing, 1 extra, 1 different row(s), "
        "2 schema difference(s)"
    ) in text
    assert "2 rejected" in text
    failed = render_summary(failed_run())
    assert "status failed (exit 3)" in failed
    assert "error: sync failed, nothing was changed in the target" in failed
    assert "verification" not in failed


# -- finding reports


def test_latest_report(tmp_path: Path) -> None:
    assert latest_report(tmp_path / "nowhere", None) is None
    assert latest_report(tmp_path, None) is None
    older, newer = full_run(), incremental_run()
    write(tmp_path, older)
    write(tmp_path, newer)
    for i, r in enumerate((older, newer)):
        for suffix in (".json", ".html"):
            os.utime(tmp_path / f"{r['run_id']}{suffix}", (1_700_000_000 + i, 1_700_000_000 + i))
    assert latest_report(tmp_path, None) == tmp_path / f"{newer['run_id']}.html"
    assert latest_report(tmp_path, older["run_id"]) == tmp_path / f"{older['run_id']}.html"
    assert latest_report(tmp_path, "20240301") == tmp_path / f"{older['run_id']}.html"
    assert latest_report(tmp_path, "2024030") is None  # ambiguous
    assert latest_report(tmp_path, "nope") is None
    assert latest_report(tmp_path, "../" + older["run_id"]) is None
    # a run from before HTML pages existed: its JSON
    (tmp_path / "20240101T000000-000000.json").write_text(json.dumps(full_run()), "utf-8")
    assert latest_report(tmp_path, "20240101T000000-000000") == (
        tmp_path / "20240101T000000-000000.json"
    )
    (tmp_path / "broken.json").write_text("{not json", "utf-8")
    with pytest.raises(InputError, match="cannot read the report"):
        load_report(tmp_path / "broken.html")
    with pytest.raises(InputError, match="no JSON report"):
        load_report(tmp_path / "missing.html")
    loaded = load_report(tmp_path / f"{older['run_id']}.html")
    assert loaded["run_id"] == older["run_id"]
    assert loaded["history"][-1]["run_id"] == older["run_id"]


def test_page_of_an_old_json_report_without_history() -> None:
    text = render_html(full_run())
    page = Page(text)
    assert "Artist" in page.text
    assert not page.with_class("g", "bar")
    doc = build_document(full_run(), history=[], rejects=[])
    assert len(Page(render_html(doc)).with_class("g", "bar")) == 1


# -- the page in a real browser


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


@pytest.fixture
def chromium() -> Iterator[Path]:
    if not CHROMIUM.exists():
        pytest.skip(
            "needs /usr/bin/chromium (Debian: apt-get install chromium) to draw the HTML report"
        )
    yield CHROMIUM


def screenshot(browser: Path, page: Path, png: Path, profile: Path) -> None:
    cmd = [
        str(browser),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1280,2000",
        page.as_uri(),
    ]
    env = dict(os.environ, HOME=str(profile))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr}"


def test_chromium_draws_the_page(tmp_path: Path, chromium: Path) -> None:
    report, history, rejects = full_history_case()
    _, html_path = write_run_report(
        report, folder=tmp_path / "reports", history=history, rejects=rejects
    )
    png = tmp_path / "report.png"
    screenshot(chromium, html_path, png, tmp_path / "profile")
    data = png.read_bytes()
    assert len(data) > 20_000, "the screenshot is nearly empty"
    width, height, rows = png_pixels(data)
    assert (width, height) == (1280, 2000)
    channels = len(rows[0]) // width
    colours: set[bytes] = set()
    for row in rows[::8]:
        colours.update(row[i : i + 3] for i in range(0, len(row), channels * 4))
    assert len(colours) > 50, "the screenshot is (nearly) one colour"
    # the header's status stripe and badge are drawn in the colour of "differences"
    orange = bytes((0xBC, 0x4C, 0x00))
    assert any(orange in {r[i : i + 3] for i in range(0, len(r), channels)} for r in rows[:300])
    keep = os.environ.get("SQLITE2PG_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(png, keep)
