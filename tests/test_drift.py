"""Schema drift between runs: what a sync applies by itself, and what stops it before it writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from conftest import run_cli
from sqlite2pg.config import Config
from sqlite2pg.errors import DriftError
from test_incremental import assert_same, row_versions, sync


def _state(pg_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(pg_url) as pg:
        return [
            tuple(r)
            for r in pg.execute(
                "SELECT source_table, run_id, high_water FROM sqlite2pg.synced_tables ORDER BY 1"
            )
        ]


def _stops(chinook: Path, pg_url: str, tmp_path: Path, *words: str) -> DriftError:
    before, state = row_versions(pg_url), _state(pg_url)
    with pytest.raises(DriftError) as err:
        sync(chinook, pg_url, tmp_path)
    msg = str(err.value)
    for w in words:
        assert w in msg, msg
    assert err.value.exit_code == 2
    assert row_versions(pg_url) == before, "nothing written"
    assert _state(pg_url) == state, "sync state unchanged"
    return err.value


def test_added_column_is_added_and_filled(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("ALTER TABLE Artist ADD COLUMN Country NVARCHAR(40) NOT NULL DEFAULT 'unknown'")
    conn.execute("ALTER TABLE Album ADD COLUMN Rating REAL")
    conn.execute("UPDATE Artist SET Country = 'UK' WHERE ArtistId IN (1, 2)")
    conn.execute("UPDATE Album SET Rating = AlbumId / 10.0 WHERE AlbumId < 5")
    conn.execute("UPDATE Track SET Name = 'and another change' WHERE TrackId = 7")
    conn.commit()
    conn.close()
    report = sync(chinook, pg_url, tmp_path)
    assert report.mode == "incremental" and report.status == "ok"
    assert report.tables["Artist"].updated == 275  # every row gets its new value
    assert report.tables["Track"].updated == 1
    assert_same(chinook, pg_url)
    with psycopg.connect(pg_url) as pg:
        col = pg.execute(
            "SELECT data_type, character_maximum_length, is_nullable, column_default "
            "FROM information_schema.columns "
            "WHERE table_name = 'artist' AND column_name = 'country'"
        ).fetchone()
    assert col is not None and col[:3] == ("character varying", 40, "NO")
    assert "unknown" in str(col[3])
    again = sync(chinook, pg_url, tmp_path)
    assert again.as_dict()["totals"]["updated"] == 0  # the state knows the new column now


def test_new_table_is_created_and_loaded_with_its_foreign_keys(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.executescript(
        "CREATE TABLE Review (ReviewId INTEGER PRIMARY KEY, AlbumId INTEGER NOT NULL "
        "REFERENCES Album (AlbumId), Stars INTEGER NOT NULL, At DATETIME);"
        "INSERT INTO Review (AlbumId, Stars, At) "
        "SELECT AlbumId, AlbumId % 5, '2024-01-02 03:04:05' "
        "FROM Album WHERE AlbumId < 50;"
    )
    conn.commit()
    conn.close()
    report = sync(chinook, pg_url, tmp_path)
    assert report.mode == "incremental"
    assert report.tables["Review"].written == 49
    assert any("Review: new in the source" in w for w in report.warnings)
    assert_same(chinook, pg_url)
    with psycopg.connect(pg_url) as pg:
        fk = pg.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = 'review'::regclass"
        ).fetchone()
        pk = pg.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid = 'review'::regclass"
        ).fetchone()
        nxt = pg.execute(
            "INSERT INTO review (album_id, stars) VALUES (1, 5) RETURNING review_id"
        ).fetchone()
        pg.rollback()
    assert fk == (1,) and pk == (1,) and nxt == (50,)
    conn = sqlite3.connect(chinook)
    conn.execute("DELETE FROM Review WHERE ReviewId = 3")
    conn.commit()
    conn.close()
    report = sync(chinook, pg_url, tmp_path)
    assert report.tables["Review"].strategy == "hash" and report.tables["Review"].deleted == 1


def test_dropped_column_stops_before_writing(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("ALTER TABLE Customer DROP COLUMN Fax")
    conn.execute("UPDATE Artist SET Name = 'x' WHERE ArtistId = 1")
    conn.commit()
    conn.close()
    err = _stops(chinook, pg_url, tmp_path, "Customer.Fax", "dropped")
    assert err.hint and "sync --full --tables Customer" in err.hint


def test_type_change_stops_before_writing(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.executescript(
        "PRAGMA foreign_keys = OFF; BEGIN;"
        "CREATE TABLE g2 (GenreId INTEGER NOT NULL PRIMARY KEY, Name TEXT);"
        "INSERT INTO g2 SELECT * FROM Genre; DROP TABLE Genre; ALTER TABLE g2 RENAME TO Genre;"
        "COMMIT;"
    )
    conn.close()
    err = _stops(chinook, pg_url, tmp_path, "Genre.Name", "NVARCHAR(120)", "TEXT")
    assert err.hint and "--full --tables Genre" in err.hint


def test_renamed_and_dropped_tables_stop_before_writing(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("ALTER TABLE MediaType RENAME TO MediaKind")
    conn.commit()
    _stops(chinook, pg_url, tmp_path, "'MediaType'", "renamed to 'MediaKind'")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DROP TABLE MediaKind")
    conn.commit()
    conn.close()
    _stops(chinook, pg_url, tmp_path, "'MediaType'", "no longer has it")


def test_cli_drift_message_and_exit_status(chinook: Path, pg_url: str, tmp_path: Path) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("ALTER TABLE Customer DROP COLUMN Fax")
    conn.commit()
    conn.close()
    proc = run_cli(
        ["sync", "--source", str(chinook), "--target", pg_url, "--state",
         str(tmp_path / "state.db"), "--verify", "off"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "column Customer.Fax was dropped" in proc.stderr
    assert "hint:" in proc.stderr and "--full --tables Customer" in proc.stderr


def test_full_reload_of_chosen_tables_keeps_foreign_keys_of_others(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    conn = sqlite3.connect(chinook)
    conn.execute("ALTER TABLE Customer DROP COLUMN Fax")
    conn.execute("UPDATE Artist SET Name = 'reloaded' WHERE ArtistId = 2")
    conn.commit()
    conn.close()
    with psycopg.connect(pg_url) as pg:
        fks_before = pg.execute(
            "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        ).fetchall()
    report = sync(chinook, pg_url, tmp_path, full=True, tables=["Customer", "Artist"])
    assert report.mode == "full" and set(report.tables) == {"Customer", "Artist"}
    with psycopg.connect(pg_url) as pg:
        fks_after = pg.execute(
            "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        ).fetchall()
        fax = pg.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customer' "
            "AND column_name = 'fax'"
        ).fetchone()
    assert fks_after == fks_before  # album -> artist, invoice -> customer, ... all back
    assert fax == (0,)
    assert_same(chinook, pg_url)
    after = sync(chinook, pg_url, tmp_path)
    assert after.mode == "incremental" and after.as_dict()["totals"]["updated"] == 0


def test_unknown_table_for_full_reload_is_an_input_error(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    with pytest.raises(Exception) as err:
        sync(chinook, pg_url, tmp_path, full=True, tables=["Nope"])
    assert "'Nope'" in str(err.value) and getattr(err.value, "exit_code", None) == 2


def test_strategy_change_compares_once_then_runs_the_new_strategy(
    pg_url: str, tmp_path: Path
) -> None:
    from sqlite2pg.sample import apply_changes, write_sample

    db = tmp_path / "s.db"
    write_sample(db, scale=0.05, seed=9, updated_at=True)
    hashing = Config.model_validate({"tables": {"Track": {"strategy": "hash"}}})
    sync(db, pg_url, tmp_path, hashing)
    apply_changes(db, 0.05, seed=1)
    report = sync(db, pg_url, tmp_path)  # auto: timestamp (updated_at)
    assert report.tables["Track"].strategy == "timestamp"
    assert any("strategy changed (hash -> timestamp)" in w for w in report.warnings)
    assert_same(db, pg_url)
    apply_changes(db, 0.05, seed=2)
    report = sync(db, pg_url, tmp_path)
    assert not any("strategy changed" in w for w in report.warnings)
    assert_same(db, pg_url)


def test_table_excluded_later_is_kept_and_no_longer_synced(
    chinook: Path, pg_url: str, tmp_path: Path
) -> None:
    sync(chinook, pg_url, tmp_path)
    cfg = Config.model_validate({"exclude": ["PlaylistTrack"]})
    report = sync(chinook, pg_url, tmp_path, cfg)
    assert report.status == "ok"
    assert any("PlaylistTrack: excluded by the config now" in w for w in report.warnings)
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT count(*) FROM playlist_track").fetchone() == (8715,)
