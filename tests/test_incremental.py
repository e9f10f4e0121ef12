"""Incremental sync, end to end: an application changes the source (foreign keys on), sqlite2pg
syncs, and every value in PostgreSQL is compared with the source, for ten rounds per strategy.

The comparison (``assert_same``) is independent of sqlite2pg's own code: it reads both databases
and converts the source values by hand the way a DBA would expect (DATETIME text -> timestamp,
NUMERIC -> exact decimal), so a wrong row, a missing row or an extra row fails the test.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

import sqlite2pg.api as api
from conftest import run_cli
from sqlite2pg import changes, fingerprints
from sqlite2pg.config import Config
from sqlite2pg.errors import LockHeldError, MassDeleteError
from sqlite2pg.naming import apply_policy
from sqlite2pg.sample import apply_changes, write_sample

ROUNDS = 10


# --------------------------------------------------------------------------- comparison


def _expected(declared: str, value: object) -> object:
    if value is None:
        return None
    kind = declared.upper()
    if kind in ("DATETIME", "TIMESTAMP"):
        assert isinstance(value, str), value
        return datetime.fromisoformat(value)
    if kind.startswith("NUMERIC"):
        return Decimal(repr(value))
    return value


def user_tables(src: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE '\\_sqlite2pg%' ESCAPE '\\' ORDER BY name"
        )
    ]


def assert_same(source: Path, pg_url: str, schema: str = "public") -> int:
    """Every row of every table equal on both sides (by hand-written expectations); returns
    the number of rows compared."""
    src = sqlite3.connect(source)
    compared = 0
    try:
        with psycopg.connect(pg_url) as pg:
            for table in user_tables(src):
                info = src.execute(f'PRAGMA table_info("{table}")').fetchall()
                cols = [c[1] for c in info]
                declared = {c[1]: c[2] for c in info}
                pk = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]] or cols
                idx = [cols.index(c) for c in pk]

                def key(row: tuple[Any, ...], idx: list[int] = idx) -> str:
                    return repr([row[i] for i in idx])

                source_rows = sorted(
                    (
                        tuple(_expected(declared[c], v) for c, v in zip(cols, r, strict=True))
                        for r in src.execute(f'SELECT * FROM "{table}"')
                    ),
                    key=key,
                )
                tcols = ", ".join(f'"{apply_policy(c, "snake_case")}"' for c in cols)
                target = f'"{schema}"."{apply_policy(table, "snake_case")}"'
                target_rows = sorted(
                    (tuple(r) for r in pg.execute(f"SELECT {tcols} FROM {target}")), key=key
                )
                if source_rows != target_rows:
                    s, t = set(source_rows), set(target_rows)
                    raise AssertionError(
                        f"{table}: {len(source_rows)} source rows, {len(target_rows)} target "
                        f"rows; only in source: {sorted(s - t, key=key)[:3]}; only in target: "
                        f"{sorted(t - s, key=key)[:3]}"
                    )
                compared += len(source_rows)
    finally:
        src.close()
    return compared


def row_versions(pg_url: str, schema: str = "public") -> dict[str, set[tuple[str, str]]]:
    """(ctid, xmin) of every row of every user table: equal before and after a run means the
    run wrote nothing there."""
    out: dict[str, set[tuple[str, str]]] = {}
    with psycopg.connect(pg_url) as pg:
        tables = [
            r[0]
            for r in pg.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE'",
                (schema,),
            )
        ]
        for t in tables:
            out[t] = {
                (str(a), str(b))
                for a, b in pg.execute(f'SELECT ctid::text, xmin::text FROM "{schema}"."{t}"')
            }
    return out


def sync(source: Path, pg_url: str, tmp_path: Path, config: Config | None = None, **kw: Any) -> Any:
    kw.setdefault("verify", "off")
    return api.sync(source, pg_url, config=config, state=str(tmp_path / "state.db"), **kw)


def _check_counts(report: Any, counts: Any, *, exact_updates: bool = False) -> None:
    """What the sync applied is what the application did."""
    for table, res in report.tables.items():
        assert res.inserted == counts.inserted.get(table, 0), (table, res.as_dict())
        assert res.deleted == counts.deleted.get(table, 0), (table, res.as_dict())
        if exact_updates:
            assert res.updated == counts.updated.get(table, 0), (table, res.as_dict())
        else:  # an "update" may write the value a row already had
            assert res.updated <= counts.updated.get(table, 0), (table, res.as_dict())


def _rounds(
    source: Path,
    pg_url: str,
    tmp_path: Path,
    config: Config | None,
    strategy: dict[str, str],
    fraction: float = 0.02,
    **shares: float,
) -> None:
    first = sync(source, pg_url, tmp_path, config)
    assert first.mode == "full" and first.status == "ok"
    assert {k: v.strategy for k, v in first.tables.items()} == strategy
    assert_same(source, pg_url)
    for r in range(ROUNDS):
        counts = apply_changes(source, fraction, seed=100 + r, **shares)
        assert counts.total > 0
        report = sync(source, pg_url, tmp_path, config)
        assert report.mode == "incremental", report.as_dict()
        assert report.status == "ok", report.as_dict()
        assert {k: v.strategy for k, v in report.tables.items()} == strategy
        _check_counts(report, counts)
        assert_same(source, pg_url)


# --------------------------------------------------------------------------- multi-round


def test_hash_ten_rounds_on_chinook(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    tables = api.plan(chinook).tables
    _rounds(chinook, pg_url, tmp_path, None, {t.source.name: "hash" for t in tables})


def test_hash_rounds_with_the_fingerprint_helper_process(
    chinook: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table big enough for the helper process: its fingerprints must find the same
    changes as the run's own (the source file is in rollback-journal mode, so it may help)."""
    monkeypatch.setattr(fingerprints, "MIN_ROWS", 1)
    helped: list[str] = []
    start = fingerprints.Helper.__init__

    def spy(self: fingerprints.Helper, *a: Any, **kw: Any) -> None:
        start(self, *a, **kw)
        if not kw.get("background"):  # the incremental runs' helper, not the full load's
            helped.extend(self.jobs)

    monkeypatch.setattr(fingerprints.Helper, "__init__", spy)
    tables = api.plan(chinook).tables
    _rounds(chinook, pg_url, tmp_path, None, {t.source.name: "hash" for t in tables})
    assert "Track" in helped and "PlaylistTrack" not in helped  # both kinds in every round


def _full_load_state(
    chinook: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(the tables the helper took, the hash state) of a full load into ``schema``."""
    helped: list[str] = []
    start = fingerprints.Helper.__init__

    def spy(self: fingerprints.Helper, *a: Any, **kw: Any) -> None:
        start(self, *a, **kw)
        helped.extend(self.jobs)

    with monkeypatch.context() as m:
        m.setattr(fingerprints.Helper, "__init__", spy)
        cfg = Config.model_validate({"schema": schema})
        report = sync(chinook, pg_url, tmp_path / schema, cfg)
    assert report.status == "ok", report.as_dict()
    with psycopg.connect(pg_url) as pg:
        rows = pg.execute(
            "SELECT source_table, bucket, h, n, keys, sub FROM sqlite2pg.hash_buckets "
            "WHERE target_schema = %s ORDER BY source_table, bucket",
            (schema,),
        ).fetchall()
    return helped, rows


def test_full_load_state_from_the_helper_process_equals_the_runs_own(
    chinook: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full load's hash state (every bucket's fingerprint, row count and keys) is the same
    whether the helper process computed it during the copy or this process afterwards."""
    monkeypatch.setattr(fingerprints, "MIN_ROWS", 1)
    helped, with_helper = _full_load_state(chinook, pg_url, tmp_path, monkeypatch, "helped")
    monkeypatch.setattr(fingerprints, "MIN_ROWS", 10**12)
    nobody, alone = _full_load_state(chinook, pg_url, tmp_path, monkeypatch, "alone")
    assert "Track" in helped and "PlaylistTrack" in helped and not nobody
    assert len({r[0] for r in alone}) == 11  # every Chinook table has a state
    assert with_helper == alone


@pytest.mark.parametrize("indexed", [True, False], ids=["index", "no-index"])
def test_timestamp_ten_rounds(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indexed: bool
) -> None:
    """With an index on updated_at (the sample has one) the window's rows and the high-water
    mark come from the index; without, from the key comparison's pass over the table."""
    db = tmp_path / "sample.db"
    write_sample(db, scale=0.3, seed=5, updated_at=True)
    tables = api.plan(db).tables
    if not indexed:
        with sqlite3.connect(db) as conn:
            for t in tables:
                conn.execute(f"DROP INDEX [IX_{t.source.name}_updated_at]")
    assert {t.strategy_column for t in tables} == {"updated_at"}  # auto-detected
    searched: list[bool] = []
    window_searched = changes._window_searched
    monkeypatch.setattr(
        changes,
        "_window_searched",
        lambda *a: searched.append(window_searched(*a)) or searched[-1],
    )
    _rounds(db, pg_url, tmp_path, None, {t.source.name: "timestamp" for t in tables})
    assert len(searched) == ROUNDS * len(tables)
    assert set(searched) == {indexed}


def test_append_ten_rounds(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    """Insert-only tables (their rows are inserted and deleted, never updated)."""
    cfg = Config.model_validate(
        {"tables": {"InvoiceLine": {"strategy": "append"}, "Invoice": {"strategy": "append"}}}
    )
    names = [t.source.name for t in api.plan(chinook, config=cfg).tables]
    strategy = {n: "append" if n in ("InvoiceLine", "Invoice") else "hash" for n in names}
    _rounds(chinook, pg_url, tmp_path, cfg, strategy, inserts=0.5, updates=0.0, deletes=0.5)


def test_triggers_ten_rounds(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    names = [t.source.name for t in api.plan(chinook).tables]
    cfg = Config.model_validate({"tables": {n: {"strategy": "triggers"} for n in names}})
    first = sync(chinook, pg_url, tmp_path, cfg)
    assert any("installed change-log triggers" in w for w in first.warnings)
    src = sqlite3.connect(chinook)
    triggers = src.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '_sqlite2pg_%'"
    ).fetchone()[0]
    src.close()
    assert triggers == 3 * len(names)
    for r in range(ROUNDS):
        counts = apply_changes(chinook, 0.02, seed=200 + r)
        report = sync(chinook, pg_url, tmp_path, cfg)
        assert report.mode == "incremental" and report.status == "ok"
        assert {v.strategy for v in report.tables.values()} == {"triggers"}
        _check_counts(report, counts)
        assert_same(chinook, pg_url)
        src = sqlite3.connect(chinook)
        left = src.execute("SELECT count(*) FROM _sqlite2pg_changes").fetchone()[0]
        src.close()
        assert left == 0, "the change log is trimmed once the target committed"
        assert not any("not usable" in w for w in report.warnings), report.warnings
    again = sync(chinook, pg_url, tmp_path, cfg)
    assert not any("installed" in w or "not usable" in w for w in again.warnings)
    assert sum(r.unchanged for r in again.tables.values()) > 0


def test_full_ten_rounds(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    names = [t.source.name for t in api.plan(chinook).tables]
    cfg = Config.model_validate({"tables": {n: {"strategy": "full"} for n in names}})
    _rounds(chinook, pg_url, tmp_path, cfg, {n: "full" for n in names})


def test_table_without_primary_key_is_reloaded_only_when_it_changed(
    pg_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "nopk.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE log (at TEXT, msg TEXT); "
        "INSERT INTO log VALUES ('a', 'x'), ('a', 'x'), ('b', NULL);"
        "CREATE TABLE k (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO k VALUES (1, 'one');"
    )
    conn.commit()
    sync(db, pg_url, tmp_path)
    before = row_versions(pg_url)
    report = sync(db, pg_url, tmp_path)
    assert report.tables["log"].strategy == "full"
    assert row_versions(pg_url) == before
    conn.execute("INSERT INTO log VALUES ('a', 'x')")  # a third duplicate
    conn.execute("DELETE FROM log WHERE at = 'b'")
    conn.commit()
    report = sync(db, pg_url, tmp_path)
    res = report.tables["log"]
    assert (res.inserted, res.deleted) == (1, 1)
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT at, msg, count(*) FROM log GROUP BY 1, 2").fetchall() == [
            ("a", "x", 3)
        ]
    conn.close()


# --------------------------------------------------------------------------- nothing changed


@pytest.mark.parametrize("strategy", ["hash", "timestamp", "triggers", "append", "full"])
def test_nothing_changed_writes_nothing(pg_url: str, tmp_path: Path, strategy: str) -> None:
    db = tmp_path / "s.db"
    write_sample(db, scale=0.05, seed=3, updated_at=True)
    tables: dict[str, Any] = {"Track": {"strategy": strategy}, "Genre": {"strategy": "hash"}}
    cfg = Config.model_validate({"tables": tables})
    sync(db, pg_url, tmp_path, cfg)
    before = row_versions(pg_url)
    for _ in range(2):
        report = sync(db, pg_url, tmp_path, cfg)
        assert report.mode == "incremental"
        assert report.tables["Track"].strategy == strategy
        totals = report.as_dict()["totals"]
        assert (totals["inserted"], totals["updated"], totals["deleted"]) == (0, 0, 0)
        assert any("nothing changed" in w for w in report.warnings)
        assert not any("compared whole" in w or "not usable" in w for w in report.warnings)
        assert row_versions(pg_url) == before
    with psycopg.connect(pg_url) as pg:
        modes = [r[0] for r in pg.execute("SELECT mode FROM sqlite2pg.runs ORDER BY finished_at")]
    assert modes == ["full", "incremental", "incremental"], "every run is recorded"


def test_updating_a_row_to_the_same_values_writes_nothing(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("UPDATE Track SET UnitPrice = 0.99 + 0 WHERE TrackId = 1")  # same value
    conn.execute("UPDATE Artist SET Name = Name || '' WHERE ArtistId = 1")
    conn.commit()
    conn.close()
    before = row_versions(pg_url)
    report = sync(chinook, pg_url, tmp_path)
    assert report.as_dict()["totals"]["updated"] == 0
    assert row_versions(pg_url) == before


# --------------------------------------------------------------------------- guard, lock


def test_mass_delete_guard_stops_before_writing(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("DELETE FROM PlaylistTrack WHERE PlaylistId IN (1, 8)")  # 6,580 of 8,715
    conn.execute("UPDATE Artist SET Name = 'changed' WHERE ArtistId = 1")
    conn.commit()
    conn.close()
    before = row_versions(pg_url)
    with pytest.raises(MassDeleteError) as err:
        sync(chinook, pg_url, tmp_path)
    msg = str(err.value)
    assert "PlaylistTrack" in msg and "6,580 of 8,715" in msg and "--allow-mass-delete" in msg
    assert err.value.exit_code == 2
    assert row_versions(pg_url) == before, "nothing was written"
    report = sync(chinook, pg_url, tmp_path, allow_mass_delete=True)
    assert report.tables["PlaylistTrack"].deleted == 6580
    assert_same(chinook, pg_url)


def test_source_replaced_by_an_empty_copy_is_stopped(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("PRAGMA foreign_keys = OFF")
    for t in user_tables(conn):
        conn.execute(f'DELETE FROM "{t}"')
    conn.commit()
    conn.close()
    with pytest.raises(MassDeleteError):
        sync(chinook, pg_url, tmp_path)
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT count(*) FROM track").fetchone() == (3503,)


def test_a_second_run_exits_while_one_holds_the_lock(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    from sqlite2pg.incremental import apply_lock_key
    from sqlite2pg.locking import advisory_lock_id

    sync(chinook, pg_url, tmp_path)
    with psycopg.connect(pg_url) as other:
        other.execute(
            "SELECT pg_advisory_xact_lock(%s)", (advisory_lock_id(apply_lock_key("public")),)
        )
        with pytest.raises(LockHeldError) as err:
            sync(chinook, pg_url, tmp_path)
        assert err.value.exit_code == 75
        assert "another sqlite2pg run" in str(err.value)
    assert sync(chinook, pg_url, tmp_path).status == "ok"


# --------------------------------------------------------------------------- rejected rows


def test_rejected_update_keeps_the_last_good_row_and_is_retried(
    pg_url: str, tmp_path: Path
) -> None:
    for strategy in ("hash", "timestamp", "triggers", "append"):
        db = tmp_path / f"r_{strategy}.db"
        conn = sqlite3.connect(db)
        conn.executescript(
            "CREATE TABLE item (id INTEGER PRIMARY KEY, qty INTEGER, "
            "updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);"
            "INSERT INTO item (id, qty) VALUES (1, 10), (2, 20), (3, 30);"
        )
        conn.commit()
        cfg = Config.model_validate(
            {"schema": f"s_{strategy}", "tables": {"item": {"strategy": strategy}}}
        )
        sync(db, pg_url, tmp_path, cfg)
        if strategy == "append":
            conn.execute("INSERT INTO item (id, qty) VALUES (4, 'four')")
        else:
            conn.execute(
                "UPDATE item SET qty = 'lots', updated_at = datetime('now', '+1 hour') WHERE id = 2"
            )
        conn.commit()
        bad = 4 if strategy == "append" else 2
        for _ in range(2):  # reported on every run until the source is fixed
            report = sync(db, pg_url, tmp_path, cfg)
            assert report.status == "rejected", strategy
            assert report.tables["item"].rejected == 1, strategy
            with psycopg.connect(pg_url) as pg:
                rows = pg.execute(f"SELECT id, qty FROM s_{strategy}.item ORDER BY id").fetchall()
            expected = [(1, 10), (2, 20), (3, 30)]
            assert rows == expected, strategy  # the last good version stays
        conn.execute(
            "UPDATE item SET qty = 44, updated_at = datetime('now', '+2 hours') WHERE id = ?",
            (bad,),
        )
        conn.commit()
        report = sync(db, pg_url, tmp_path, cfg)
        assert report.status == "ok", strategy
        with psycopg.connect(pg_url) as pg:
            assert pg.execute(
                f"SELECT qty FROM s_{strategy}.item WHERE id = %s", (bad,)
            ).fetchone() == (44,)
        conn.close()


# --------------------------------------------------------------------------- identities, CLI


def test_identity_continues_after_incremental_inserts(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("INSERT INTO Artist (ArtistId, Name) VALUES (900, 'Far Away')")
    conn.commit()
    conn.close()
    sync(chinook, pg_url, tmp_path)
    with psycopg.connect(pg_url) as pg:
        new_id = pg.execute("INSERT INTO artist (name) VALUES ('x') RETURNING artist_id").fetchone()
    assert new_id == (901,)


def test_cli_incremental_json(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    import json

    def run() -> dict[str, Any]:
        proc = run_cli(
            ["sync", "--source", str(chinook), "--target", pg_url, "--state",
             str(tmp_path / "st.db"), "--verify", "off", "--json"],
            tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    assert run()["mode"] == "full"
    conn = sqlite3.connect(chinook)
    conn.execute("UPDATE Genre SET Name = 'Rock!' WHERE GenreId = 1")
    conn.execute("INSERT INTO Genre VALUES (26, 'Polka')")
    conn.execute("DELETE FROM PlaylistTrack WHERE PlaylistId = 18")
    conn.commit()
    conn.close()
    out = run()
    assert out["mode"] == "incremental"
    genre = out["tables"]["Genre"]
    assert (genre["inserted"], genre["updated"], genre["deleted"], genre["unchanged"]) == (
        1,
        1,
        0,
        24,
    )
    assert genre["strategy"] == "hash"
    assert out["tables"]["PlaylistTrack"]["deleted"] == 1
    assert out["totals"]["deleted"] == 1


def test_orphans_made_by_a_source_without_foreign_keys_stop_the_run_with_a_fix(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)  # foreign keys off: SQLite's default
    conn.execute("DELETE FROM Genre WHERE GenreId = 25")  # one track still refers to it
    conn.commit()
    conn.close()
    before = row_versions(pg_url)
    with pytest.raises(Exception) as err:
        sync(chinook, pg_url, tmp_path)
    assert "without their parent" in str(err.value)
    assert "--full --tables Genre,Track" in str(err.value)
    assert row_versions(pg_url) == before
    sync(chinook, pg_url, tmp_path, full=True, tables=["Genre", "Track"])
    assert sync(chinook, pg_url, tmp_path).status == "ok"
    assert_same(chinook, pg_url)


# --------------------------------------------------------------------------- timestamp edges

INDEXED = pytest.mark.parametrize("index", [False, True], ids=["no-index", "index"])


def _stamped_db(
    path: Path, *, wal: bool = False, declared: str = "DATETIME", index: bool = False
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT, updated_at {declared})")
    if index:
        conn.execute("CREATE INDEX item_stamp ON item (updated_at)")
    conn.execute(
        "INSERT INTO item VALUES (1, 'a', '2024-05-01 10:00:00'), "
        "(2, 'b', '2024-05-01 11:00:00'), (3, 'c', '2024-05-01 12:00:00')"
    )
    return conn


def _target_rows(pg_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as pg:
        return [tuple(r) for r in pg.execute("SELECT id, v FROM item ORDER BY id")]


@INDEXED
def test_timestamp_late_commit_behind_the_high_water_mark(
    pg_url: str, tmp_path: Path, index: bool
) -> None:
    """A row stamped before the last sync's high-water mark but committed after that sync (the
    application took its timestamp, then committed later) is still picked up: look-back."""
    db = tmp_path / "late.db"
    app = _stamped_db(db, wal=True, index=index)
    sync(db, pg_url, tmp_path)
    # a writer holds an open transaction during a sync: WAL, so the sync neither waits for it
    # nor sees its row
    slow = sqlite3.connect(db, isolation_level=None)
    slow.execute("BEGIN IMMEDIATE")
    slow.execute("UPDATE item SET v = 'slow', updated_at = '2024-05-01 12:30:00' WHERE id = 1")
    report = sync(db, pg_url, tmp_path)
    assert report.as_dict()["totals"]["updated"] == 0
    slow.execute("COMMIT")
    slow.close()
    app.execute("UPDATE item SET v = 'new', updated_at = '2024-05-01 13:00:00' WHERE id = 2")
    sync(db, pg_url, tmp_path)  # high-water mark now 13:00
    assert _target_rows(pg_url) == [(1, "slow"), (2, "new"), (3, "c")]
    # committed after that sync, stamped one minute before its high-water mark
    app.execute("UPDATE item SET v = 'late', updated_at = '2024-05-01 12:59:00' WHERE id = 3")
    report = sync(db, pg_url, tmp_path)
    assert report.tables["item"].updated == 1
    assert _target_rows(pg_url) == [(1, "slow"), (2, "new"), (3, "late")]
    assert_same(db, pg_url)


@INDEXED
def test_timestamp_equal_to_the_high_water_mark_is_not_skipped(
    pg_url: str, tmp_path: Path, index: bool
) -> None:
    db = tmp_path / "eq.db"
    app = _stamped_db(db, index=index)
    sync(db, pg_url, tmp_path)  # high-water mark 2024-05-01 12:00:00
    app.execute("INSERT INTO item VALUES (4, 'same second', '2024-05-01 12:00:00')")
    app.execute("UPDATE item SET v = 'C', updated_at = '2024-05-01 12:00:00' WHERE id = 3")
    report = sync(db, pg_url, tmp_path)
    assert (report.tables["item"].inserted, report.tables["item"].updated) == (1, 1)
    assert _target_rows(pg_url) == [(1, "a"), (2, "b"), (3, "C"), (4, "same second")]


@INDEXED
def test_timestamp_null_cursor_rows_are_not_skipped(
    pg_url: str, tmp_path: Path, index: bool
) -> None:
    db = tmp_path / "null.db"
    app = _stamped_db(db, index=index)
    app.execute("INSERT INTO item VALUES (10, 'null from the start', NULL)")
    sync(db, pg_url, tmp_path)
    before = row_versions(pg_url)
    assert sync(db, pg_url, tmp_path).as_dict()["totals"]["updated"] == 0
    assert row_versions(pg_url) == before  # re-read, but identical: not written
    app.execute("INSERT INTO item VALUES (11, 'new without stamp', NULL)")
    app.execute("UPDATE item SET v = 'stamp removed', updated_at = NULL WHERE id = 1")
    app.execute("UPDATE item SET v = 'null changed' WHERE id = 10")
    report = sync(db, pg_url, tmp_path)
    assert (report.tables["item"].inserted, report.tables["item"].updated) == (1, 2)
    assert _target_rows(pg_url) == [
        (1, "stamp removed"),
        (2, "b"),
        (3, "c"),
        (10, "null changed"),
        (11, "new without stamp"),
    ]


def _set_schema(db: Path, sql: str) -> None:
    """Rewrite the table's declaration in place (how files with NULLs in NOT NULL columns are
    made: SQLite itself never writes one)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'item'", (sql,))
    conn.close()


def test_timestamp_null_in_a_not_null_indexed_cursor_is_retried(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite folds ``IS NULL`` to false for a NOT NULL column, yet a file can hold a NULL
    there. The full load rejects that row (with its reason); each sync retries it by key (and
    rejects it again) while it has no stamp, and copies it once it has one; the window itself
    is searched in the index."""
    db = tmp_path / "nn.db"
    nullable = "CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT, updated_at DATETIME)"
    not_null = nullable.replace("DATETIME", "DATETIME NOT NULL")
    app = _stamped_db(db, index=True)
    app.execute("INSERT INTO item VALUES (10, 'no stamp', NULL)")
    app.close()
    _set_schema(db, not_null)
    assert sync(db, pg_url, tmp_path).tables["item"].rejected == 1
    searched: list[bool] = []
    window_searched = changes._window_searched
    monkeypatch.setattr(
        changes, "_window_searched", lambda *a: searched.append(window_searched(*a)) or searched[-1]
    )
    _set_schema(db, nullable)
    app = sqlite3.connect(db, isolation_level=None)
    app.execute("UPDATE item SET v = 'changed, still no stamp' WHERE id = 10")
    app.close()
    _set_schema(db, not_null)
    res = sync(db, pg_url, tmp_path).tables["item"]
    # read: the row at the high-water mark (plain stamps: the exact look-back) and the retried one
    assert (res.read, res.rejected, res.inserted) == (2, 1, 0)
    _set_schema(db, nullable)
    app = sqlite3.connect(db, isolation_level=None)
    app.execute("UPDATE item SET updated_at = '2024-04-02 00:00:00' WHERE id = 10")
    app.close()
    _set_schema(db, not_null)
    res = sync(db, pg_url, tmp_path).tables["item"]
    assert (res.inserted, res.rejected) == (1, 0)
    assert _target_rows(pg_url)[-1] == (10, "changed, still no stamp")
    assert sync(db, pg_url, tmp_path).tables["item"].written == 0
    assert searched == [True, True, True]
    assert_same(db, pg_url)


@INDEXED
def test_timestamp_mixed_text_formats_and_epoch_numbers(
    pg_url: str, tmp_path: Path, index: bool
) -> None:
    db = tmp_path / "mixed.db"
    app = _stamped_db(db, index=index)
    sync(db, pg_url, tmp_path)
    # 'T' separator, offset, fraction: all later than 12:00 UTC, although some sort lower as text
    app.execute("UPDATE item SET v = 'T', updated_at = '2024-05-01T12:30:00' WHERE id = 1")
    app.execute(
        "UPDATE item SET v = 'offset', updated_at = '2024-05-01 11:30:00-02:00' WHERE id = 2"
    )
    app.execute("INSERT INTO item VALUES (5, 'epoch', 1714567000)")
    sync(db, pg_url, tmp_path)
    assert _target_rows(pg_url) == [(1, "T"), (2, "offset"), (3, "c"), (5, "epoch")]


def test_timestamp_on_epoch_integer_column(pg_url: str, tmp_path: Path) -> None:
    db = tmp_path / "epoch.db"
    app = sqlite3.connect(db, isolation_level=None)
    app.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT, mtime INTEGER)")
    app.execute("INSERT INTO item VALUES (1, 'a', 1714550000), (2, 'b', 1714560000)")
    cfg = Config.model_validate({"tables": {"item": {"strategy": "timestamp", "column": "mtime"}}})
    sync(db, pg_url, tmp_path, cfg)
    app.execute("UPDATE item SET v = 'late', mtime = 1714559990 WHERE id = 1")  # behind the mark
    app.execute("INSERT INTO item VALUES (3, 'c', 1714560000)")  # equal to the mark
    report = sync(db, pg_url, tmp_path, cfg)
    assert report.tables["item"].strategy == "timestamp"
    assert _target_rows(pg_url) == [(1, "late"), (2, "b"), (3, "c")]


def test_new_values_that_do_not_fit_are_rejected_not_fatal(pg_url: str, tmp_path: Path) -> None:
    """An incremental run keeps the existing column types: a new value that does not fit them
    (too long for varchar(n), outside smallint, NUL byte, bytes that are not UTF-8) is rejected
    with its reason; the rest of the run applies."""
    db = tmp_path / "fit.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, code VARCHAR(5), small TINYINT, note TEXT);"
        "INSERT INTO t VALUES (1, 'ab', 1, 'x'), (2, 'cd', 2, 'y'), (3, 'ef', 3, 'z');"
    )
    conn.commit()
    sync(db, pg_url, tmp_path)
    with psycopg.connect(pg_url) as pg:
        types: dict[str, str] = dict(
            pg.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 't'"
            ).fetchall()
        )
    assert types["small"] == "smallint" and types["code"] == "character varying"
    conn.execute("UPDATE t SET code = 'toolong' WHERE id = 1")
    conn.execute("UPDATE t SET small = 100000 WHERE id = 2")
    conn.execute("UPDATE t SET note = 'nul' || char(0) || 'byte' WHERE id = 3")
    conn.execute("INSERT INTO t VALUES (4, CAST(x'ff00' AS TEXT), 4, 'bad utf-8')")
    conn.execute("INSERT INTO t VALUES (5, 'ok', 5, 'fine')")
    conn.commit()
    conn.close()
    report = sync(db, pg_url, tmp_path)
    res = report.tables["t"]
    assert report.status == "rejected" and res.rejected == 4 and res.inserted == 1
    with psycopg.connect(pg_url) as pg:
        rows = pg.execute("SELECT id, code, small, note FROM t ORDER BY id").fetchall()
    assert rows == [(1, "ab", 1, "x"), (2, "cd", 2, "y"), (3, "ef", 3, "z"), (5, "ok", 5, "fine")]
    from sqlite2pg.state import StateDB

    reasons = [r.reason for r in StateDB(tmp_path / "state.db").rejects(report.run_id)]
    assert len(reasons) == 4


@pytest.mark.parametrize("composite", [False, True])
def test_key_set_deletes_many_per_range_and_rows_the_cursor_missed(
    pg_url: str, tmp_path: Path, composite: bool
) -> None:
    """Deletes found by key sets: several in one key range (narrowed down piece by piece),
    whole ranges gone, and a row inserted with a stamp far behind the look-back window."""
    db = tmp_path / "keys.db"
    conn = sqlite3.connect(db)
    if composite:
        conn.execute(
            "CREATE TABLE item (a INTEGER NOT NULL, b INTEGER NOT NULL, v TEXT, "
            "updated_at DATETIME, PRIMARY KEY (a, b))"
        )
        rows = [(a, b, f"v{a}.{b}", "2024-01-01 00:00:00") for a in range(5) for b in range(3000)]
        conn.executemany("INSERT INTO item VALUES (?, ?, ?, ?)", rows)
        gone: list[tuple[int, ...]] = [(1, 5), (1, 6), (1, 2999), (2, 100), (2, 1500), (2, 1501)]
        gone.append((2, 1502))
        where = "a = ? AND b = ?"
        late: tuple[int, ...] = (3, 5000)
    else:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT, updated_at DATETIME)")
        conn.executemany(
            "INSERT INTO item VALUES (?, ?, ?)",
            [(i, f"v{i}", "2024-01-01 00:00:00") for i in range(1, 20001)],
        )
        gone = [(7,), (8,), (9,), (700,), (701,), (5000,), (5003,), (19999,)]
        where = "id = ?"
        late = (25000,)
    conn.commit()
    sync(db, pg_url, tmp_path)  # auto: timestamp on updated_at
    for k in gone:
        conn.execute(f"DELETE FROM item WHERE {where}", k)
    if composite:
        conn.execute("DELETE FROM item WHERE a = 4")  # a whole first-column value
    else:
        conn.execute("DELETE FROM item WHERE id BETWEEN 10000 AND 10999")
    cols = "a, b, v, updated_at" if composite else "id, v, updated_at"
    marks = ", ".join("?" * (len(late) + 2))
    conn.execute(f"INSERT INTO item ({cols}) VALUES ({marks})", (*late, "late", "2020-01-01"))
    conn.execute(
        f"UPDATE item SET v = 'new', updated_at = '2024-06-01' WHERE {where}",
        (1, 7) if composite else (3,),
    )
    conn.commit()
    conn.close()
    report = sync(db, pg_url, tmp_path)
    res = report.tables["item"]
    assert res.strategy == "timestamp"
    expected_deletes = len(gone) + (3000 if composite else 1000)
    assert (res.deleted, res.updated) == (expected_deletes, 1)
    assert res.inserted == 1  # the late row, found by its key range
    assert any("did not select" in w for w in report.warnings)
    assert_same(db, pg_url)
    again = sync(db, pg_url, tmp_path)
    assert again.as_dict()["totals"]["deleted"] == 0


def test_losing_the_local_state_database_loses_no_sync_state(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    """What decides the next run lives in the target: a lost local state file changes nothing."""
    sync(chinook, pg_url, tmp_path)
    (tmp_path / "state.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"state.db{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(chinook)
    conn.execute("UPDATE Album SET Title = 'kept going' WHERE AlbumId = 3")
    conn.commit()
    conn.close()
    report = sync(chinook, pg_url, tmp_path)
    assert report.mode == "incremental"
    assert report.tables["Album"].updated == 1
    assert_same(chinook, pg_url)


@pytest.mark.parametrize("whole", [False, True])
def test_vacuum_renumbering_rowids(
    chinook: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole: bool
) -> None:
    """PlaylistTrack has no INTEGER PRIMARY KEY: its rows can get new rowids (VACUUM may do
    that), so its buckets look changed. Rows that only moved are not written; with most
    buckets changed the table is compared whole (memory-flat), once."""
    import sqlite2pg.changes

    if whole:
        monkeypatch.setattr(sqlite2pg.changes, "MANY_BUCKETS", 10)
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    deleted = conn.execute(
        "DELETE FROM PlaylistTrack WHERE PlaylistId = 1 AND TrackId < 200"
    ).rowcount
    # every row gets a new rowid (what VACUUM may do to a table without INTEGER PRIMARY KEY)
    conn.executescript(
        "CREATE TEMP TABLE keep AS SELECT * FROM PlaylistTrack; DELETE FROM PlaylistTrack;"
        "INSERT INTO PlaylistTrack SELECT * FROM keep ORDER BY TrackId DESC; DROP TABLE keep;"
    )
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    report = sync(chinook, pg_url, tmp_path)
    res = report.tables["PlaylistTrack"]
    assert (res.inserted, res.updated, res.deleted) == (0, 0, deleted)
    assert any("compared whole" in w for w in report.warnings) == whole
    assert_same(chinook, pg_url)
    again = sync(chinook, pg_url, tmp_path)
    assert not any("compared whole" in w for w in again.warnings)
    assert again.as_dict()["totals"]["deleted"] == 0
