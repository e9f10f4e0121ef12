"""The timestamp strategy's lower bound: the exact look-back when the index shows the values
near it to be plain text, a day's margin cut to the date otherwise."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

import sqlite2pg.api as api
from sqlite2pg import changes
from sqlite2pg.config import Config

HW = "2024-05-01 12:00:00"
EXACT = "2024-05-01 11:55:00"  # HW - lookback_seconds (300)
MARGIN = "2024-04-30"  # HW - lookback - one day, cut to the date


def _window(tmp_path: Path, stamps: list[object], *, index: bool = True, hw: str = HW) -> object:
    db = tmp_path / f"w{len(list(tmp_path.iterdir()))}.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT, updated_at DATETIME)")
        if index:
            conn.execute("CREATE INDEX item_stamp ON item (updated_at)")
        conn.executemany("INSERT INTO item (updated_at) VALUES (?)", [(s,) for s in stamps])
    (t,) = api.plan(db).tables
    with sqlite3.connect(db) as sconn:
        ctx = changes.Context(cast(Any, None), sconn, "public", Config(), str(db))
        cond, params = changes.TimestampStrategy().window(ctx, t, hw)
    assert cond.startswith('("updated_at" >= ?')
    (bound,) = params
    return bound


@pytest.mark.parametrize(
    "stamps",
    [
        [HW, "2024-05-01 11:00:00", "2024-04-30 00:00:01"],
        [HW, "2024-05-01 11:00:00.123456", "2024-05-01 11:54:59.9"],
        [HW, "2024-04-29T23:00:00+05:00", "2024-01-01T00:00:00"],  # odd forms below the margin
        [HW, "2024-05-01T11:58:00", "2024-05-01 12:30:00+02:00"],  # odd forms above the bound
    ],
    ids=["plain", "fractions", "odd-below-margin", "odd-above-bound"],
)
def test_plain_values_near_the_bound_give_the_exact_look_back(
    tmp_path: Path, stamps: list[object]
) -> None:
    assert _window(tmp_path, stamps) == EXACT


@pytest.mark.parametrize(
    "odd",
    [
        "2024-04-30T23:00:00",  # in the band; a 'T' stamp of the bound's own date sorts above it
        "2024-05-01 11:30:00-02:00",  # 13:30 UTC, later than the high-water mark
        "2024-05-01 11:30",
        "2024-05-01 11:30:00.5Z",
        "2024-05-01 11:30:00.",
        "2024-05-01",
    ],
)
def test_an_odd_value_near_the_bound_keeps_the_days_margin(tmp_path: Path, odd: str) -> None:
    assert _window(tmp_path, [HW, odd, "2024-05-01 11:00:00"]) == MARGIN


def test_without_an_index_or_with_an_odd_high_water_mark_the_margin_stays(
    tmp_path: Path,
) -> None:
    assert _window(tmp_path, [HW, "2024-05-01 11:00:00"], index=False) == MARGIN
    assert _window(tmp_path, ["2024-05-01T12:00:00"], hw="2024-05-01T12:00:00") == MARGIN
    assert _window(tmp_path, [HW], hw="2024-05-01 12:00:00+00:00") == MARGIN
