"""The real Chinook file round-trips: every value equal, keys, foreign keys, identities."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import psycopg

import sqlite2pg.api as api

PK_COUNT = 11
FK_COUNT = 11


def _expected(declared: str, value: object) -> object:
    """What a careful DBA expects in PostgreSQL for a Chinook value (written out by hand)."""
    if value is None:
        return None
    kind = declared.upper()
    if kind == "DATETIME":
        assert isinstance(value, str)
        return datetime.fromisoformat(value)
    if kind.startswith("NUMERIC"):
        return Decimal(repr(value))
    return value


def test_chinook_round_trip(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    report = api.sync(chinook, pg_url, state=str(tmp_path / "state.db"), verify="off")
    assert report.status == "ok"
    assert report.exit_code == 0
    src = sqlite3.connect(chinook)
    tables = [
        r[0]
        for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    assert len(tables) == 11
    with psycopg.connect(pg_url) as pg:
        for table in tables:
            res = report.tables[table]
            info = src.execute(f'PRAGMA table_info("{table}")').fetchall()
            cols = [c[1] for c in info]
            declared = {c[1]: c[2] for c in info}
            target_cols = [c.name for c in api.plan(chinook).table(table).columns]
            pk = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]]
            order = ", ".join(f'"{c}"' for c in pk)
            source_rows = src.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
            tcols = ", ".join(f'"{c}"' for c in target_cols)
            torder = ", ".join(f'"{target_cols[cols.index(c)]}"' for c in pk)
            target_rows = pg.execute(
                f'SELECT {tcols} FROM "{res.target}" ORDER BY {torder}'
            ).fetchall()
            assert len(target_rows) == len(source_rows) == res.written
            for s_row, t_row in zip(source_rows, target_rows, strict=True):
                expected = tuple(
                    _expected(declared[c], v) for c, v in zip(cols, s_row, strict=True)
                )
                assert t_row == expected, (table, s_row)
        pks = pg.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
            "AND connamespace = 'public'::regnamespace"
        ).fetchone()
        fks = pg.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated "
            "AND connamespace = 'public'::regnamespace"
        ).fetchone()
        assert pks == (PK_COUNT,)
        assert fks == (FK_COUNT,)
        # identities continue after the highest id
        new_id = pg.execute(
            "INSERT INTO artist (name) VALUES ('New Artist') RETURNING artist_id"
        ).fetchone()
        assert new_id == (276,)
        assert pg.execute(
            "SELECT data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'invoice' AND column_name = 'invoice_date'"
        ).fetchone() == ("timestamp without time zone", "NO")


def test_rerun_never_duplicates(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    api.sync(chinook, pg_url, state=state, verify="off")
    api.sync(chinook, pg_url, state=state, verify="off")
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT count(*) FROM playlist_track").fetchone() == (8715,)
        assert pg.execute("SELECT count(*) FROM track").fetchone() == (3503,)


def test_chinook_streams_every_column_untouched(chinook: Path) -> None:
    """Chinook's values all fit their mapped types, NULLs included: no column may fall back to
    per-value conversion (that is the slow path, for odd data only)."""
    plan = api.plan(chinook)
    dirty = {
        f"{t.source.name}.{name}": p.dirty
        for t in plan.tables
        for name, p in t.profiles.items()
        if p.dirty
    }
    assert dirty == {}
    # the NULL-heavy column that once counted as dirty
    with sqlite3.connect(chinook) as conn:
        nulls = conn.execute("SELECT count(*) FROM Track WHERE Composer IS NULL").fetchone()[0]
    assert nulls > 900 and plan.table("Track").profiles["Composer"].dirty == 0
