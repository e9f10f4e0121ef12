"""Deletes found by the per-range key comparison of ``timestamp`` and ``append``: the cheap
whole-table check, ranges listed key by key, composite keys answered from the key's index,
and the cursor's rows found by a separate scan when the key is not the rowid."""

from __future__ import annotations

import sqlite3
from array import array
from pathlib import Path
from typing import Any

import psycopg
import pytest

import sqlite2pg.api as api
from conftest import pair_table
from sqlite2pg import changes
from sqlite2pg.config import Config


def _sync(db: Path, pg_url: str, tmp_path: Path, strategy: str) -> Any:
    cfg = Config.model_validate({"tables": {"item": {"strategy": strategy}}})
    return api.sync(db, pg_url, config=cfg, state=str(tmp_path / "state.db"), verify="off")


def _rows(pg_url: str, cols: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as pg:
        return [tuple(r) for r in pg.execute(f"SELECT {cols} FROM item ORDER BY {cols}")]


def _source_rows(db: Path, cols: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute(f"SELECT {cols} FROM item ORDER BY {cols}")]


def _rowid_table(db: Path, n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT)")
    conn.execute("CREATE INDEX item_v ON item (v)")
    conn.executemany(
        "INSERT INTO item VALUES (?, ?, '2024-01-01 00:00:00')", ((i, f"v{i}") for i in range(n))
    )
    return conn


def test_append_delete_deep_inside_a_large_table(pg_url: str, tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    app = _rowid_table(db, 20_000)
    _sync(db, pg_url, tmp_path, "append")
    app.execute("DELETE FROM item WHERE id = 12345")
    report = _sync(db, pg_url, tmp_path, "append")
    assert report.tables["item"].deleted == 1
    assert _rows(pg_url, "id, v") == _source_rows(db, "id, v")


def test_append_delete_and_insert_keeping_the_count(pg_url: str, tmp_path: Path) -> None:
    """The row count does not change, the key sums do: the whole-table check still fails."""
    db = tmp_path / "b.db"
    app = _rowid_table(db, 20_000)
    _sync(db, pg_url, tmp_path, "append")
    app.execute("DELETE FROM item WHERE id IN (7, 9000, 15000)")
    app.execute(
        "INSERT INTO item VALUES (20000, 'n1', NULL), (20001, 'n2', NULL), (20002, 'n3', NULL)"
    )
    report = _sync(db, pg_url, tmp_path, "append")
    assert (report.tables["item"].inserted, report.tables["item"].deleted) == (3, 3)
    assert _rows(pg_url, "id, v") == _source_rows(db, "id, v")
    # the state written after the cheap check is the right one for the next run
    app.execute("DELETE FROM item WHERE id IN (100, 101)")
    report = _sync(db, pg_url, tmp_path, "append")
    assert report.tables["item"].deleted == 2
    assert _rows(pg_url, "id, v") == _source_rows(db, "id, v")


def test_append_row_outside_the_cursor_replacing_a_deleted_one(pg_url: str, tmp_path: Path) -> None:
    """Two keys deleted and one the cursor does not select (below the high-water mark) added
    in one range: one row short, but the key its sums name is not in the target; the range is
    listed and all three are found."""
    db = tmp_path / "c.db"
    app = _rowid_table(db, 2_000)
    app.execute("DELETE FROM item WHERE id = 500")
    _sync(db, pg_url, tmp_path, "append")
    app.execute("DELETE FROM item WHERE id IN (499, 501)")
    app.execute("INSERT INTO item VALUES (500, 'back', NULL)")
    report = _sync(db, pg_url, tmp_path, "append")
    assert (report.tables["item"].inserted, report.tables["item"].deleted) == (1, 2)
    assert _rows(pg_url, "id, v") == _source_rows(db, "id, v")


def test_timestamp_composite_key_deletes_inserts_and_null_cursors(
    pg_url: str, tmp_path: Path
) -> None:
    """Many rows per first key value (ranges of one value, grouped through the key's index),
    some with far more than a listed range holds (bisected)."""
    db = tmp_path / "d.db"
    app = pair_table(db, 40, 300)
    app.executemany(
        "INSERT INTO item VALUES (41, ?, 'x', '2024-01-01 00:00:00')", ((b,) for b in range(3000))
    )
    _sync(db, pg_url, tmp_path, "timestamp")
    # two deletes in one range (listed), two in the big one (bisected), counts kept by inserts
    app.execute("DELETE FROM item WHERE (a, b) IN ((3, 10), (3, 20), (41, 5), (41, 2500))")
    app.execute("INSERT INTO item VALUES (3, 1000, 'n', '2024-06-01 00:00:00')")
    app.execute("INSERT INTO item VALUES (41, 9000, 'n', '2024-06-01 00:00:00')")
    app.execute("INSERT INTO item VALUES (7, 5000, 'no stamp', NULL)")
    app.execute("UPDATE item SET v = 'u', updated_at = '2024-06-01 00:00:00' WHERE a = 5 AND b = 1")
    app.execute("UPDATE item SET v = 'null now', updated_at = NULL WHERE a = 6 AND b = 2")
    report = _sync(db, pg_url, tmp_path, "timestamp")
    res = report.tables["item"]
    assert (res.inserted, res.updated, res.deleted) == (3, 2, 4)
    assert _rows(pg_url, "a, b, v") == _source_rows(db, "a, b, v")
    assert report.tables["item"].unchanged == 40 * 300 + 3000 - 4 - 2
    # nothing changed: nothing written, nothing lost
    report = _sync(db, pg_url, tmp_path, "timestamp")
    assert report.tables["item"].deleted == 0
    assert _rows(pg_url, "a, b, v") == _source_rows(db, "a, b, v")


def test_timestamp_many_deletes_in_large_composite_ranges(pg_url: str, tmp_path: Path) -> None:
    """Several large first-value ranges, each with several deletes and new keys, narrowed
    down together (one PostgreSQL query per step); a range whose second column spans nearly
    all of bigint; a range emptied by half in the source."""
    db = tmp_path / "e.db"
    app = pair_table(db, 5, 100)
    app.execute("BEGIN")  # one transaction, not one per row
    app.executemany(
        "INSERT INTO item VALUES (?, ?, 'x', '2024-01-01 00:00:00')",
        ((a, b) for a in (41, 42, 43, 44) for b in range(3000)),
    )
    app.execute("INSERT INTO item VALUES (44, ?, 'lo', '2024-01-01 00:00:00')", (-(2**63) + 5,))
    app.execute("INSERT INTO item VALUES (44, ?, 'hi', '2024-01-01 00:00:00')", (2**63 - 5,))
    app.execute("COMMIT")
    _sync(db, pg_url, tmp_path, "timestamp")
    app.execute("DELETE FROM item WHERE (a, b) IN ((41, 5), (41, 1500), (41, 2999), (42, 0))")
    app.execute("DELETE FROM item WHERE (a, b) IN ((42, 1), (42, 2), (44, 7), (44, 1000))")
    app.execute("DELETE FROM item WHERE a = 44 AND b = ?", (-(2**63) + 5,))
    app.execute("DELETE FROM item WHERE a = 43 AND b < 1500")
    app.executemany(
        "INSERT INTO item VALUES (?, ?, 'n', '2024-06-01 00:00:00')",
        [(41, 3000 + b) for b in range(20)] + [(42, 5000), (44, 3500), (43, 100_000)],
    )
    report = _sync(db, pg_url, tmp_path, "timestamp")
    res = report.tables["item"]
    assert (res.inserted, res.deleted) == (23, 9 + 1500)
    assert _rows(pg_url, "a, b, v") == _source_rows(db, "a, b, v")


def test_timestamp_deletes_among_many_new_keys_in_one_range(pg_url: str, tmp_path: Path) -> None:
    """A rowid range grown past what is listed key by key by new rows (the keys this run
    copies anyway, counted into the target's side of each piece), with two deletes in it."""
    db = tmp_path / "f.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT, updated_at DATETIME)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO item VALUES (?, 'x', '2024-01-01 00:00:00')",
        ((i * 1000,) for i in range(2000)),
    )
    conn.execute("COMMIT")
    _sync(db, pg_url, tmp_path, "timestamp")
    conn.execute("DELETE FROM item WHERE id IN (300000, 510000)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO item VALUES (?, 'n', '2024-06-01 00:00:00')",
        [(k,) for k in range(500_001, 506_000) if k % 1000][:5000],
    )
    conn.execute("COMMIT")
    report = _sync(db, pg_url, tmp_path, "timestamp")
    assert (report.tables["item"].inserted, report.tables["item"].deleted) == (5000, 2)
    assert _rows(pg_url, "id, v") == _source_rows(db, "id, v")


def _kept_width(pg_url: str) -> int:
    with psycopg.connect(pg_url) as pg:
        row = pg.execute("SELECT width FROM sqlite2pg.key_ranges").fetchone()
    assert row is not None
    return int(row[0])


def test_two_deletes_in_a_large_composite_range_named_by_their_squares(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first-value range two rows short names both keys from the sums of the second column
    and of its squares: nothing is bisected. A state kept without the squares (written by an
    earlier version) is compared without them and replaced by one with them."""
    bisected: list[int] = []
    bisect = changes._bisect

    def spy(ctx: Any, t: Any, boxes: list[Any], *args: Any) -> Any:
        bisected.append(len(boxes))
        return bisect(ctx, t, boxes, *args)

    monkeypatch.setattr(changes, "_bisect", spy)
    db = tmp_path / "g.db"
    app = pair_table(db, 3, 3000)
    _sync(db, pg_url, tmp_path, "timestamp")
    assert _kept_width(pg_url) == 4  # count, sum(a - a), sum(b), sum(b * b)
    app.execute("DELETE FROM item WHERE (a, b) IN ((2, 10), (2, 1500), (3, 2999))")
    report = _sync(db, pg_url, tmp_path, "timestamp")
    assert report.tables["item"].deleted == 3
    assert _rows(pg_url, "a, b, v") == _source_rows(db, "a, b, v")
    assert not any(bisected)

    with psycopg.connect(pg_url) as pg:  # the state as a version without squares kept it
        kept = pg.execute("SELECT ranges, width FROM sqlite2pg.key_ranges").fetchone()
        assert kept is not None
        blob, width = kept
        values = array("q", bytes(blob))
        narrow = array("q")
        for i in range(0, len(values), width + 1):
            narrow.extend(values[i : i + width])
        pg.execute("UPDATE sqlite2pg.key_ranges SET width = 3, ranges = %s", (narrow.tobytes(),))
    app.execute("DELETE FROM item WHERE (a, b) IN ((1, 7), (1, 8))")
    report = _sync(db, pg_url, tmp_path, "timestamp")
    assert report.tables["item"].deleted == 2
    assert _rows(pg_url, "a, b, v") == _source_rows(db, "a, b, v")
    assert _kept_width(pg_url) == 4


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ([(5, 7)], [(5, 7)]),
        ([(5, 7), (5, 1000)], [(5, 1000), (5, 7)]),
        ([(5, -3), (5, 2**40)], [(5, 2**40), (5, -3)]),
    ],
)
def test_named_keys_from_count_sums_and_squares(
    missing: list[tuple[int, int]], expected: list[tuple[int, int]]
) -> None:
    rest = [(5, 1), (5, 2), (5, 4)]

    def agg(keys: list[tuple[int, int]]) -> list[int]:
        return [len(keys), 0, sum(b for _, b in keys), sum(b * b for _, b in keys)]

    assert changes._named_keys(agg(rest + missing), agg(rest), 5, 2) == expected
    assert changes._named_keys(agg(rest + missing)[:3], agg(rest)[:3], 5, 2) == (
        expected if len(missing) == 1 else None
    )


def test_named_keys_refuse_what_sums_cannot_name() -> None:
    three_short = [3, 0, 6, 14]  # 1, 2, 3 missing
    assert changes._named_keys(three_short, [0, 0, 0, 0], 5, 2) is None
    assert changes._named_keys([2, 0, 5, 14], [0, 0, 0, 0], 5, 2) is None  # no integer pair
    assert changes._named_keys([2, 0, 4, 8], [0, 0, 0, 0], 5, 2) is None  # a == b
    assert changes._named_keys([5, 0, 9, 99], [-1, 0, 0, 0], 5, 2) is None  # unknown range


def test_the_sums_pass_is_left_out_when_the_count_already_differs(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole-table sums (a pass over the table) are taken only when the cheap row count
    matches the expected one; a count that differs sends the run to the ranges directly."""
    passes: list[bool] = []
    cursor_scan = changes._cursor_scan

    def spy(ctx: Any, t: Any, extra_max: Any, window: Any, lo_all: Any = None) -> Any:
        passes.append(lo_all is not None)
        return cursor_scan(ctx, t, extra_max, window, lo_all)

    monkeypatch.setattr(changes, "_cursor_scan", spy)
    db = tmp_path / "i.db"
    app = _rowid_table(db, 5_000)
    _sync(db, pg_url, tmp_path, "append")
    app.execute("DELETE FROM item WHERE id IN (10, 4000)")
    passes.clear()
    assert _sync(db, pg_url, tmp_path, "append").tables["item"].deleted == 2
    assert True not in passes
    passes.clear()
    app.execute("INSERT INTO item VALUES (5000, 'n', NULL)")  # nothing deleted: the sums decide
    report = _sync(db, pg_url, tmp_path, "append")
    assert (report.tables["item"].inserted, report.tables["item"].deleted) == (1, 0)
    assert passes.count(True) == 1
    assert _rows(pg_url, "id, v") == _source_rows(db, "id, v")
