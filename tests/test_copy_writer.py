"""load.batch_writer: a batch of rows sent to COPY in slices, equal to Copy.write_row's rows."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

import sqlite2pg.load as load
from sqlite2pg.load import SLICE_ROWS, batch_writer

ODD: list[object] = [
    None,
    "",
    "tab\there, newline\nthere, return\r, backslash\\, \\N",
    "naïve — 日本語 😀",
    b"\x00\x01\\x\xff",
    b"",
    2**62,
    -(2**63),
    0.1,
    -0.0,
    math.inf,
    1e-310,
    Decimal("12345678901234567890.000000001"),
]


def rows(n: int) -> Iterator[tuple[Any, ...]]:
    """n rows, each (i, one odd value as text or bytea or number, its kind)."""
    for i in range(n):
        v = ODD[i % len(ODD)]
        text = v if isinstance(v, str) or v is None else None
        blob = v if isinstance(v, bytes) else None
        num = v if isinstance(v, (int, float, Decimal)) else None
        yield (i, text, blob, None if num is None else str(num), num is not None and i % 2 == 0)


def load_into(conn: psycopg.Connection[Any], table: str, n: int, *, batched: bool) -> None:
    conn.execute(f"CREATE TEMP TABLE {table} (i bigint, t text, b bytea, x text, f boolean)")
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        if batched:
            batch_writer(copy)(rows(n))  # a generator: consumed slice by slice
        else:
            for r in rows(n):
                copy.write_row(r)


@pytest.mark.parametrize("n", [0, 1, SLICE_ROWS, SLICE_ROWS + 1, 3 * SLICE_ROWS + 7])
def test_batched_rows_equal_write_row(pg_url: str, n: int) -> None:
    with psycopg.connect(pg_url) as conn:
        load_into(conn, "by_row", n, batched=False)
        load_into(conn, "by_batch", n, batched=True)
        assert conn.execute("SELECT count(*) FROM by_batch").fetchone() == (n,)
        for a, b in (("by_row", "by_batch"), ("by_batch", "by_row")):
            diff = conn.execute(
                f"SELECT i, t, b, x, f FROM {a} EXCEPT ALL SELECT i, t, b, x, f FROM {b}"
            ).fetchall()
            assert diff == []
        if n < len(ODD):
            return
        got = dict(conn.execute("SELECT i, t FROM by_batch WHERE i < %s", (len(ODD),)).fetchall())
        assert got[0] is None and got[1] == "" and got[2] == ODD[2] and got[3] == ODD[3]
        blob = conn.execute("SELECT b FROM by_batch WHERE i = 4").fetchone()
        assert blob is not None and bytes(blob[0]) == ODD[4]


def test_slices_bound_each_write(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TEMP TABLE t (i bigint, t text, b bytea, x text, f boolean)")
        with conn.cursor().copy("COPY t FROM STDIN") as copy:
            real = copy.write
            monkeypatch.setattr(copy, "write", lambda data: (sizes.append(len(data)), real(data)))
            write = batch_writer(copy)
            write(rows(2 * SLICE_ROWS + 1))
            write(iter(()))  # nothing to send: no write at all
        assert len(sizes) == 3
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2 * SLICE_ROWS + 1,)


def test_without_psycopgs_formatter_rows_go_one_by_one(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "format_row_text", None)
    with psycopg.connect(pg_url) as conn:
        load_into(conn, "by_row", 40, batched=False)
        load_into(conn, "by_batch", 40, batched=True)
        diff = conn.execute("SELECT * FROM by_row EXCEPT ALL SELECT * FROM by_batch").fetchall()
        assert diff == []
        assert conn.execute("SELECT count(*) FROM by_batch").fetchone() == (40,)
