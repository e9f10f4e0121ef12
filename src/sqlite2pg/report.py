"""Run reports: a run's report dict -> JSON (stable keys), one self-contained HTML page, and a few
plain-text lines for the terminal.

The page is what a DBA opens to sign a run off: status, totals, every table's counts, the
verification result with the keys that differ, the rejected rows with their reasons, warnings, and
charts of rows changed and run durations across the run history. It is a single file with inline
CSS and inline SVG: no scripts, no fonts, no images, nothing fetched from the network. Every value
that comes from the data (table names, keys, values, reasons, paths) is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError
from .model import Rejection
from .state import RunRecord

REPORT_FORMAT = 1
"""Bumped when a key of the JSON report changes meaning or disappears (new keys may be added)."""

HTML_LIST_LIMIT = 500
"""Per list (missing keys, extra keys, different rows of one table) shown in the page; the JSON
report holds all of them."""

HTML_REJECT_LIMIT = 1000
"""Rejected rows shown in the page; the JSON holds up to ``max_rejects``."""

VALUE_WIDTH = 160
"""Characters of one value shown in the page before it is shortened."""

STATUS_TEXT = {
    "ok": "Finished: every row arrived and verification found no difference.",
    "rejected": "Finished, but some rows were rejected: see Rejected rows.",
    "differences": "Finished, but verification found differences: see Verification.",
    "failed": "The run failed: see the error below.",
    "running": "The run had not finished when this report was written.",
}


@dataclass(frozen=True)
class HistoryPoint:
    """One run of the history, as the JSON report and the charts show it."""

    run_id: str
    command: str
    started_at: str
    status: str
    seconds: float | None
    inserted: int
    updated: int
    deleted: int
    rejected: int

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "started_at": self.started_at,
            "status": self.status,
            "seconds": self.seconds,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "rejected": self.rejected,
        }


# -- public API


def write_run_report(
    report: Mapping[str, Any],
    *,
    folder: Path,
    history: Sequence[RunRecord],
    rejects: Iterable[Rejection],
    max_rejects: int = 10_000,
) -> list[Path]:
    """Write ``<run_id>.json`` and ``<run_id>.html`` into ``folder``; return both paths.

    ``report`` is ``RunReport.as_dict()``; ``history`` the runs of the state database (any order;
    the run itself may be among them, still marked running: the report's own numbers win);
    ``rejects`` the run's rejected rows, of which the first ``max_rejects`` are kept (the JSON says
    how many more there were in ``rejects_truncated``). Each file is written to a temporary name
    and renamed, so a reader never sees half a report.
    """
    run_id = str(report["run_id"])
    if not run_id or run_id in (".", "..") or "/" in run_id or os.sep in run_id:
        raise ValueError(f"run id {run_id!r} cannot name a report file")
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{run_id}.json"
    html_path = folder / f"{run_id}.html"
    doc = build_document(report, history=history, rejects=rejects, max_rejects=max_rejects)
    doc["report_files"] = [str(json_path), str(html_path)]
    _write_atomic(json_path, json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n")
    _write_atomic(html_path, render_html(doc))
    return [json_path, html_path]


def build_document(
    report: Mapping[str, Any],
    *,
    history: Sequence[RunRecord],
    rejects: Iterable[Rejection],
    max_rejects: int = 10_000,
) -> dict[str, Any]:
    """The JSON report: the run's report dict, then ``rejects``, ``rejects_truncated``,
    ``history`` (oldest first, this run included) and ``report_format``."""
    kept: list[dict[str, Any]] = []
    more = 0
    for r in rejects:
        if len(kept) < max_rejects:
            kept.append(
                {
                    "table": r.table,
                    "key": r.key,
                    "column": r.column,
                    "value": r.value,
                    "reason": r.reason,
                }
            )
        else:
            more += 1
    doc = dict(report)
    doc["rejects"] = kept
    doc["rejects_truncated"] = more
    doc["history"] = [p.as_dict() for p in history_points(report, history)]
    doc["report_format"] = REPORT_FORMAT
    return doc


def history_points(report: Mapping[str, Any], history: Sequence[RunRecord]) -> list[HistoryPoint]:
    """The history oldest first, with this run (from its own report) in place of its record."""
    run_id = str(report.get("run_id", ""))
    points = run_points([r for r in history if r.run_id != run_id])
    points.append(_point_from_report(report))
    points.sort(key=lambda p: _sort_time(p.started_at))
    return points


def run_points(records: Sequence[RunRecord]) -> list[HistoryPoint]:
    """Runs of the state database as history points, in the order given (``sqlite2pg history``)."""
    return [_point_from_record(r) for r in records]


def render_summary(report: Mapping[str, Any]) -> str:
    """A few plain-text lines about a run (``sqlite2pg report`` without ``--open``)."""
    status = str(report.get("status", "unknown"))
    lines = [
        f"run {report.get('run_id', '?')}: {report.get('command', 'sync')} "
        f"({report.get('mode', '?')}), status {status} (exit {report.get('exit_code', '?')})",
        f"{report.get('source', '?')} -> {report.get('target', '?')}, "
        f"schema {report.get('schema', '?')}",
        f"started {_when(report.get('started_at'))}, finished {_when(report.get('finished_at'))}"
        f" ({_duration(report.get('seconds'))})",
    ]
    totals = report.get("totals") or {}
    tables = report.get("tables") or {}
    lines.append(
        f"{len(tables)} table(s): "
        f"{_n(totals.get('inserted'))} inserted, {_n(totals.get('updated'))} updated, "
        f"{_n(totals.get('deleted'))} deleted, {_n(totals.get('rejected'))} rejected "
        f"(read {_n(totals.get('read'))}, written {_n(totals.get('written'))})"
    )
    v = report.get("verification")
    if v:
        if v.get("identical"):
            lines.append(f"verification ({v.get('level', '?')}): identical")
        else:
            m, x, d = _diff_counts(v)
            lines.append(
                f"verification ({v.get('level', '?')}): DIFFERENCES: {m:,} missing, {x:,} extra, "
                f"{d:,} different row(s), "
                f"{len(v.get('schema_differences') or [])} schema difference(s)"
            )
    elif status != "failed":
        lines.append("verification: not run")
    warnings = report.get("warnings") or []
    skipped = report.get("skipped") or []
    if warnings or skipped:
        lines.append(f"{len(warnings)} warning(s), {len(skipped)} object(s) not copied")
    if report.get("error"):
        lines.append(f"error: {_first_line(report['error'])}")
    for f in report.get("report_files") or []:
        lines.append(f"report: {f}")
    return "\n".join(lines)


def latest_report(folder: Path, run_id: str | None = None) -> Path | None:
    """The HTML report of ``run_id`` (exact, or a unique prefix), or of the newest run when
    ``run_id`` is None; the JSON report when that run has no HTML page; None when there is none."""
    if not folder.is_dir():
        return None
    stems: dict[str, Path] = {}
    for path in folder.iterdir():
        if path.suffix in (".json", ".html") and path.is_file():
            current = stems.get(path.stem)
            if current is None or path.suffix == ".html":
                stems[path.stem] = path
    if not stems:
        return None
    if run_id is None:

        def newest(stem: str) -> tuple[float, str]:
            p = stems[stem].with_suffix(".json")
            return ((p if p.exists() else stems[stem]).stat().st_mtime, stem)

        return stems[max(stems, key=newest)]
    if run_id in stems:
        return stems[run_id]
    matches = [s for s in stems if s.startswith(run_id)] if run_id else []
    return stems[matches[0]] if len(matches) == 1 else None


def load_report(path: Path) -> dict[str, Any]:
    """The JSON report beside ``path`` (``x.html`` -> ``x.json``)."""
    source = path.with_suffix(".json")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"no JSON report at {source}", "run `sqlite2pg history` to see the runs"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the report {source}: {exc}") from exc
    if not isinstance(data, dict) or "run_id" not in data:
        raise InputError(f"{source} is not a sqlite2pg run report")
    return data


# -- history


def _point_from_report(report: Mapping[str, Any]) -> HistoryPoint:
    totals = report.get("totals") or {}
    seconds = report.get("seconds")
    return HistoryPoint(
        run_id=str(report.get("run_id", "")),
        command=str(report.get("command", "")),
        started_at=str(report.get("started_at") or ""),
        status=str(report.get("status", "unknown")),
        seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
        inserted=int(totals.get("inserted") or 0),
        updated=int(totals.get("updated") or 0),
        deleted=int(totals.get("deleted") or 0),
        rejected=int(totals.get("rejected") or 0),
    )


def _point_from_record(r: RunRecord) -> HistoryPoint:
    if r.summary:
        p = _point_from_report(r.summary)
        return HistoryPoint(
            run_id=r.run_id,
            command=r.command,
            started_at=r.started_at,
            status=r.status,
            seconds=p.seconds if p.seconds is not None else _elapsed(r.started_at, r.finished_at),
            inserted=p.inserted,
            updated=p.updated,
            deleted=p.deleted,
            rejected=p.rejected,
        )
    return HistoryPoint(
        run_id=r.run_id,
        command=r.command,
        started_at=r.started_at,
        status=r.status,
        seconds=_elapsed(r.started_at, r.finished_at),
        inserted=0,
        updated=0,
        deleted=0,
        rejected=0,
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _sort_time(value: str) -> datetime:
    return _parse_time(value) or datetime.min.replace(tzinfo=timezone.utc)


def _elapsed(start: str | None, end: str | None) -> float | None:
    a, b = _parse_time(start), _parse_time(end)
    if a is None or b is None:
        return None
    return max((b - a).total_seconds(), 0.0)


# -- formatting helpers (every one returns escaped HTML unless its name says text)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "0" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return str(value)


def _compact(value: float) -> str:
    """1234567 -> 1.2M (chart labels)."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            s = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return s + unit
    return f"{value:g}"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "unknown"
    s = float(seconds)
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def _duration_short(seconds: float) -> str:
    """Axis labels: 0 s, 2.5 s, 30 s, 5 min, 1.5 h."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _when(value: Any) -> str:
    t = _parse_time(str(value)) if value else None
    if t is None:
        return str(value) if value else "-"
    return t.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def _short(value: Any, width: int = VALUE_WIDTH) -> str:
    text = _value_text(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _value_text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _key_text(key: Any) -> str:
    """{'id': 7, 'lang': 'en'} -> id=7, lang=en ; [7, 'en'] -> 7, en ; 7 -> 7."""
    if isinstance(key, Mapping):
        return ", ".join(f"{k}={_value_text(v)}" for k, v in key.items())
    if isinstance(key, (list, tuple)):
        return ", ".join(_value_text(v) for v in key)
    return _value_text(key)


def _status_class(status: Any) -> str:
    s = str(status)
    return s if s in STATUS_TEXT or s == "unknown" else "unknown"


def _num_td(value: Any, *, bad: bool = False, warn: bool = False) -> str:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    cls = "num"
    if not number:
        cls += " zero"
    elif bad:
        cls += " bad"
    elif warn:
        cls += " warn"
    return f'<td class="{cls}">{_e(_n(value))}</td>'


def _diff_counts(v: Mapping[str, Any]) -> tuple[int, int, int]:
    m = x = d = 0
    for t in (v.get("tables") or {}).values():
        m += _count(t.get("missing"))
        x += _count(t.get("extra"))
        d += _count(t.get("different"))
    return m, x, d


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    return 0


# -- the page


def render_html(doc: Mapping[str, Any]) -> str:
    """The self-contained HTML page of a JSON report document (see ``build_document``)."""
    status = _status_class(doc.get("status"))
    parts = [
        _header(doc, status),
        _nav(doc),
        _error(doc),
        _totals(doc),
        _tables(doc),
        _verification(doc),
        _rejects(doc),
        _warnings(doc),
        _history(doc),
    ]
    title = (
        f"sqlite2pg {doc.get('command', 'sync')} {doc.get('run_id', '')}: "
        f"{doc.get('status', 'unknown')}"
    )
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    files = doc.get("report_files") or []
    json_name = Path(str(files[0])).name if files else f"{doc.get('run_id', '')}.json"
    body = "\n".join(p for p in parts if p)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="sqlite2pg">\n'
        f"<title>{_e(title)}</title>\n<style>\n{_css()}</style>\n</head>\n"
        f'<body class="status-{status}">\n{body}\n'
        f"<footer>Written by sqlite2pg on {_e(generated)} · machine-readable report: "
        f'<a href="{_e(json_name)}">{_e(json_name)}</a></footer>\n'
        "</body>\n</html>\n"
    )


def _css() -> str:
    return (resources.files("sqlite2pg") / "templates" / "report.css").read_text(encoding="utf-8")


def _header(doc: Mapping[str, Any], status: str) -> str:
    meta = [
        ("Run", f"<code>{_e(doc.get('run_id'))}</code>"),
        ("Mode", _e(doc.get("mode", "-"))),
        ("Started", _e(_when(doc.get("started_at")))),
        ("Finished", _e(_when(doc.get("finished_at")))),
        ("Duration", _e(_duration(doc.get("seconds")))),
        ("Exit status", _e(doc.get("exit_code", "-"))),
    ]
    verdict = STATUS_TEXT.get(str(doc.get("status")), "")
    if doc.get("status") == "ok" and not doc.get("verification"):
        verdict = "Finished: every row arrived (no verification was run)."
    dl = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in meta)
    return (
        f'<header class="run status-{status}">\n'
        f'<div class="headline"><span class="badge">{_e(doc.get("status", "unknown"))}</span>'
        f"<h1>sqlite2pg {_e(doc.get('command', 'sync'))} · {_e(doc.get('mode', ''))}</h1></div>\n"
        f'<p class="verdict">{_e(verdict)}</p>\n'
        f'<div class="route"><code>{_e(doc.get("source"))}</code>'
        f'<span class="arrow">→</span><code>{_e(doc.get("target"))}</code>'
        f'<span class="arrow">schema</span><code>{_e(doc.get("schema"))}</code></div>\n'
        f'<dl class="meta">{dl}</dl>\n</header>'
    )


def _nav(doc: Mapping[str, Any]) -> str:
    links = [("tables", "Tables"), ("verification", "Verification")]
    if doc.get("rejects"):
        links.append(("rejects", "Rejected rows"))
    if doc.get("warnings") or doc.get("skipped"):
        links.append(("warnings", "Warnings"))
    links.append(("history", "History"))
    inner = "".join(f'<a href="#{k}">{v}</a>' for k, v in links)
    return f'<nav class="sections">{inner}</nav>'


def _error(doc: Mapping[str, Any]) -> str:
    if not doc.get("error"):
        return ""
    return (
        f'<section class="error" id="error"><h2>Error</h2><pre>{_e(doc["error"])}</pre></section>'
    )


def _totals(doc: Mapping[str, Any]) -> str:
    totals = doc.get("totals") or {}
    cards = []
    for key in ("read", "written", "inserted", "updated", "deleted", "rejected"):
        value = totals.get(key) or 0
        cls = f"card {key}" + (" nonzero" if value else "")
        cards.append(
            f'<div class="{cls}"><div class="label">{key}</div>'
            f'<div class="value">{_e(_n(value))}</div></div>'
        )
    return (
        f'<section id="totals"><h2>Totals</h2><div class="cards">{"".join(cards)}</div></section>'
    )


def _tables(doc: Mapping[str, Any]) -> str:
    tables: Mapping[str, Any] = doc.get("tables") or {}
    if not tables:
        return (
            '<section id="tables"><h2>Tables</h2>'
            '<p class="muted">No table was copied in this run.</p></section>'
        )
    counts = ("read", "written", "inserted", "updated", "deleted", "unchanged", "rejected")
    longest = max((float(t.get("seconds") or 0) for t in tables.values()), default=0.0)
    head = (
        "<tr><th>Table</th><th>Strategy</th>"
        + "".join(f'<th class="num">{c}</th>' for c in counts)
        + '<th class="num">by policy</th><th>Orphans</th><th class="num">Seconds</th></tr>'
    )
    rows = []
    for name, t in tables.items():
        target = t.get("target")
        target_html = (
            f'<span class="target">→ {_e(target)}</span>' if target and target != name else ""
        )
        cells = [
            f'<td class="name">{_e(name)}{target_html}</td>',
            f"<td>{_e(t.get('strategy'))}</td>",
        ]
        for c in counts:
            cells.append(_num_td(t.get(c, 0), bad=c == "rejected"))
        cells.append(_num_td(t.get("changed_by_policy", 0), warn=True))
        cells.append(f"<td>{_orphans(t)}</td>")
        secs = float(t.get("seconds") or 0)
        width = round(60 * secs / longest) if longest > 0 else 0
        bar = f'<span class="timebar" style="width:{width}px"></span>' if width else ""
        cells.append(f'<td class="num">{secs:,.2f}{bar}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    foot = ["<td>all tables</td><td></td>"]
    for c in counts:
        foot.append(_num_td(sum(int(t.get(c) or 0) for t in tables.values()), bad=c == "rejected"))
    foot.append(_num_td(sum(int(t.get("changed_by_policy") or 0) for t in tables.values())))
    orphan_total = sum(sum((t.get("orphans") or {}).values()) for t in tables.values())
    foot.append(f"<td>{_e(_n(orphan_total)) if orphan_total else ''}</td>")
    total_secs = sum(float(t.get("seconds") or 0) for t in tables.values())
    foot.append(f'<td class="num">{total_secs:,.2f}</td>')
    return (
        '<section id="tables"><h2>Tables</h2><div class="scroll"><table class="tables">'
        f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody>"
        f"<tfoot><tr>{''.join(foot)}</tr></tfoot></table></div>"
        '<p class="note">by policy: values changed by a column policy of the config. '
        "Orphans: rows whose foreign key points at no row of the parent table "
        "(sample keys shown).</p></section>"
    )


def _orphans(t: Mapping[str, Any]) -> str:
    orphans: Mapping[str, Any] = t.get("orphans") or {}
    samples: Mapping[str, Any] = t.get("orphan_samples") or {}
    items = []
    for fk, count in orphans.items():
        sample = samples.get(fk) or []
        sample_text = ", ".join(_short(_key_text(k), 40) for k in list(sample)[:5])
        more = " …" if len(sample) > 5 else ""
        extra = f'<span class="samples">e.g. {_e(sample_text)}{more}</span>' if sample else ""
        items.append(f'<div class="orphans">{_e(fk)}: {_e(_n(count))}{extra}</div>')
    return "".join(items)


def _verification(doc: Mapping[str, Any]) -> str:
    v = doc.get("verification")
    if not v:
        why = (
            "The run failed before verification."
            if doc.get("status") == "failed"
            else "Verification was not run for this run (verify: off)."
        )
        return (
            f'<section id="verification"><h2>Verification</h2><p class="muted">{why}</p></section>'
        )
    identical = bool(v.get("identical"))
    verdict = (
        '<span class="ok-text">identical</span>'
        if identical
        else '<span class="bad-text">differences found</span>'
    )
    out = [
        '<section id="verification"><h2>Verification</h2>',
        f"<p>Level <b>{_e(v.get('level'))}</b>: {verdict} "
        f'<span class="muted">({_e(_duration(v.get("seconds")))})</span></p>',
    ]
    summary = v.get("summary_lines") or []
    if summary:
        out.append(f'<pre class="lines">{_e(chr(10).join(str(s) for s in summary))}</pre>')
    vtables: Mapping[str, Any] = v.get("tables") or {}
    if vtables:
        rows = []
        for name, t in vtables.items():
            m, x, d = _count(t.get("missing")), _count(t.get("extra")), _count(t.get("different"))
            src, tgt = t.get("source_rows"), t.get("target_rows")
            rej = _count(t.get("rejected"))
            # rejected rows are absent from the target on purpose
            counts_differ = isinstance(src, int) and isinstance(tgt, int) and src - rej != tgt
            ok = not (m or x or d or counts_differ)
            result = (
                '<td class="ok-text">identical</td>' if ok else '<td class="bad-text">differs</td>'
            )
            rows.append(
                f'<tr><td class="name">{_e(name)}'
                + (
                    f'<span class="target">→ {_e(t.get("target"))}</span>'
                    if t.get("target") and t.get("target") != name
                    else ""
                )
                + "</td>"
                + _num_td(src)
                + _num_td(tgt, bad=counts_differ)
                + _num_td(m, bad=True)
                + _num_td(x, bad=True)
                + _num_td(d, bad=True)
                + _num_td(rej, warn=True)
                + result
                + "</tr>"
            )
        out.append(
            '<div class="scroll"><table class="verification"><thead><tr><th>Table</th>'
            '<th class="num">source rows</th><th class="num">target rows</th>'
            '<th class="num">missing</th><th class="num">extra</th>'
            '<th class="num">different</th><th class="num">rejected</th><th>Result</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
        for name, t in vtables.items():
            detail = _table_diff(name, t)
            if detail:
                out.append(detail)
    schema = v.get("schema_differences") or []
    if schema:
        items = "".join(f"<li>{_e(_schema_text(s))}</li>" for s in schema)
        out.append(f'<h3>Schema differences ({len(schema)})</h3><ul class="plain">{items}</ul>')
    elif not identical or vtables:
        out.append('<p class="note">No schema differences.</p>')
    out.append("</section>")
    return "\n".join(out)


def _schema_text(s: Any) -> str:
    if isinstance(s, Mapping):
        return "; ".join(f"{k}: {_value_text(v)}" for k, v in s.items())
    return str(s)


def _table_diff(name: str, t: Mapping[str, Any]) -> str:
    missing, extra, different, rejected = (
        _as_list(t.get(k)) for k in ("missing", "extra", "different", "rejected")
    )
    if not (missing or extra or different or rejected):
        return ""
    out = [
        f'<details class="table-diff" open><summary>{_e(name)}: '
        f"{len(missing):,} missing, {len(extra):,} extra, {len(different):,} different"
        + (f", {len(rejected):,} rejected" if rejected else "")
        + "</summary>"
    ]
    for label, keys in (
        ("missing in the target", missing),
        ("extra in the target", extra),
        ("rejected (expected to be absent)", rejected),
    ):
        if keys:
            items = "".join(f"<li>{_e(_short(_key_text(k)))}</li>" for k in keys[:HTML_LIST_LIMIT])
            out.append(
                f'<div class="kind">{label} ({len(keys):,})</div><ul class="keys">{items}</ul>'
                + _more(len(keys), HTML_LIST_LIMIT)
            )
    if different:
        rows = []
        for item in different[:HTML_LIST_LIMIT]:
            key = item.get("key") if isinstance(item, Mapping) else item
            columns = item.get("columns") if isinstance(item, Mapping) else None
            pairs = list(columns.items()) if isinstance(columns, Mapping) else [("", None)]
            for i, (col, both) in enumerate(pairs):
                src, tgt = (
                    both if isinstance(both, (list, tuple)) and len(both) == 2 else (both, "")
                )
                key_cell = (
                    f'<td class="key" rowspan="{len(pairs)}">{_e(_short(_key_text(key)))}</td>'
                    if i == 0
                    else ""
                )
                rows.append(
                    f"<tr>{key_cell}<td>{_e(col)}</td>"
                    f'<td class="value src">{_e(_short(src))}</td>'
                    f'<td class="value tgt">{_e(_short(tgt))}</td></tr>'
                )
        out.append(
            f'<div class="kind">different ({len(different):,})</div>'
            '<div class="scroll"><table class="different"><thead><tr><th>Key</th><th>Column</th>'
            "<th>Source (SQLite)</th><th>Target (PostgreSQL)</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>" + _more(len(different), HTML_LIST_LIMIT)
        )
    out.append("</details>")
    return "\n".join(out)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _more(total: int, shown: int) -> str:
    if total <= shown:
        return ""
    return f'<p class="note">… and {total - shown:,} more in the JSON report.</p>'


def _rejects(doc: Mapping[str, Any]) -> str:
    items: list[Mapping[str, Any]] = list(doc.get("rejects") or [])
    truncated = int(doc.get("rejects_truncated") or 0)
    total_rejected = int((doc.get("totals") or {}).get("rejected") or 0)
    if not items:
        if not total_rejected:
            return ""
        return (
            '<section id="rejects"><h2>Rejected rows</h2>'
            f"<p>{total_rejected:,} row(s) were rejected; list them with "
            f"<code>sqlite2pg rejects --run {_e(doc.get('run_id'))}</code>.</p></section>"
        )
    total = len(items) + truncated
    by_reason = Counter((r.get("table"), r.get("column"), r.get("reason")) for r in items)
    reason_rows = "".join(
        f'<tr><td class="name">{_e(t)}</td><td>{_e(c)}</td><td class="reason">{_e(reason)}</td>'
        f'<td class="num">{n:,}</td></tr>'
        for (t, c, reason), n in by_reason.most_common(50)
    )
    rows = "".join(
        f'<tr><td class="name">{_e(r.get("table"))}</td>'
        f'<td class="key">{_e(_short(_key_text(r.get("key"))))}</td>'
        f"<td>{_e(r.get('column'))}</td>"
        f'<td class="value">{_e(_short(r.get("value")))}</td>'
        f'<td class="reason">{_e(r.get("reason"))}</td></tr>'
        for r in items[:HTML_REJECT_LIMIT]
    )
    shown = min(len(items), HTML_REJECT_LIMIT)
    note = ""
    if shown < total:
        note = (
            f'<p class="note">Showing the first {shown:,} of {total:,} rejected values; '
            f"all of them: <code>sqlite2pg rejects --run {_e(doc.get('run_id'))} "
            f"--limit {total}</code>.</p>"
        )
    return (
        f'<section id="rejects"><h2>Rejected rows ({total:,})</h2>'
        "<p>These rows were not written: PostgreSQL cannot hold the value as the plan maps it, "
        "and no column policy in the config says otherwise.</p>"
        '<h3>By reason</h3><div class="scroll"><table class="reasons"><thead><tr><th>Table</th>'
        '<th>Column</th><th>Reason</th><th class="num">values</th></tr></thead>'
        f"<tbody>{reason_rows}</tbody></table></div>"
        '<h3>Rows</h3><div class="scroll"><table class="rejects"><thead><tr><th>Table</th>'
        "<th>Key</th><th>Column</th><th>Value</th><th>Reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>{note}</section>"
    )


def _warnings(doc: Mapping[str, Any]) -> str:
    warnings = doc.get("warnings") or []
    skipped = doc.get("skipped") or []
    if not (warnings or skipped):
        return ""
    out = ['<section id="warnings"><h2>Warnings and objects not copied</h2>']
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
        out.append(f'<h3>Warnings ({len(warnings)})</h3><ul class="plain">{items}</ul>')
    if skipped:
        rows = "".join(
            f'<tr><td>{_e(s.get("kind"))}</td><td class="name">{_e(s.get("name"))}</td>'
            f"<td>{_e(s.get('reason'))}</td></tr>"
            for s in skipped
        )
        out.append(
            f'<h3>Not copied ({len(skipped)})</h3><div class="scroll"><table class="skipped">'
            "<thead><tr><th>Kind</th><th>Name</th><th>Reason</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )
    out.append("</section>")
    return "\n".join(out)


# -- history: charts (inline SVG) and a table

CHART_W, CHART_H = 1160, 230
PAD_L, PAD_R, PAD_T, PAD_B = 78, 34, 22, 46
LABEL_LIMIT = 24  # runs; above it, value labels over bars and points are left out


def _history(doc: Mapping[str, Any]) -> str:
    points = [_point_from_dict(h) for h in doc.get("history") or []]
    if not points:
        return ""
    current = str(doc.get("run_id"))
    recent = list(reversed(points))[:50]
    rows = "".join(
        f"<tr><td><code>{_e(p.run_id)}</code>{' (this run)' if p.run_id == current else ''}</td>"
        f"<td>{_e(p.command)}</td><td>{_e(_when(p.started_at))}</td>"
        f'<td><span class="badge small status-{_status_class(p.status)}">{_e(p.status)}</span></td>'
        + _num_td(p.inserted)
        + _num_td(p.updated)
        + _num_td(p.deleted)
        + _num_td(p.rejected, bad=True)
        + f'<td class="num">{_e(_duration(p.seconds))}</td></tr>'
        for p in recent
    )
    return (
        f'<section id="history"><h2>History ({len(points)} run{"s" if len(points) != 1 else ""})'
        "</h2>"
        '<div class="charts">'
        f"{_changes_chart(points, current)}{_duration_chart(points, current)}</div>"
        '<h3>Runs, newest first</h3><div class="scroll"><table class="history"><thead><tr>'
        "<th>Run</th><th>Command</th><th>Started</th><th>Status</th>"
        '<th class="num">inserted</th><th class="num">updated</th><th class="num">deleted</th>'
        '<th class="num">rejected</th><th class="num">duration</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _point_from_dict(h: Mapping[str, Any]) -> HistoryPoint:
    seconds = h.get("seconds")
    return HistoryPoint(
        run_id=str(h.get("run_id", "")),
        command=str(h.get("command", "")),
        started_at=str(h.get("started_at") or ""),
        status=str(h.get("status", "unknown")),
        seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
        inserted=int(h.get("inserted") or 0),
        updated=int(h.get("updated") or 0),
        deleted=int(h.get("deleted") or 0),
        rejected=int(h.get("rejected") or 0),
    )


DURATION_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)
DURATION_DECADES = (1, 10, 60, 600, 3600, 36000, 360000)


@dataclass(frozen=True)
class _Scale:
    """Maps values to chart heights: linear, or log10(1 + v) when a few runs (a full load) dwarf
    the others, so that the small runs stay readable."""

    top: float
    log: bool
    ticks: tuple[float, ...]

    @classmethod
    def for_values(cls, values: Sequence[float], *, durations: bool = False) -> _Scale:
        positive = sorted(v for v in values if v > 0)
        if not positive:
            return cls(1.0, False, (0.0, 1.0))
        high = positive[-1]
        median = positive[len(positive) // 2]
        if len(positive) >= 3 and high / max(median, 1e-9) > 30 and high > 10:
            ladder: Sequence[float] = (
                DURATION_DECADES if durations else [10.0**k for k in range(0, 19)]
            )
            top = next((float(v) for v in ladder if v >= high), float(ladder[-1]))
            marks = [float(v) for v in ladder if v <= top]
            every = max(1, math.ceil(len(marks) / 6))
            return cls(top, True, tuple(reversed(marks[::-1][::every])))
        step = _nice_step(high / 4)
        if durations and step >= 1:
            step = float(next((s for s in DURATION_STEPS if s >= high / 4), step))
        top = math.ceil(high / step) * step
        count = round(top / step)
        return cls(top, False, tuple(step * i for i in range(count + 1)))

    def fraction(self, value: float) -> float:
        if value <= 0:
            return 0.0
        if self.log:
            return min(math.log10(1 + value) / math.log10(1 + self.top), 1.0)
        return min(value / self.top, 1.0)


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    base = raw / 10**exp
    nice = 1 if base <= 1 else 2 if base <= 2 else 2.5 if base <= 2.5 else 5 if base <= 5 else 10
    return float(nice * 10**exp)


def _axes(scale: _Scale, label: Any, fmt: Any) -> list[str]:
    """Grid lines, y tick labels and the y axis title."""
    plot_h = CHART_H - PAD_T - PAD_B
    out = []
    for tick in scale.ticks:
        y = PAD_T + plot_h * (1 - scale.fraction(tick))
        out.append(
            f'<line class="grid" x1="{PAD_L}" y1="{y:.1f}" x2="{CHART_W - PAD_R}" y2="{y:.1f}"/>'
            f'<text x="{PAD_L - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(fmt(tick))}</text>'
        )
    base = CHART_H - PAD_B
    out.append(f'<line class="axis" x1="{PAD_L}" y1="{base}" x2="{CHART_W - PAD_R}" y2="{base}"/>')
    title = f"{label}{' (log scale)' if scale.log else ''}"
    out.append(
        f'<text x="14" y="{PAD_T + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {PAD_T + plot_h / 2:.1f})">{_e(title)}</text>'
    )
    return out


def _x_labels(points: Sequence[HistoryPoint], slot: float, current: str) -> list[str]:
    """Status dots under every run and a start date under every k-th run."""
    every = max(1, math.ceil(len(points) / 12))
    radius = min(4.0, slot / 2.5)
    base = CHART_H - PAD_B
    out = []
    for i, p in enumerate(points):
        cx = PAD_L + slot * (i + 0.5)
        out.append(
            f'<circle class="dot-{_status_class(p.status)}" cx="{cx:.1f}" cy="{base + 9}" '
            f'r="{radius:.1f}">'
            f"<title>{_e(p.status)}</title></circle>"
        )
        if (len(points) - 1 - i) % every == 0:
            t = _parse_time(p.started_at)
            text = t.strftime("%m-%d %H:%M") if t else p.run_id[:12]
            weight = ' font-weight="700"' if p.run_id == current else ""
            out.append(
                f'<text x="{cx:.1f}" y="{base + 30}" text-anchor="middle"{weight}>{_e(text)}</text>'
            )
    return out


def _band(points: Sequence[HistoryPoint], slot: float, current: str) -> str:
    if len(points) < 2:
        return ""
    for i, p in enumerate(points):
        if p.run_id == current:
            width = min(slot, 100.0)
            x = PAD_L + slot * (i + 0.5) - width / 2
            return (
                f'<rect class="current-band" x="{x:.1f}" y="{PAD_T - 14}" width="{width:.1f}" '
                f'height="{CHART_H - PAD_B - PAD_T + 14}"/>'
            )
    return ""


def _svg(kind: str, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg class="chart {kind}" viewBox="0 0 {CHART_W} {CHART_H}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _changes_chart(points: Sequence[HistoryPoint], current: str) -> str:
    n = len(points)
    slot = (CHART_W - PAD_L - PAD_R) / n
    width = max(min(slot * 0.62, 56), 2.0)
    plot_h = CHART_H - PAD_T - PAD_B
    base = CHART_H - PAD_B
    scale = _Scale.for_values([p.changed for p in points])
    body = [_band(points, slot, current), *_axes(scale, "rows changed", _compact)]
    for i, p in enumerate(points):
        x = PAD_L + slot * i + (slot - width) / 2
        height = plot_h * scale.fraction(p.changed)
        tip = (
            f"{p.run_id} ({p.command}, {p.status}): {p.inserted:,} inserted, "
            f"{p.updated:,} updated, {p.deleted:,} deleted, {p.rejected:,} rejected"
        )
        rects = []
        if p.changed == 0:
            rects.append(
                f'<rect class="empty" x="{x:.1f}" y="{base - 1.5:.1f}" width="{width:.1f}" '
                'height="1.5"/>'
            )
        else:
            y = float(base)
            for part, value in (
                ("inserted", p.inserted),
                ("updated", p.updated),
                ("deleted", p.deleted),
            ):
                if value <= 0:
                    continue
                h = height * value / p.changed
                y -= h
                rects.append(
                    f'<rect class="{part}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="{max(h, 0.5):.1f}"/>'
                )
            if n <= LABEL_LIMIT:
                rects.append(
                    f'<text class="value" x="{x + width / 2:.1f}" y="{base - height - 4:.1f}" '
                    f'text-anchor="middle">{_e(_compact(p.changed))}</text>'
                )
        body.append(
            f'<g class="bar" data-run="{_e(p.run_id)}"><title>{_e(tip)}</title>'
            + "".join(rects)
            + "</g>"
        )
    body.extend(_x_labels(points, slot, current))
    legend = (
        '<div class="legend"><span><i style="background:var(--inserted)"></i>inserted</span>'
        '<span><i style="background:var(--updated)"></i>updated</span>'
        '<span><i style="background:var(--deleted)"></i>deleted</span>'
        '<span><i style="background:#fff8c5;border:1px solid #e3d58b"></i>this run</span>'
        "<span>dots: run status</span></div>"
    )
    return (
        '<div class="chart"><h3>Rows changed per run</h3>'
        + legend
        + _svg("changes", "rows changed per run", body)
        + "</div>"
    )


def _duration_chart(points: Sequence[HistoryPoint], current: str) -> str:
    n = len(points)
    slot = (CHART_W - PAD_L - PAD_R) / n
    plot_h = CHART_H - PAD_T - PAD_B
    base = CHART_H - PAD_B
    scale = _Scale.for_values([p.seconds or 0.0 for p in points], durations=True)
    body = [_band(points, slot, current), *_axes(scale, "duration", _duration_short)]
    coords = []
    marks = []
    for i, p in enumerate(points):
        if p.seconds is None:
            continue
        cx = PAD_L + slot * (i + 0.5)
        cy = base - plot_h * scale.fraction(p.seconds)
        coords.append(f"{cx:.1f},{cy:.1f}")
        cls = "point current" if p.run_id == current else "point"
        tip = f"{p.run_id} ({p.command}, {p.status}): {_duration(p.seconds)}"
        label = (
            f'<text class="value" x="{cx:.1f}" y="{cy - 9:.1f}" text-anchor="middle">'
            f"{_e(_duration(p.seconds))}</text>"
            if n <= LABEL_LIMIT
            else ""
        )
        marks.append(
            f'<circle class="{cls}" data-run="{_e(p.run_id)}" cx="{cx:.1f}" cy="{cy:.1f}" r="4.5">'
            f"<title>{_e(tip)}</title></circle>{label}"
        )
    if len(coords) > 1:
        body.append(f'<polyline class="line" points="{" ".join(coords)}"/>')
    body.extend(marks)
    body.extend(_x_labels(points, slot, current))
    return (
        '<div class="chart"><h3>Run duration</h3>'
        + _svg("durations", "run duration per run", body)
        + "</div>"
    )


# -- files


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
