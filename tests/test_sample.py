"""The sample generator and change applier, on real SQLite files."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import CHINOOK  # one location: SQLITE2PG_CHINOOK or shared/ beside the repo
from sqlite2pg.sample import CHINOOK_ROWS, apply_changes, row_counts, write_sample

needs_chinook = pytest.mark.skipif(not CHINOOK.is_file(), reason=f"{CHINOOK} not found")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def connect(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path))


def tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name COLLATE BINARY"
        )
    ]


def catalog(path: Path) -> dict[str, Any]:
    """Everything PRAGMAs say about each table: columns, indexes and their columns, keys."""
    with connect(path) as conn:
        out: dict[str, Any] = {}
        for t in tables(conn):
            indexes = conn.execute(f"PRAGMA index_list([{t}])").fetchall()
            out[t] = {
                "columns": conn.execute(f"PRAGMA table_xinfo([{t}])").fetchall(),
                "indexes": indexes,
                "index_columns": {
                    i[1]: conn.execute(f"PRAGMA index_xinfo([{i[1]}])").fetchall() for i in indexes
                },
                "foreign_keys": conn.execute(f"PRAGMA foreign_key_list([{t}])").fetchall(),
            }
        return out


def counts(path: Path) -> dict[str, int]:
    with connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0] for t in tables(conn)}


def fk_problems(path: Path) -> list[Any]:
    with connect(path) as conn:
        return conn.execute("PRAGMA foreign_key_check").fetchall()


def dump(path: Path) -> str:
    with connect(path) as conn:
        return "\n".join(conn.iterdump())


def rows_by_rowid(path: Path) -> dict[str, dict[int, tuple[Any, ...]]]:
    with connect(path) as conn:
        return {
            t: {r[0]: r[1:] for r in conn.execute(f"SELECT rowid, * FROM [{t}]")}
            for t in tables(conn)
        }


@pytest.fixture(scope="module")
def sample1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scale-1 sample, written once; tests that change it work on copies."""
    path = tmp_path_factory.mktemp("sample") / "chinook-s1.db"
    write_sample(path, scale=1, seed=3)
    return path


@pytest.fixture
def copy_of(tmp_path: Path) -> Iterator[Any]:
    def make(source: Path) -> Path:
        target = tmp_path / f"copy-{source.name}"
        shutil.copyfile(source, target)
        target.chmod(0o644)
        return target

    yield make


# The schema.


@needs_chinook
def test_schema_is_chinooks_exactly(sample1: Path) -> None:
    assert catalog(sample1) == catalog(CHINOOK)
    with connect(sample1) as mine, connect(CHINOOK) as real:
        query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        assert mine.execute(query).fetchall() == real.execute(query).fetchall()


def test_schema_has_chinooks_keys_and_indexes(sample1: Path) -> None:
    cat = catalog(sample1)
    assert sorted(cat) == sorted(CHINOOK_ROWS)
    assert sum(len({fk[0] for fk in t["foreign_keys"]}) for t in cat.values()) == 11
    assert sum(1 for t in cat.values() for i in t["indexes"] if i[3] == "c") == 11
    playlist_pk = [(c[1], c[5]) for c in cat["PlaylistTrack"]["columns"]]
    assert playlist_pk == [("PlaylistId", 1), ("TrackId", 2)]
    track = {c[1]: (c[2], c[3]) for c in cat["Track"]["columns"]}
    assert track["UnitPrice"] == ("NUMERIC(10,2)", 1)
    assert track["Name"] == ("NVARCHAR(200)", 1)


# Rows.


def test_scale_one_matches_chinooks_row_counts(sample1: Path) -> None:
    assert counts(sample1) == dict(CHINOOK_ROWS)


def test_counts_scale_and_are_returned(tmp_path: Path) -> None:
    written = write_sample(tmp_path / "x.db", scale=2.5)
    assert written == counts(tmp_path / "x.db")
    assert written == {t: round(n * 2.5) for t, n in CHINOOK_ROWS.items()}
    assert written == row_counts(2.5)


def test_tiny_scale_keeps_a_row_in_every_table(tmp_path: Path) -> None:
    written = write_sample(tmp_path / "tiny.db", scale=0.001)
    assert written == row_counts(0.001)
    assert all(n >= 1 for n in written.values())
    assert written["Genre"] == written["MediaType"] == 1
    assert counts(tmp_path / "tiny.db") == written
    assert fk_problems(tmp_path / "tiny.db") == []


@pytest.mark.parametrize("scale", [0.05, 0.37, 1.6])
def test_foreign_keys_are_valid(tmp_path: Path, scale: float) -> None:
    assert write_sample(tmp_path / "s.db", scale=scale, seed=11) == row_counts(scale)
    assert fk_problems(tmp_path / "s.db") == []
    assert_consistent(tmp_path / "s.db")
    with connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_sample(tmp_path / f"{name}.db", scale=0.2, seed=seed)
    assert dump(tmp_path / "a.db") == dump(tmp_path / "b.db")
    assert dump(tmp_path / "a.db") != dump(tmp_path / "c.db")
    assert counts(tmp_path / "a.db") == counts(tmp_path / "c.db")


def test_values_are_of_chinooks_kinds(sample1: Path) -> None:
    with connect(sample1) as conn:

        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        assert {r[0] for r in conn.execute("SELECT DISTINCT typeof(UnitPrice) FROM Track")} == {
            "real"
        }
        assert {r[0] for r in conn.execute("SELECT DISTINCT UnitPrice FROM Track")} == {
            0.99,
            1.99,
        }
        for col in ("Milliseconds", "Bytes", "TrackId", "AlbumId"):
            assert one(f"SELECT count(*) FROM Track WHERE typeof({col}) != 'integer'") == 0
        assert one("SELECT count(*) FROM Invoice WHERE typeof(Total) != 'real'") == 0
        dates = [
            r[0]
            for r in conn.execute(
                "SELECT InvoiceDate FROM Invoice UNION ALL SELECT BirthDate FROM Employee"
                " UNION ALL SELECT HireDate FROM Employee"
            )
        ]
        assert dates and all(isinstance(d, str) and STAMP.match(d) for d in dates)
        # NULLs where Chinook has them, and only there.
        for table, col in (
            ("Track", "Composer"),
            ("Customer", "Company"),
            ("Customer", "State"),
            ("Customer", "Fax"),
            ("Invoice", "BillingState"),
            ("Employee", "ReportsTo"),
        ):
            assert one(f"SELECT count(*) FROM {table} WHERE {col} IS NULL") > 0, (table, col)
        assert one("SELECT count(*) FROM Track WHERE Name = '' OR Milliseconds <= 0") == 0
        assert one("SELECT count(*) FROM Customer WHERE Email NOT LIKE '%_@_%._%'") == 0
        # Names that are not plain ASCII.
        names = [
            r[0]
            for r in conn.execute("SELECT LastName FROM Customer UNION ALL SELECT Name FROM Artist")
        ]
        assert any(not n.isascii() for n in names)
        assert all(e.isascii() for (e,) in conn.execute("SELECT Email FROM Customer"))


def test_texts_fit_their_declared_lengths(sample1: Path) -> None:
    """PostgreSQL will hold NVARCHAR(n) as varchar(n): no value may be longer."""
    with connect(sample1) as conn:
        for t in tables(conn):
            for col in conn.execute(f"PRAGMA table_info([{t}])").fetchall():
                m = re.fullmatch(r"NVARCHAR\((\d+)\)", col[2])
                if m:
                    longest = conn.execute(f"SELECT max(length([{col[1]}])) FROM [{t}]").fetchone()
                    assert (longest[0] or 0) <= int(m.group(1)), (t, col[1], longest)


def assert_consistent(path: Path) -> None:
    """Totals are the sum of their lines; a line costs what its track costs; a customer's
    invoices bill to the customer's address; video tracks cost 1.99, audio 0.99."""
    with connect(path) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM Invoice i WHERE abs(i.Total - (SELECT sum(UnitPrice * "
                "Quantity) FROM InvoiceLine l WHERE l.InvoiceId = i.InvoiceId)) > 0.001"
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM InvoiceLine l JOIN Track t USING (TrackId)"
                " WHERE l.UnitPrice != t.UnitPrice"
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM Invoice i JOIN Customer c USING (CustomerId)"
                " WHERE i.BillingAddress != c.Address OR i.BillingCountry != c.Country"
            ).fetchone()[0]
            == 0
        )
        assert conn.execute(
            "SELECT count(*) FROM Track t JOIN MediaType m USING (MediaTypeId)"
            " WHERE (m.Name LIKE '%video%') != (t.UnitPrice = 1.99)"
        ).fetchone() == (0,)


def test_invoices_add_up(sample1: Path) -> None:
    assert_consistent(sample1)


# Writing the file.


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "out.db"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_sample(out, scale=0.01)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.db"]
    written = write_sample(out, scale=0.01, overwrite=True)
    assert counts(out) == written


def test_leaves_only_the_result_behind(tmp_path: Path) -> None:
    write_sample(tmp_path / "s.db", scale=0.01)
    assert [p.name for p in tmp_path.iterdir()] == ["s.db"]
    with pytest.raises(ValueError, match="scale"):
        write_sample(tmp_path / "bad.db", scale=0)
    with pytest.raises(ValueError, match="scale"):
        write_sample(tmp_path / "bad.db", scale=float("nan"))
    assert [p.name for p in tmp_path.iterdir()] == ["s.db"]


def test_updated_at_variant(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    written = write_sample(path, scale=0.2, updated_at=True)
    assert fk_problems(path) == []
    with connect(path) as conn:
        for t in written:
            last = conn.execute(f"PRAGMA table_xinfo([{t}])").fetchall()[-1]
            assert last[1:4] == ("updated_at", "DATETIME", 1)
            stamps = [r[0] for r in conn.execute(f"SELECT updated_at FROM [{t}]")]
            assert len(stamps) == written[t]
            assert all(STAMP.match(s) for s in stamps)
            assert max(stamps) < datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# Changes.


def test_apply_changes_changes_about_the_fraction_asked(sample1: Path, copy_of: Any) -> None:
    path = copy_of(sample1)
    before, rows_before = counts(path), rows_by_rowid(path)
    total = sum(before.values())
    changed = apply_changes(path, 0.03, seed=1)
    assert str(changed).startswith(f"{changed.total} rows changed: ")
    assert fk_problems(path) == []
    assert abs(changed.total - 0.03 * total) <= 0.03 * total * 0.25
    for kind in (changed.total_inserted, changed.total_updated, changed.total_deleted):
        assert abs(kind - 0.01 * total) <= 0.01 * total * 0.4
    after, rows_after = counts(path), rows_by_rowid(path)
    touched = 0
    for t in before:
        assert after[t] - before[t] == changed.inserted[t] - changed.deleted[t], t
        old, new = rows_before[t], rows_after[t]
        assert len(old.keys() - new.keys()) == changed.deleted[t]
        assert len(new.keys() - old.keys()) == changed.inserted[t]
        differing = sum(1 for k in old.keys() & new.keys() if old[k] != new[k])
        assert differing <= changed.updated[t]
        touched += differing
        assert all(k > max(old) for k in new.keys() - old.keys()), "new ids go above the max"
    assert touched >= 0.8 * changed.total_updated
    assert len({t for t, n in changed.inserted.items() if n}) >= 4


@needs_chinook
def test_apply_changes_works_on_the_real_chinook(copy_of: Any) -> None:
    path = copy_of(CHINOOK)
    before = counts(path)
    changed = apply_changes(path, 0.02, seed=4)
    assert fk_problems(path) == []
    after = counts(path)
    assert changed.total >= 0.015 * sum(before.values())
    for t in before:
        assert after[t] - before[t] == changed.inserted[t] - changed.deleted[t], t


def test_apply_changes_is_deterministic_by_seed(sample1: Path, tmp_path: Path) -> None:
    paths = []
    for name in ("a", "b", "c"):
        paths.append(tmp_path / f"{name}.db")
        shutil.copyfile(sample1, paths[-1])
    apply_changes(paths[0], 0.01, seed=9)
    apply_changes(paths[1], 0.01, seed=9)
    apply_changes(paths[2], 0.01, seed=10)
    assert dump(paths[0]) == dump(paths[1])
    assert dump(paths[0]) != dump(paths[2])


def test_apply_changes_follows_the_shares(sample1: Path, copy_of: Any) -> None:
    path = copy_of(sample1)
    before = rows_by_rowid(path)
    only_inserts = apply_changes(path, 0.01, inserts=1, updates=0, deletes=0)
    assert only_inserts.total_updated == only_inserts.total_deleted == 0
    assert only_inserts.total_inserted == round(0.01 * sum(CHINOOK_ROWS.values()))
    after = rows_by_rowid(path)
    for t, rows in before.items():  # every old row is still there as it was
        assert {k: after[t][k] for k in rows} == rows
    only_updates = apply_changes(path, 0.01, inserts=0, updates=1, deletes=0)
    assert only_updates.total_inserted == only_updates.total_deleted == 0
    assert only_updates.total_updated == round(0.01 * sum(len(r) for r in after.values()))
    assert only_updates.updated["PlaylistTrack"] == 0  # nothing in it but its key
    assert counts(path) == {t: len(rows) for t, rows in after.items()}
    nothing = apply_changes(path, 0.0)
    assert nothing.total == 0


def test_apply_changes_stamps_updated_at(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    write_sample(path, scale=0.5, updated_at=True, seed=2)
    old = rows_by_rowid(path)
    start = (datetime.now(timezone.utc) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    changed = apply_changes(path, 0.05, seed=2)
    assert changed.total_updated and changed.total_inserted
    new = rows_by_rowid(path)
    for t, rows in new.items():
        for rowid, row in rows.items():
            if rowid not in old[t] or old[t][rowid] != row:
                assert row[-1] >= start, (t, rowid, row)  # inserted or updated: stamped now
            else:
                assert row[-1] < start, (t, rowid, row)


def test_apply_changes_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        apply_changes(tmp_path / "missing.db", 0.1)
    assert not (tmp_path / "missing.db").exists()
    write_sample(tmp_path / "s.db", scale=0.01)
    with pytest.raises(ValueError, match="fraction"):
        apply_changes(tmp_path / "s.db", 1.5)
    with pytest.raises(ValueError, match="shares"):
        apply_changes(tmp_path / "s.db", 0.1, inserts=0, updates=0, deletes=0)
