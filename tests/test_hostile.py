"""Hostile SQLite files: every odd thing a real application's database holds, migrated for real
and checked in PostgreSQL's catalog, in the values, in the run report and in the rejects."""

from __future__ import annotations

import math
import re
import sqlite3
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerr

import sqlite2pg.api as api
from conftest import make_db
from sqlite2pg.config import Config, parse_config
from sqlite2pg.errors import EXIT_INPUT, PlanError
from sqlite2pg.model import Rejection
from sqlite2pg.pipeline import RunReport

# --------------------------------------------------------------------------- helpers


def migrate(
    tmp_path: Path,
    pg_url: str,
    script: str,
    rows: dict[str, list[tuple[object, ...]]] | None = None,
    *,
    config: Config | None = None,
) -> tuple[RunReport, str]:
    db = make_db(tmp_path / "src.db", script, rows)
    state = str(tmp_path / "state.db")
    report = api.sync(db, pg_url, state=state, verify="off", config=config)
    return report, state


def fetch(pg_url: str, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def one(pg_url: str, query: str, params: tuple[object, ...] = ()) -> Any:
    rows = fetch(pg_url, query, params)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


def columns(pg_url: str, table: str, schema: str = "public") -> dict[str, dict[str, Any]]:
    """Column -> type, not null, default expression, identity, generated, collation."""
    rows = fetch(
        pg_url,
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, co.collname "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.collname <> 'default' "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (schema, table),
    )
    assert rows, f"table {table!r} not found in PostgreSQL"
    return {
        r[0]: {
            "type": r[1],
            "notnull": r[2],
            "default": r[3],
            "identity": r[4],
            "generated": r[5],
            "collation": r[6],
        }
        for r in rows
    }


def types_of(pg_url: str, table: str) -> dict[str, str]:
    return {k: v["type"] for k, v in columns(pg_url, table).items()}


def user_tables(pg_url: str) -> set[str]:
    return {
        r[0]
        for r in fetch(
            pg_url,
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'sqlite2pg')",
        )
    }


def constraints(pg_url: str, table: str) -> list[tuple[str, str, bool, bool, str]]:
    """(name, contype, validated, deferrable, definition) of a table's constraints."""
    return [
        tuple(r)  # type: ignore[misc]
        for r in fetch(
            pg_url,
            "SELECT conname, contype::text, convalidated, condeferrable, "
            "pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = %s) "
            "ORDER BY conname",
            (table,),
        )
    ]


def rejects_of(state: str, table: str | None = None) -> list[Rejection]:
    _, items = api.rejects(state=state, table=table, limit=None)
    return items


def insert_default_row(pg_url: str, table: str) -> tuple[Any, ...]:
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        row = conn.execute(f'INSERT INTO "{table}" DEFAULT VALUES RETURNING *').fetchone()
        assert row is not None
        return tuple(row)


def server_has_icu(pg_url: str) -> bool:
    with psycopg.connect(pg_url) as conn:
        try:
            conn.execute("CREATE COLLATION probe_icu (provider = icu, locale = 'und')")
        except psycopg.errors.FeatureNotSupported:
            return False
        finally:
            conn.rollback()
    return True


def sqlite_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# --------------------------------------------------------------------------- declared types

TYPES_SCRIPT = """
CREATE TABLE types (
  id INTEGER PRIMARY KEY,
  c_integer INTEGER, c_int INT, c_bigint BIGINT, c_int8 INT8, c_mediumint MEDIUMINT,
  c_unsigned UNSIGNED BIG INT, c_int11 INTEGER(11),
  c_tinyint TINYINT, c_smallint SMALLINT, c_smallint_big SMALLINT, c_tinyint_big TINYINT,
  c_varchar VARCHAR(10), c_varchar_long VARCHAR(3), c_nvarchar NVARCHAR(20),
  c_character CHARACTER(5), c_varying VARYING CHARACTER(255), c_native NATIVE CHARACTER(70),
  c_text TEXT, c_clob CLOB,
  c_numeric NUMERIC(10,2), c_decimal DECIMAL(5,1), c_decimal_wide DECIMAL(4,2),
  c_real REAL, c_double DOUBLE, c_double_precision DOUBLE PRECISION, c_float FLOAT,
  c_blob BLOB, c_boolean BOOLEAN, c_bool BOOL,
  c_datetime DATETIME, c_timestamp TIMESTAMP, c_date DATE, c_json JSON,
  c_none, c_none_real, c_none_text, c_none_mixed, c_none_blob, c_none_empty,
  c_number number, c_text100 text(100), c_string STRING, c_money money, c_uuid uuid,
  c_bytes "byte[]", c_datetime2 DATETIME2, c_weird "my type"
);
"""

TYPES_ROW = (
    1, 1, 2, 3, 4, 5, 6, 7,
    100, 200, 70000, 1000,
    "abc", "abcdef", "ñandú", "five5", "varying", "native",
    "text", "clob",
    12.34, 1.5, 123.456,
    1.25, 2.5, 3.75, 4.5,
    b"\x00\x01\xff", 1, 0,
    "2020-01-02 03:04:05", "2021-02-03 04:05:06", "2022-03-04", '{"a": [1, 2]}',
    42, 1.5, "words", "mixed", b"\x01", None,
    3.14, "hello", "s", 9.99, "12345678-1234-1234-1234-123456789abc",
    b"\x02", "2020-01-02 03:04:05", "anything",
)  # fmt: skip

TYPES_ROW_2 = (
    2, None, None, None, None, None, None, None,
    -5, None, -70000, None,
    None, "x", None, None, None, None,
    None, None,
    None, None, None,
    None, None, None, None,
    None, None, None,
    None, None, None, None,
    7, 2, "more", 5, b"\x02", None,
    None, None, None, None, None,
    None, None, 12,
)  # fmt: skip


def test_every_declared_type_name_maps_to_a_valid_postgresql_type(
    tmp_path: Path, pg_url: str
) -> None:
    report, _ = migrate(tmp_path, pg_url, TYPES_SCRIPT, {"types": [TYPES_ROW, TYPES_ROW_2]})
    assert report.status == "ok", (report.error, report.warnings)
    assert report.tables["types"].written == 2
    got = types_of(pg_url, "types")
    expected = {
        "id": "bigint",
        "c_integer": "bigint",
        "c_int": "bigint",
        "c_bigint": "bigint",
        "c_int8": "bigint",
        "c_mediumint": "bigint",
        "c_unsigned": "bigint",
        "c_int11": "bigint",
        "c_tinyint": "smallint",
        "c_smallint": "smallint",
        "c_smallint_big": "bigint",  # 70000 does not fit smallint
        "c_tinyint_big": "smallint",
        "c_varchar": "character varying(10)",
        "c_varchar_long": "text",  # SQLite ignored the length: 'abcdef' in VARCHAR(3)
        "c_nvarchar": "character varying(20)",
        "c_character": "character varying(5)",
        "c_varying": "character varying(255)",
        "c_native": "character varying(70)",
        "c_text": "text",
        "c_clob": "text",
        "c_numeric": "numeric(10,2)",
        "c_decimal": "numeric(5,1)",
        "c_decimal_wide": "numeric",  # 123.456 does not fit numeric(4,2): nothing rounded
        "c_real": "double precision",
        "c_double": "double precision",
        "c_double_precision": "double precision",
        "c_float": "double precision",
        "c_blob": "bytea",
        "c_boolean": "boolean",
        "c_bool": "boolean",
        "c_datetime": "timestamp without time zone",
        "c_timestamp": "timestamp without time zone",
        "c_date": "date",
        "c_json": "jsonb",
        "c_none": "bigint",
        "c_none_real": "double precision",
        "c_none_text": "text",
        "c_none_mixed": "text",
        "c_none_blob": "bytea",
        "c_none_empty": "text",
        "c_number": "numeric",
        "c_text100": "character varying(100)",
        "c_string": "text",
        "c_money": "numeric(19,4)",
        "c_uuid": "uuid",
        "c_bytes": "bytea",
        "c_datetime2": "text",
        "c_weird": "text",
    }
    assert got == expected
    rows = fetch(pg_url, "SELECT * FROM types ORDER BY id")
    first = dict(zip(got, rows[0], strict=True))
    assert first["c_smallint_big"] == 70000
    assert first["c_nvarchar"] == "ñandú"
    assert first["c_numeric"] == Decimal("12.34")
    assert first["c_decimal_wide"] == Decimal("123.456")
    assert first["c_blob"] == b"\x00\x01\xff"
    assert first["c_boolean"] is True and first["c_bool"] is False
    assert first["c_datetime"] == datetime(2020, 1, 2, 3, 4, 5)
    assert first["c_date"] == date(2022, 3, 4)
    assert first["c_json"] == {"a": [1, 2]}
    assert first["c_money"] == Decimal("9.99")
    assert str(first["c_uuid"]) == "12345678-1234-1234-1234-123456789abc"
    assert first["c_number"] == Decimal("3.14")
    second = dict(zip(got, rows[1], strict=True))
    assert second["c_none_mixed"] == "5"  # an integer stored among text: as its text
    assert second["c_weird"] == "12"
    assert second["c_smallint_big"] == -70000


def test_plan_ddl_never_names_a_type_postgresql_rejects(tmp_path: Path, pg_url: str) -> None:
    db = make_db(tmp_path / "src.db", TYPES_SCRIPT, {"types": [TYPES_ROW]})
    plan = api.plan(db)
    from sqlite2pg.schema import plan_ddl

    ddl = plan_ddl(plan)
    declared = dict(re.findall(r'^\s+"(c_\w+)" (.+?)(?: NOT NULL)?,?$', ddl, re.MULTILINE))
    assert declared["c_bytes"] == "bytea" and declared["c_money"] == "numeric(19,4)"
    assert declared["c_uuid"] == "uuid" and declared["c_string"] == "text"
    assert declared["c_datetime2"] == "text" and declared["c_weird"] == "text"
    # the plan's DDL runs as is on an empty database
    with psycopg.connect(pg_url) as conn:
        conn.execute(ddl)  # type: ignore[arg-type]


def test_varchar_as_text_switch(tmp_path: Path, pg_url: str) -> None:
    cfg = parse_config("types:\n  varchar_as_text: true\n")
    migrate(
        tmp_path,
        pg_url,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10), n NVARCHAR(3));",
        {"t": [(1, "a", "b")]},
        config=cfg,
    )
    assert types_of(pg_url, "t") == {"id": "bigint", "v": "text", "n": "text"}


def test_timestamptz_switch_keeps_the_instant(tmp_path: Path, pg_url: str) -> None:
    cfg = parse_config("types:\n  timestamptz: true\n")
    migrate(
        tmp_path,
        pg_url,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME);",
        {"t": [(1, "2020-01-02 03:04:05"), (2, "2020-01-02T03:04:05+02:00")]},
        config=cfg,
    )
    assert types_of(pg_url, "t")["at"] == "timestamp with time zone"
    got = [r[0] for r in fetch(pg_url, "SELECT at FROM t ORDER BY id")]
    assert got == [
        datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        datetime(2020, 1, 2, 1, 4, 5, tzinfo=timezone.utc),
    ]


# --------------------------------------------------------------------------- NOT NULL, defaults


def test_not_null_and_defaults_are_kept_as_postgresql_expressions(
    tmp_path: Path, pg_url: str
) -> None:
    script = """
    CREATE TABLE d (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL DEFAULT 'it''s',
      created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
      created_fn DATETIME DEFAULT (datetime('now')),
      day DATE DEFAULT CURRENT_DATE,
      day_fn DATE DEFAULT (date('now')),
      stamp_text TEXT DEFAULT CURRENT_TIMESTAMP,
      epoch INTEGER DEFAULT (strftime('%s','now')),
      iso_text TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%S', 'now')),
      qty INTEGER NOT NULL DEFAULT 0,
      neg INTEGER DEFAULT -1,
      ratio REAL DEFAULT 0.5,
      ceiling REAL DEFAULT 9e999,
      floor_ REAL DEFAULT -9e999,
      hexed INTEGER DEFAULT 0x10,
      flag_int BOOLEAN NOT NULL DEFAULT 0,
      flag_one BOOLEAN DEFAULT 1,
      flag_text BOOLEAN DEFAULT 'true',
      flag_word BOOLEAN DEFAULT FALSE,
      flag_bad BOOLEAN DEFAULT 2,
      no_default TEXT DEFAULT NULL,
      price NUMERIC(10,2) DEFAULT 9.99
    );
    """
    report, _ = migrate(tmp_path, pg_url, script, {})
    assert report.status == "ok", report.error
    cols = columns(pg_url, "d")
    assert cols["name"]["notnull"] and cols["created"]["notnull"] and cols["qty"]["notnull"]
    assert cols["flag_int"]["notnull"]
    assert not cols["created_fn"]["notnull"]
    for name in ("created", "created_fn", "day", "day_fn", "stamp_text", "epoch", "iso_text"):
        default = cols[name]["default"]
        assert default is not None, name
        assert not default.startswith("'"), f"{name}: time function turned into a literal {default}"
    # the 2 on a boolean column cannot be a boolean: reported, not guessed
    assert cols["flag_bad"]["default"] is None
    assert any("flag_bad" in w and "DEFAULT" in w for w in report.warnings)
    before = utcnow()
    row = dict(zip(cols, insert_default_row(pg_url, "d"), strict=True))
    after = utcnow()
    assert row["name"] == "it's"
    slack = timedelta(seconds=2)
    assert before - slack <= row["created"] <= after + slack
    assert before - slack <= row["created_fn"] <= after + slack
    assert row["day"] in (before.date(), after.date())
    assert row["day_fn"] in (before.date(), after.date())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["stamp_text"])
    assert isinstance(row["epoch"], int)
    epoch_before = before.replace(tzinfo=timezone.utc).timestamp()
    epoch_after = after.replace(tzinfo=timezone.utc).timestamp()
    assert epoch_before - 2 <= row["epoch"] <= epoch_after + 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["iso_text"]), row["iso_text"]
    assert (
        datetime.strptime(row["iso_text"], "%Y-%m-%dT%H:%M:%S")
        >= before.replace(microsecond=0) - slack
    )
    assert row["qty"] == 0 and row["neg"] == -1 and row["ratio"] == 0.5 and row["hexed"] == 16
    assert row["ceiling"] == math.inf and row["floor_"] == -math.inf
    assert row["flag_int"] is False and row["flag_one"] is True
    assert row["flag_text"] is True and row["flag_word"] is False
    assert row["flag_bad"] is None and row["no_default"] is None
    assert row["price"] == Decimal("9.99")


def test_epoch_default_is_an_integer_of_the_current_second(tmp_path: Path, pg_url: str) -> None:
    migrate(
        tmp_path,
        pg_url,
        "CREATE TABLE e (id INTEGER PRIMARY KEY, at INTEGER DEFAULT (strftime('%s','now')));",
    )
    assert types_of(pg_url, "e")["at"] == "bigint"
    now = datetime.now(timezone.utc).timestamp()
    _, at = insert_default_row(pg_url, "e")
    assert abs(at - now) < 5


# --------------------------------------------------------------------------- CHECK, generated


def test_check_constraints_translated_or_reported(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE c (
      id INTEGER PRIMARY KEY,
      price REAL CHECK (price > 0),
      status TEXT CHECK (status IN ('new', 'done')),
      code TEXT CHECK (code GLOB '[A-Z]*'),
      lo INTEGER, hi INTEGER,
      name TEXT CHECK (name IS NOT NULL AND length(name) >= 1),
      CONSTRAINT range_ok CHECK (lo <= hi)
    );
    """
    report, _ = migrate(tmp_path, pg_url, script, {"c": [(1, 2.5, "new", "ABC", 1, 2, "x")]})
    assert report.status == "ok"
    checks = [c for c in constraints(pg_url, "c") if c[1] == "c"]
    assert len(checks) == 4, checks
    assert all(c[2] for c in checks)  # validated
    assert any("GLOB" in w for w in report.warnings)
    bad_rows = [
        "INSERT INTO c (price) VALUES (-1)",
        "INSERT INTO c (status) VALUES ('other')",
        "INSERT INTO c (lo, hi) VALUES (5, 1)",
        "INSERT INTO c (name) VALUES ('')",
    ]
    for stmt in bad_rows:
        with psycopg.connect(pg_url) as conn, pytest.raises(pgerr.CheckViolation):
            conn.execute(stmt)  # type: ignore[arg-type]
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO c (price, status, lo, hi, name) VALUES (1, 'done', 1, 1, 'y')")


def test_generated_columns(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE g (
      id INTEGER PRIMARY KEY,
      qty INTEGER, price REAL, code TEXT,
      total REAL GENERATED ALWAYS AS (qty * price) STORED,
      next_qty INTEGER AS (qty + 1) VIRTUAL,
      is_a INTEGER AS (code GLOB 'A*') VIRTUAL
    );
    """
    report, _ = migrate(tmp_path, pg_url, script, {"g": [(1, 2, 1.5, "Abc"), (2, 3, 2.0, "xyz")]})
    assert report.status == "ok"
    cols = columns(pg_url, "g")
    assert cols["total"]["generated"] == "s"
    assert cols["next_qty"]["generated"] == "s"
    assert cols["is_a"]["generated"] == ""  # GLOB does not translate: plain column with values
    assert any("is_a" in w for w in report.warnings)
    rows = fetch(pg_url, "SELECT id, total, next_qty, is_a FROM g ORDER BY id")
    assert rows == [(1, 3.0, 3, 1), (2, 6.0, 4, 0)]
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE g SET qty = 10 WHERE id = 1")
        assert conn.execute("SELECT total, next_qty FROM g WHERE id = 1").fetchone() == (15.0, 11)


# --------------------------------------------------------------------------- keys and indexes


def test_composite_keys_unique_partial_and_expression_indexes(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE k (
      a INTEGER NOT NULL, b TEXT NOT NULL, email TEXT UNIQUE, x INTEGER, y INTEGER,
      name TEXT, deleted INTEGER DEFAULT 0,
      PRIMARY KEY (a, b),
      UNIQUE (x, y)
    );
    CREATE INDEX k_live ON k (name) WHERE deleted = 0;
    CREATE INDEX k_lower ON k (lower(name));
    CREATE UNIQUE INDEX k_name_desc ON k (name DESC, a);
    CREATE INDEX k_glob ON k (name) WHERE name GLOB 'a*';
    """
    rows = [(1, "a", "p@x", 1, 1, "Ann", 0), (1, "b", "q@x", 1, 2, "Bob", 1)]
    report, _ = migrate(tmp_path, pg_url, script, {"k": rows})
    assert report.status == "ok"
    cons = {c[1]: [] for c in constraints(pg_url, "k")}  # type: ignore[var-annotated]
    for c in constraints(pg_url, "k"):
        cons[c[1]].append(c[4])
    assert cons["p"] == ["PRIMARY KEY (a, b)"]
    assert sorted(cons["u"]) == ["UNIQUE (email)", "UNIQUE (x, y)"]
    indexes = dict(
        fetch(pg_url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'k'")
    )
    assert "WHERE (deleted = 0)" in indexes["k_live"]
    assert "lower(name)" in indexes["k_lower"]
    assert "UNIQUE" in indexes["k_name_desc"] and "name DESC" in indexes["k_name_desc"]
    assert "k_glob" not in indexes
    assert any("k_glob" in w for w in report.warnings)
    with psycopg.connect(pg_url) as conn, pytest.raises(pgerr.UniqueViolation):
        conn.execute("INSERT INTO k (a, b, email) VALUES (2, 'z', 'p@x')")


def test_collate_nocase_is_case_insensitive(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE UNIQUE, tag TEXT);
    CREATE INDEX u_tag ON u (tag COLLATE NOCASE);
    """
    report, _ = migrate(tmp_path, pg_url, script, {"u": [(1, "abc", "Red"), (2, "Def", "x")]})
    assert report.status == "ok"
    if not server_has_icu(pg_url):
        # e.g. the embedded server, built without ICU: said, never silently dropped
        assert any("NOCASE" in w for w in report.warnings)
        assert fetch(pg_url, "SELECT id FROM u WHERE name = 'abc'") == [(1,)]
        return
    assert not any("NOCASE" in w for w in report.warnings)
    assert fetch(pg_url, "SELECT id FROM u WHERE name = 'ABC'") == [(1,)]
    assert fetch(pg_url, "SELECT id FROM u WHERE name = 'def'") == [(2,)]
    assert columns(pg_url, "u")["name"]["collation"] is not None
    with psycopg.connect(pg_url) as conn, pytest.raises(pgerr.UniqueViolation):
        conn.execute("INSERT INTO u (name) VALUES ('ABC')")
    indexes = dict(
        fetch(pg_url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'u'")
    )
    assert "COLLATE" in indexes["u_tag"]


def test_nocase_columns_stay_writable_under_translated_checks_and_indexes(
    tmp_path: Path, pg_url: str
) -> None:
    # PostgreSQL refuses LIKE and substring searches under a nondeterministic collation, and
    # only says so when a row is written: an empty table would take the index and the check,
    # and then refuse every INSERT.
    script = """
    CREATE TABLE nc (
      id INTEGER PRIMARY KEY,
      name TEXT COLLATE NOCASE CHECK (name NOT LIKE '% %' AND instr(name, '@') = 0),
      tag TEXT COLLATE NOCASE
    );
    CREATE INDEX nc_a ON nc (name) WHERE name LIKE 'a%';
    CREATE INDEX nc_tag ON nc (replace(tag, '-', ''));
    """
    report, _ = migrate(tmp_path, pg_url, script)
    assert report.status == "ok"
    assert len([c for c in constraints(pg_url, "nc") if c[1] == "c"]) == 1
    indexes = {
        r[0] for r in fetch(pg_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'nc'")
    }
    assert indexes == {"nc_pkey", "nc_a", "nc_tag"}
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO nc (name, tag) VALUES ('Abc', 'x-y'), ('b', NULL)")
        conn.commit()
        with pytest.raises(pgerr.CheckViolation):
            conn.execute("INSERT INTO nc (name) VALUES ('a b')")
    assert fetch(pg_url, "SELECT count(*) FROM nc") == [(2,)]


def test_nocase_primary_key_with_values_only_icu_folds_never_fails_the_run(
    tmp_path: Path, pg_url: str
) -> None:
    # SQLite's NOCASE folds ASCII only: 'é' and 'É' are two keys there, one key for ICU.
    report, _ = migrate(
        tmp_path,
        pg_url,
        "CREATE TABLE n (code TEXT COLLATE NOCASE PRIMARY KEY, v INTEGER);",
        {"n": [("é", 1), ("É", 2), ("a", 3)]},
    )
    assert report.status == "ok"
    assert one(pg_url, "SELECT count(*) FROM n") == 3  # every row kept
    pk_warnings = [w for w in report.warnings if w.startswith("n: primary key (code) not created")]
    if server_has_icu(pg_url):
        assert len(pk_warnings) == 1 and "duplicate" in pk_warnings[0]
        assert [c for c in constraints(pg_url, "n") if c[1] == "p"] == []
    else:
        assert pk_warnings == []
        assert [c[4] for c in constraints(pg_url, "n") if c[1] == "p"] == ["PRIMARY KEY (code)"]


# --------------------------------------------------------------------------- foreign keys

FK_SCRIPT = """
PRAGMA foreign_keys = OFF;
CREATE TABLE employee (
  id INTEGER PRIMARY KEY, name TEXT,
  manager_id INTEGER REFERENCES employee (id) ON DELETE SET NULL
);
CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b (id) ON DELETE SET NULL);
CREATE TABLE b (
  id INTEGER PRIMARY KEY,
  a_id INTEGER REFERENCES a (id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE parent (p1 INTEGER, p2 TEXT, PRIMARY KEY (p1, p2));
CREATE TABLE child (
  id INTEGER PRIMARY KEY, p1 INTEGER, p2 TEXT,
  FOREIGN KEY (p1, p2) REFERENCES parent ON DELETE RESTRICT
);
"""


def test_foreign_keys_self_cyclic_composite_with_actions_deferrable(
    tmp_path: Path, pg_url: str
) -> None:
    rows = {
        "employee": [(1, "boss", None), (2, "worker", 1)],
        "a": [(1, None), (2, 1)],
        "b": [(1, 1), (2, 2)],
        "parent": [(1, "x")],
        "child": [(1, 1, "x"), (2, None, None)],
    }
    report, _ = migrate(tmp_path, pg_url, FK_SCRIPT, rows)
    assert report.status == "ok", report.warnings
    fks = {
        r[0]: r[1:]
        for r in fetch(
            pg_url,
            "SELECT conrelid::regclass::text, confrelid::regclass::text, confdeltype, "
            "confupdtype, condeferrable, convalidated FROM pg_constraint WHERE contype = 'f'",
        )
    }
    assert fks == {
        "employee": ("employee", "n", "a", True, True),
        "a": ("b", "n", "a", True, True),
        "b": ("a", "c", "c", True, True),
        "child": ("parent", "r", "a", True, True),
    }
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM employee WHERE id = 1")
        assert conn.execute("SELECT manager_id FROM employee WHERE id = 2").fetchone() == (None,)
        conn.execute("DELETE FROM a WHERE id = 1")  # cascades to b.a_id = 1, which sets a.b_id
        assert conn.execute("SELECT id FROM b ORDER BY id").fetchall() == [(2,)]
        with pytest.raises(pgerr.ForeignKeyViolation):
            conn.execute("INSERT INTO child (p1, p2) VALUES (9, 'nope')")


def test_orphan_rows_are_kept_and_the_key_is_not_valid(tmp_path: Path, pg_url: str) -> None:
    rows = {
        "employee": [(1, "boss", None), (2, "orphan", 99), (3, "orphan2", 98)],
        "a": [(1, None)],
        "b": [(1, 1), (2, 7)],
        "parent": [(1, "x")],
        "child": [(1, 1, "x"), (2, 1, "y")],
    }
    report, _ = migrate(tmp_path, pg_url, FK_SCRIPT, rows)
    assert report.status == "ok"
    assert one(pg_url, "SELECT count(*) FROM employee") == 3
    assert one(pg_url, "SELECT count(*) FROM b") == 2
    assert report.tables["employee"].orphans == {"manager_id -> employee": 2}
    assert sorted(report.tables["employee"].orphan_samples["manager_id -> employee"]) == [2, 3]
    assert report.tables["b"].orphans == {"a_id -> a": 1}
    assert report.tables["child"].orphans == {"p1,p2 -> parent": 1}
    assert report.tables["a"].orphans == {}
    not_valid = {
        r[0]
        for r in fetch(
            pg_url,
            "SELECT conrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND NOT convalidated AND condeferrable",
        )
    }
    assert not_valid == {"employee", "b", "child"}
    assert sum("NOT VALID" in w for w in report.warnings) == 3


def test_foreign_key_names_written_in_another_case(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE Artist (ArtistId INTEGER PRIMARY KEY, Name TEXT);
    CREATE TABLE Album (
      AlbumId INTEGER PRIMARY KEY,
      artistid INTEGER REFERENCES ARTIST (ARTISTID)
    );
    """
    report, _ = migrate(tmp_path, pg_url, script, {"Artist": [(1, "a")], "Album": [(1, 1)]})
    assert report.status == "ok", report.warnings
    fks = fetch(
        pg_url,
        "SELECT conrelid::regclass::text, confrelid::regclass::text, convalidated "
        "FROM pg_constraint WHERE contype = 'f'",
    )
    assert fks == [("album", "artist", True)]


# --------------------------------------------------------------------------- identities


def test_identity_continues_after_max_and_sqlite_sequence(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
    CREATE TABLE plain (id INTEGER PRIMARY KEY, v TEXT);
    CREATE TABLE empty_auto (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
    CREATE TABLE seq_below (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
    INSERT INTO auto (id, v) VALUES (1, 'a'), (2, 'b'), (10, 'c');
    DELETE FROM auto WHERE id = 10;
    INSERT INTO plain (id, v) VALUES (3, 'a'), (5, 'b');
    INSERT INTO empty_auto (id, v) VALUES (100, 'gone');
    DELETE FROM empty_auto;
    INSERT INTO seq_below (id, v) VALUES (4, 'x');
    UPDATE sqlite_sequence SET seq = 2 WHERE name = 'seq_below';
    """
    report, _ = migrate(tmp_path, pg_url, script)
    assert report.status == "ok"
    assert one(pg_url, "SELECT count(*) FROM empty_auto") == 0
    for table, expected in (("auto", 11), ("plain", 6), ("empty_auto", 101), ("seq_below", 5)):
        assert columns(pg_url, table)["id"]["identity"] in ("d", "a"), table
        with psycopg.connect(pg_url) as conn:
            got = conn.execute(f"INSERT INTO {table} (v) VALUES ('new') RETURNING id").fetchone()
        assert got == (expected,), table


# --------------------------------------------------------------------------- names


def test_snake_case_and_preserve_naming(tmp_path: Path, pg_url: str, pg_admin: str) -> None:
    script = """
    CREATE TABLE InvoiceLine (InvoiceLineId INTEGER PRIMARY KEY, UnitPrice REAL,
                              "HTTPStatus" INTEGER, "Ship Date" TEXT);
    """
    rows = {"InvoiceLine": [(1, 1.5, 200, "x")]}
    migrate(tmp_path, pg_url, script, rows)
    assert user_tables(pg_url) >= {"public.invoice_line"}
    assert list(types_of(pg_url, "invoice_line")) == [
        "invoice_line_id",
        "unit_price",
        "http_status",
        "ship_date",
    ]
    cfg = parse_config("naming: preserve\nschema: kept\n")
    db = tmp_path / "src.db"
    report = api.sync(db, pg_url, state=str(tmp_path / "s2.db"), verify="off", config=cfg)
    assert report.status == "ok"
    assert list(columns(pg_url, "InvoiceLine", "kept")) == [
        "InvoiceLineId",
        "UnitPrice",
        "HTTPStatus",
        "Ship Date",
    ]
    assert fetch(pg_url, 'SELECT "UnitPrice" FROM kept."InvoiceLine"') == [(1.5,)]


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("CREATE TABLE FooBar (id INTEGER); CREATE TABLE foo_bar (id INTEGER);", "foo_bar"),
        ('CREATE TABLE t ("UserId" INTEGER, user_id INTEGER);', "user_id"),
        (f"CREATE TABLE {'t' * 64} (id INTEGER);", "63 bytes"),
        (f'CREATE TABLE t ("{"é" * 32}" INTEGER);', "63 bytes"),
    ],
)
def test_colliding_or_too_long_names_fail_before_writing(
    tmp_path: Path, pg_url: str, script: str, fragment: str
) -> None:
    db = make_db(tmp_path / "src.db", script + "\nCREATE TABLE ok_table (id INTEGER);")
    with pytest.raises(PlanError) as info:
        api.sync(db, pg_url, state=str(tmp_path / "state.db"), verify="off")
    assert info.value.exit_code == EXIT_INPUT == 2
    assert fragment in info.value.message
    assert info.value.hint and "rename" in info.value.hint
    assert user_tables(pg_url) == set()
    assert fetch(pg_url, "SELECT nspname FROM pg_namespace WHERE nspname = 'sqlite2pg'") == []


def test_hostile_identifiers_arrive_with_their_exact_names(tmp_path: Path, pg_url: str) -> None:
    evil = 'x"; DROP TABLE victim; --'
    col = "my \"odd\" col 'name'"
    q_evil, q_col = sqlite_ident(evil), sqlite_ident(col)
    script = f"""
    CREATE TABLE victim (id INTEGER PRIMARY KEY);
    CREATE TABLE {q_evil} ({q_col} TEXT, "select" INTEGER, "has space" TEXT DEFAULT 'a''b');
    CREATE INDEX {sqlite_ident('idx "quoted"')} ON {q_evil} ({q_col});
    INSERT INTO victim VALUES (1);
    INSERT INTO {q_evil} VALUES ('v1', 1, 's'), ('v2', 2, NULL);
    """
    cfg = parse_config("naming: preserve\n")
    report, _ = migrate(tmp_path, pg_url, script, config=cfg)
    assert report.status == "ok", report.warnings
    assert user_tables(pg_url) == {"public.victim", f"public.{evil}"}
    assert list(columns(pg_url, evil)) == [col, "select", "has space"]
    assert fetch(pg_url, "SELECT id FROM victim") == [(1,)]
    with psycopg.connect(pg_url) as conn:
        from psycopg import sql

        q = sql.SQL("SELECT {}, {} FROM {} ORDER BY 2").format(
            sql.Identifier(col), sql.Identifier("select"), sql.Identifier(evil)
        )
        assert conn.execute(q).fetchall() == [("v1", 1), ("v2", 2)]
    assert one(pg_url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx \"quoted\"'") == 1


def test_hostile_identifiers_with_default_naming(tmp_path: Path, pg_url: str) -> None:
    evil = 'x"; DROP TABLE victim; --'
    script = f"""
    CREATE TABLE victim (id INTEGER PRIMARY KEY);
    CREATE TABLE {sqlite_ident(evil)} (id INTEGER PRIMARY KEY, v_id INTEGER REFERENCES victim(id));
    INSERT INTO victim VALUES (1);
    INSERT INTO {sqlite_ident(evil)} VALUES (1, 1);
    """
    report, _ = migrate(tmp_path, pg_url, script)
    assert report.status == "ok"
    assert f"public.{evil}" in user_tables(pg_url)
    assert "public.victim" in user_tables(pg_url)


def test_generated_constraint_names_never_collide_with_tables(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE);
    CREATE TABLE t_pkey (id INTEGER PRIMARY KEY);
    CREATE TABLE t_email_key (id INTEGER PRIMARY KEY);
    CREATE TABLE x (id INTEGER PRIMARY KEY, v TEXT);
    CREATE INDEX x_pkey_idx ON x (v);
    CREATE INDEX "t_pkey_idx" ON t (email);
    """
    report, _ = migrate(tmp_path, pg_url, script, {"t": [(1, "a")], "t_pkey": [(1,)]})
    assert report.status == "ok", report.error
    assert {c[1] for c in constraints(pg_url, "t")} == {"p", "u"}
    assert {c[1] for c in constraints(pg_url, "t_pkey")} == {"p"}
    assert {c[1] for c in constraints(pg_url, "t_email_key")} == {"p"}


# --------------------------------------------------------------------------- table kinds


def test_without_rowid_tables(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
    CREATE TABLE pair (a INTEGER, b INTEGER, c TEXT, PRIMARY KEY (b, a)) WITHOUT ROWID;
    CREATE TABLE idk (id INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;
    """
    rows = {
        "kv": [("k1", b"\x00"), ("k2", b"\xff")],
        "pair": [(1, 2, "x"), (2, 1, "y")],
        "idk": [(5, "five")],
    }
    report, _ = migrate(tmp_path, pg_url, script, rows)
    assert report.status == "ok"
    assert fetch(pg_url, "SELECT k, v FROM kv ORDER BY k") == [("k1", b"\x00"), ("k2", b"\xff")]
    assert [c[4] for c in constraints(pg_url, "pair") if c[1] == "p"] == ["PRIMARY KEY (b, a)"]
    assert columns(pg_url, "idk")["id"]["identity"] == ""  # not a rowid alias
    assert fetch(pg_url, "SELECT * FROM idk") == [(5, "five")]


def test_views_triggers_and_virtual_tables(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE Item (Id INTEGER PRIMARY KEY, Name TEXT, Price REAL);
    CREATE TABLE docs_archive (id INTEGER PRIMARY KEY, body TEXT);
    CREATE VIEW CheapItems AS SELECT Id, Name FROM Item WHERE Price < 10;
    CREATE VIEW GlobItems AS SELECT Id FROM Item WHERE Name GLOB 'A*';
    CREATE VIEW Rounded AS SELECT Id, CAST(Price AS INTEGER) AS Whole FROM Item;
    CREATE TRIGGER item_touch AFTER UPDATE ON Item BEGIN SELECT 1; END;
    CREATE VIRTUAL TABLE docs USING fts5(body);
    INSERT INTO docs (body) VALUES ('hello world');
    """
    rows = {"Item": [(1, "Apple", 5.0), (2, "Melon", 20.0)], "docs_archive": [(1, "kept")]}
    report, _ = migrate(tmp_path, pg_url, script, rows)
    assert report.status == "ok"
    tables = user_tables(pg_url)
    assert "public.item" in tables and "public.docs_archive" in tables
    assert not any(t.startswith("public.docs") and t != "public.docs_archive" for t in tables)
    assert fetch(pg_url, "SELECT id, name FROM cheap_items") == [(1, "Apple")]
    assert fetch(pg_url, "SELECT id, whole FROM rounded ORDER BY id") == [(1, 5), (2, 20)]
    assert types_of(pg_url, "rounded")["whole"] == "bigint"
    assert fetch(pg_url, "SELECT docs_archive.body FROM docs_archive") == [("kept",)]
    assert any("GlobItems" in w for w in report.warnings)
    assert "public.glob_items" not in tables
    skipped = {(s["kind"], s["name"]) for s in report.skipped}
    assert ("trigger", "item_touch") in skipped
    assert ("virtual table", "docs") in skipped
    assert all(s["reason"] for s in report.skipped)


# --------------------------------------------------------------------------- values


def test_nul_bytes_in_text_are_rejected_by_default(tmp_path: Path, pg_url: str) -> None:
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, tag VARCHAR(4));"
    rows = {"t": [(1, "fine", "a"), (2, "nul\x00inside", "b"), (3, "ok", "c\x00")]}
    report, state = migrate(tmp_path, pg_url, script, rows)
    assert report.status == "rejected" and report.exit_code == 1
    res = report.tables["t"]
    assert (res.read, res.written, res.rejected) == (3, 1, 2)
    assert fetch(pg_url, "SELECT id, body FROM t") == [(1, "fine")]
    rej = {r.key["id"]: r for r in rejects_of(state, "t")}
    assert set(rej) == {2, 3}
    assert rej[2].column == "body" and "NUL" in rej[2].reason and "nul" in rej[2].value
    assert rej[3].column == "tag"


def test_nul_strip_policy_is_counted(tmp_path: Path, pg_url: str) -> None:
    cfg = parse_config("tables:\n  t:\n    columns:\n      body:\n        nul: strip\n")
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);"
    rows = {"t": [(1, "a\x00b\x00"), (2, "plain"), (3, "\x00")]}
    report, state = migrate(tmp_path, pg_url, script, rows, config=cfg)
    assert report.status == "ok" and report.exit_code == 0
    assert report.tables["t"].changed_by_policy == 2
    assert fetch(pg_url, "SELECT id, body FROM t ORDER BY id") == [(1, "ab"), (2, "plain"), (3, "")]
    assert any("policy" in w for w in report.warnings)
    assert rejects_of(state) == []


def test_invalid_utf8_text_is_rejected_and_the_rest_loads(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, n INTEGER, at DATETIME, raw BLOB);
    INSERT INTO t VALUES (1, 'good é', 1, '2020-01-01 00:00:00', x'00');
    INSERT INTO t VALUES (2, CAST(x'c328' AS TEXT), 2, '2020-01-02', x'ff');
    INSERT INTO t VALUES (3, 'also good', 3, '2020-01-03T00:00:00Z', CAST('text' AS BLOB));
    INSERT INTO t VALUES (4, CAST(x'ff' AS TEXT), 4, NULL, NULL);
    CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT);
    INSERT INTO other VALUES (1, 'unaffected');
    """
    report, state = migrate(tmp_path, pg_url, script)
    assert report.status == "rejected" and report.exit_code == 1
    res = report.tables["t"]
    assert (res.read, res.written, res.rejected) == (4, 2, 2)
    assert fetch(pg_url, "SELECT id, body, n, at, raw FROM t ORDER BY id") == [
        (1, "good é", 1, datetime(2020, 1, 1), b"\x00"),
        (3, "also good", 3, datetime(2020, 1, 3), b"text"),
    ]
    rej = {r.key["id"]: r for r in rejects_of(state, "t")}
    assert set(rej) == {2, 4}
    assert rej[2].column == "body" and "UTF-8" in rej[2].reason and "c328" in rej[2].value
    assert fetch(pg_url, "SELECT v FROM other") == [("unaffected",)]


def test_invalid_utf8_in_a_text_primary_key_is_reported_readably(
    tmp_path: Path, pg_url: str
) -> None:
    script = """
    CREATE TABLE t (code TEXT PRIMARY KEY, body TEXT);
    INSERT INTO t VALUES ('ok-key', CAST(x'c3' AS TEXT));
    INSERT INTO t VALUES (CAST(x'e2' AS TEXT), 'fine');
    INSERT INTO t VALUES ('k2', 'fine');
    """
    report, state = migrate(tmp_path, pg_url, script)
    assert report.tables["t"].rejected == 2
    rej = sorted(rejects_of(state, "t"), key=lambda r: r.column)
    assert [r.column for r in rej] == ["body", "code"]
    assert rej[0].key == {"code": "ok-key"}  # readable, not as bytes
    assert "e2" in str(rej[1].key["code"])
    assert fetch(pg_url, "SELECT code FROM t") == [("k2",)]


def test_mixed_format_dates_become_the_same_instant_in_utc(tmp_path: Path, pg_url: str) -> None:
    script = "CREATE TABLE ev (id INTEGER PRIMARY KEY, at DATETIME, day DATE, ts TIMESTAMP);"
    values: list[tuple[object, datetime]] = [
        ("2020-01-02", datetime(2020, 1, 2)),
        ("2020-01-02 03:04:05", datetime(2020, 1, 2, 3, 4, 5)),
        ("2020-01-02T03:04:05", datetime(2020, 1, 2, 3, 4, 5)),
        ("2020-01-02T03:04:05Z", datetime(2020, 1, 2, 3, 4, 5)),
        ("2020-01-02 03:04:05.123456", datetime(2020, 1, 2, 3, 4, 5, 123456)),
        ("2020-01-02 03:04:05.123", datetime(2020, 1, 2, 3, 4, 5, 123000)),
        ("2020-01-02T03:04:05+02:00", datetime(2020, 1, 2, 1, 4, 5)),
        ("2020-01-02T03:04:05.5-0130", datetime(2020, 1, 2, 4, 34, 5, 500000)),
        ("2020-01-02 03:04", datetime(2020, 1, 2, 3, 4)),
        (1577934245, datetime(2020, 1, 2, 3, 4, 5)),  # epoch seconds
        (1577934245123, datetime(2020, 1, 2, 3, 4, 5, 123000)),  # epoch milliseconds
        (1577934245.25, datetime(2020, 1, 2, 3, 4, 5, 250000)),
        (0, datetime(1970, 1, 1)),
        (-86400, datetime(1969, 12, 31)),
    ]
    rows = [(i, v, None, v) for i, (v, _) in enumerate(values, 1)]
    rows.append((100, None, "2020-01-02", None))
    rows.append((101, None, "2020-01-02 00:00:00", None))
    rows.append((102, None, 1577923200, None))
    report, state = migrate(tmp_path, pg_url, script, {"ev": rows})
    assert report.status == "ok", [r.__dict__ for r in rejects_of(state)]
    got = dict(fetch(pg_url, "SELECT id, at FROM ev WHERE id < 100"))
    assert got == {i: want for i, (_, want) in enumerate(values, 1)}
    assert fetch(pg_url, "SELECT count(*) FROM ev WHERE at IS DISTINCT FROM ts") == [(0,)]
    days = dict(fetch(pg_url, "SELECT id, day FROM ev WHERE id >= 100"))
    assert days == {100: date(2020, 1, 2), 101: date(2020, 1, 2), 102: date(2020, 1, 2)}


def test_julian_day_numbers_are_read_as_sqlite_reads_them(tmp_path: Path, pg_url: str) -> None:
    # SQLite's documented date formats: TEXT (ISO 8601), REAL (julian day), INTEGER (Unix time)
    script = """
    CREATE TABLE j (id INTEGER PRIMARY KEY, at DATETIME, day DATE);
    INSERT INTO j VALUES (1, julianday('2022-01-01 12:00:01'), julianday('2022-01-01'));
    INSERT INTO j VALUES (2, julianday('2023-02-24 14:57:46.598'), NULL);
    INSERT INTO j VALUES (3, 1640995200, 1640995200);
    INSERT INTO j VALUES (4, 1640995200.5, NULL);
    -- the julian day of a noon is whole: NUMERIC affinity stores it as the INTEGER 2459581,
    -- which could as well be Unix time on 1970-01-29
    INSERT INTO j VALUES (5, julianday('2022-01-01 12:00:00'), NULL);
    """
    report, state = migrate(tmp_path, pg_url, script)
    assert report.exit_code == 1
    assert fetch(pg_url, "SELECT id, at, day FROM j ORDER BY id") == [
        (1, datetime(2022, 1, 1, 12, 0, 1), date(2022, 1, 1)),
        (2, datetime(2023, 2, 24, 14, 57, 46, 598000), None),
        (3, datetime(2022, 1, 1), date(2022, 1, 1)),
        (4, datetime(2022, 1, 1, 0, 0, 0, 500000), None),
    ]
    rej = rejects_of(state)
    assert [(r.key, r.value) for r in rej] == [({"id": 5}, "2459581")]
    assert "ambiguous" in rej[0].reason


def test_impossible_and_unreadable_dates_are_rejected(tmp_path: Path, pg_url: str) -> None:
    script = "CREATE TABLE ev (id INTEGER PRIMARY KEY, at DATETIME, day DATE);"
    bad_at = {
        1: "2023-02-30",
        2: "2023-02-29 10:00:00",
        3: "2020-13-01",
        4: "yesterday",
        5: "2020-01-02 25:00:00",
        6: "0000-01-01 00:00:00",
        7: "0000-01-01",
        8: b"\x01\x02",
        9: 10**18,  # not an epoch of any plausible unit
        10: 1e300,
        11: float("inf"),
        12: "2020-01-02 03:04:05.1234567",  # finer than microseconds
    }
    rows = [(i, v, None) for i, v in bad_at.items()]
    rows += [(50, None, "2023-02-30"), (51, None, "2020-01-02 10:00:00"), (52, None, "0000-01-01")]
    rows += [(99, "2024-02-29 12:00:00", "2024-02-29")]
    report, state = migrate(tmp_path, pg_url, script, {"ev": rows})
    assert report.exit_code == 1
    assert fetch(pg_url, "SELECT id, at, day FROM ev") == [
        (99, datetime(2024, 2, 29, 12), date(2024, 2, 29))
    ]
    rej = {r.key["id"]: r for r in rejects_of(state, "ev")}
    assert set(rej) == set(bad_at) | {50, 51, 52}
    assert all(r.reason for r in rej.values())
    assert rej[1].value == "'2023-02-30'" and rej[1].column == "at"
    assert rej[51].column == "day" and "time of day" in rej[51].reason


def test_text_in_integer_columns(tmp_path: Path, pg_url: str) -> None:
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, small SMALLINT);"
    rows = [(1, 5, 1), (2, "five", 2), (3, "12", 3), (4, 2.5, 4), (5, "", 5), (6, 7, "x")]
    report, state = migrate(tmp_path, pg_url, script, {"t": rows})
    assert report.exit_code == 1
    # '12' in an INTEGER column is stored by SQLite as the integer 12
    assert fetch(pg_url, "SELECT id, qty, small FROM t ORDER BY id") == [(1, 5, 1), (3, 12, 3)]
    rej = {r.key["id"]: r for r in rejects_of(state, "t")}
    assert set(rej) == {2, 4, 5, 6}
    assert rej[2].value == "'five'" and "integer" in rej[2].reason
    assert rej[4].value == "2.5"
    assert rej[6].column == "small"


def test_extreme_integers_and_reals(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE big (id INTEGER PRIMARY KEY, i INTEGER, r REAL, anyv, n NUMERIC, t TEXT,
                      s SMALLINT, nd NUMERIC(5,2));
    """
    imax, imin = 9223372036854775807, -9223372036854775808
    rows = [
        (1, imax, 1.7976931348623157e308, imax, imax, str(imax), 1, 1.5),
        (2, imin, -1.7976931348623157e308, imin, imin, str(imin), -1, 2.25),
        (3, 0, float("inf"), 1, float("inf"), "x", 0, 999.99),
        (4, 1, float("-inf"), 2, float("-inf"), "y", 32767, -999.99),
        (5, 2, 5e-324, 3, 5e-324, "z", -32768, 0),
    ]
    report, state = migrate(tmp_path, pg_url, script, {"big": rows})
    assert report.status == "ok", [r.__dict__ for r in rejects_of(state)]
    assert types_of(pg_url, "big") == {
        "id": "bigint", "i": "bigint", "r": "double precision", "anyv": "bigint",
        "n": "numeric", "t": "text", "s": "smallint", "nd": "numeric(5,2)",
    }  # fmt: skip
    got = fetch(pg_url, "SELECT id, i, r, anyv, n, t, s, nd FROM big ORDER BY id")
    assert got[0][1:4] == (imax, 1.7976931348623157e308, imax)
    assert got[0][4] == Decimal(imax) and got[0][5] == str(imax)
    assert got[1][1:4] == (imin, -1.7976931348623157e308, imin)
    assert got[1][4] == Decimal(imin)
    assert got[2][2] == math.inf and got[3][2] == -math.inf
    assert got[2][4] == Decimal("Infinity") and got[3][4] == Decimal("-Infinity")
    assert got[4][2] == 5e-324
    assert [r[6] for r in got] == [1, -1, 0, 32767, -32768]
    assert [r[7] for r in got] == [
        Decimal("1.50"),
        Decimal("2.25"),
        Decimal("999.99"),
        Decimal("-999.99"),
        Decimal("0.00"),
    ]


def test_numbers_that_do_not_fit_are_rejected(tmp_path: Path, pg_url: str) -> None:
    # SQLite itself turns integers in a REAL column into doubles: d is an INTEGER column the
    # config maps to double precision, where 2**53 + 1 has no exact double.
    cfg = parse_config("tables:\n  t:\n    columns:\n      d: {type: double precision}\n")
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, flag BOOLEAN, d INTEGER, js JSON);"
    rows = [
        (1, 1, 2**53, "1"),
        (2, 0, 2**53 + 1, "2"),  # not exactly representable as a double
        (3, 1, 1.5, float("inf")),  # inf is not JSON
    ]
    report, state = migrate(tmp_path, pg_url, script, {"t": rows}, config=cfg)
    assert report.exit_code == 1
    assert types_of(pg_url, "t")["d"] == "double precision"
    assert fetch(pg_url, "SELECT id, d FROM t ORDER BY id") == [(1, float(2**53))]
    rej = {r.key["id"]: r.column for r in rejects_of(state, "t")}
    assert rej == {2: "d", 3: "js"}


def test_booleans(tmp_path: Path, pg_url: str) -> None:
    script = "CREATE TABLE b (id INTEGER PRIMARY KEY, flag BOOLEAN);"
    values = {1: 0, 2: 1, 3: "true", 4: "no", 5: "FALSE", 6: "yes", 7: "t", 8: None,
              20: 2, 21: -1, 22: "maybe", 23: 0.5, 24: b"\x01", 25: ""}  # fmt: skip
    report, state = migrate(tmp_path, pg_url, script, {"b": list(values.items())})
    assert report.exit_code == 1
    assert dict(fetch(pg_url, "SELECT id, flag FROM b")) == {
        1: False, 2: True, 3: True, 4: False, 5: False, 6: True, 7: True, 8: None
    }  # fmt: skip
    rej = {r.key["id"]: r for r in rejects_of(state, "b")}
    assert set(rej) == {20, 21, 22, 23, 24, 25}
    assert rej[20].value == "2" and "boolean" in rej[20].reason


def test_json_values(tmp_path: Path, pg_url: str) -> None:
    script = "CREATE TABLE j (id INTEGER PRIMARY KEY, doc JSON);"
    deep_ok = "[" * 50 + "]" * 50
    too_deep = "[" * 100_000 + "]" * 100_000
    values = {
        1: '{"a": 1}', 2: "[1, 2.5, null, true]", 3: 5, 4: 2.5, 5: '"text"', 6: deep_ok,
        20: "{not json", 21: '{"a": "\\u0000"}', 22: b"{}", 23: '"\\ud800"', 24: too_deep,
        25: '{"a": 1}\x00{"b": 2}', 26: "NaN",
    }  # fmt: skip
    report, state = migrate(tmp_path, pg_url, script, {"j": list(values.items())})
    assert report.exit_code == 1, report.error
    got = dict(fetch(pg_url, "SELECT id, doc FROM j WHERE id < 6"))
    assert got == {1: {"a": 1}, 2: [1, 2.5, None, True], 3: 5, 4: 2.5, 5: "text"}
    assert fetch(pg_url, "SELECT doc::text = %s FROM j WHERE id = 6", (deep_ok,)) == [(True,)]
    rej = {r.key["id"]: r for r in rejects_of(state, "j")}
    assert set(rej) == {20, 21, 22, 23, 24, 25, 26}
    assert all(r.reason for r in rej.values())


def test_null_in_a_text_primary_key_is_rejected_not_a_crash(tmp_path: Path, pg_url: str) -> None:
    # SQLite lets NULL into a non-integer PRIMARY KEY of a rowid table (a documented quirk).
    script = """
    CREATE TABLE p (code TEXT PRIMARY KEY, v INTEGER);
    INSERT INTO p VALUES ('a', 1), (NULL, 2), (NULL, 3), ('b', 4);
    """
    report, state = migrate(tmp_path, pg_url, script)
    assert report.exit_code == 1
    assert fetch(pg_url, "SELECT code, v FROM p ORDER BY v") == [("a", 1), ("b", 4)]
    rej = rejects_of(state, "p")
    assert sorted((r.key["rowid"], r.key["code"]) for r in rej) == [(2, None), (3, None)]
    assert all(r.column == "code" and "NULL" in r.reason and r.value == "None" for r in rej)
    assert columns(pg_url, "p")["code"]["notnull"]
    assert [c[4] for c in constraints(pg_url, "p") if c[1] == "p"] == ["PRIMARY KEY (code)"]


def test_duplicate_keys_after_conversion_never_fail_the_run(tmp_path: Path, pg_url: str) -> None:
    # Two different SQLite values, one PostgreSQL value: an untyped key holding 1 and '1',
    # and timestamps that name the same instant.
    script = """
    CREATE TABLE u (k PRIMARY KEY, v INTEGER);
    INSERT INTO u VALUES (1, 1), ('1', 2), ('x', 3);
    CREATE TABLE ts (at DATETIME PRIMARY KEY, v INTEGER);
    INSERT INTO ts VALUES ('2020-01-01 00:00:00', 1), ('2020-01-01T00:00:00Z', 2);
    CREATE TABLE fine (id INTEGER PRIMARY KEY);
    INSERT INTO fine VALUES (1);
    """
    report, _ = migrate(tmp_path, pg_url, script)
    assert report.status == "ok"
    assert one(pg_url, "SELECT count(*) FROM fine") == 1
    assert one(pg_url, "SELECT count(*) FROM u") == 3  # every row kept ...
    assert one(pg_url, "SELECT count(*) FROM ts") == 2
    for table, key in (("u", "k"), ("ts", "at")):  # ... and the missing key said
        assert [c for c in constraints(pg_url, table) if c[1] == "p"] == []
        assert any(
            w.startswith(f"{table}: primary key ({key}) not created") for w in report.warnings
        )
    assert [c[1] for c in constraints(pg_url, "fine")] == ["p"]


def test_empty_tables_and_empty_database(tmp_path: Path, pg_url: str) -> None:
    report, _ = migrate(
        tmp_path,
        pg_url,
        "CREATE TABLE e (id INTEGER PRIMARY KEY, v TEXT NOT NULL, at DATETIME, n NUMERIC(3,1));",
    )
    assert report.status == "ok"
    assert (report.tables["e"].read, report.tables["e"].written) == (0, 0)
    assert types_of(pg_url, "e") == {
        "id": "bigint", "v": "text", "at": "timestamp without time zone", "n": "numeric(3,1)"
    }  # fmt: skip
    assert one(pg_url, "SELECT count(*) FROM e") == 0

    empty = tmp_path / "empty.db"
    conn = sqlite3.connect(empty)
    conn.execute("PRAGMA user_version = 1")  # a valid SQLite file with no tables
    conn.commit()
    conn.close()
    rep = api.sync(empty, pg_url, state=str(tmp_path / "s2.db"), verify="off", schema="other")
    assert rep.status == "ok" and rep.exit_code == 0
    assert rep.tables == {}


def test_every_rejection_is_recorded_with_table_key_column_value_reason(
    tmp_path: Path, pg_url: str
) -> None:
    script = """
    CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER, at DATE);
    CREATE TABLE b (x TEXT, y BOOLEAN);
    CREATE TABLE c (k1 TEXT, k2 INTEGER, flag BOOLEAN, PRIMARY KEY (k1, k2)) WITHOUT ROWID;
    """
    rows = {
        "a": [(1, "one", None), (2, 2, "2020-02-30"), (3, 3, "2020-02-03")],
        "b": [("x", 7), ("y", 1)],
        "c": [("k", 1, 5), ("k", 2, 0)],
    }
    report, state = migrate(tmp_path, pg_url, script, rows)
    assert report.exit_code == 1 and report.rejected == 4
    rej = rejects_of(state)
    assert len(rej) == 4
    by = {(r.table, r.column): r for r in rej}
    assert by[("a", "n")].key == {"id": 1}
    assert by[("a", "n")].value == "'one'"
    assert by[("a", "at")].key == {"id": 2}
    assert by[("b", "y")].key == {"rowid": 1}
    assert by[("b", "y")].value == "7"
    assert by[("c", "flag")].key == {"k1": "k", "k2": 1}
    assert all(r.reason for r in rej)
    assert {t: report.tables[t].rejected for t in "abc"} == {"a": 2, "b": 1, "c": 1}


@pytest.mark.parametrize(
    ("declared", "bad"),
    [
        ("DATETIME", "2023-02-30 10:00:00"),
        ("DATETIME", "2023-02-29"),
        ("DATETIME", "0000-01-01 00:00:00"),
        ("TIMESTAMP", "1900-02-29 00:00:00.000"),
        ("DATE", "2023-02-30"),
        ("DATE", "0000-12-31"),
        ("JSON", '"\\ud800"'),
        ("JSON", '{"k": "\\uDC00x"}'),
        ("JSON", '{"a": 1}\x00{"b": 2}'),
        ("UUID", "12345678-1234-1234-1234-123456789abc\x00"),
    ],
)
def test_a_bad_value_among_values_that_look_clean_in_sqlite(
    tmp_path: Path, pg_url: str, declared: str, bad: str
) -> None:
    """SQLite's own functions accept these ('2023-02-30' formats as itself, json_valid takes a
    lone surrogate): the fast path must still send them to the converters, never to COPY."""
    good = {
        "DATETIME": "2023-02-28 10:00:00",
        "TIMESTAMP": "1900-02-28 00:00:00.000",
        "DATE": "2023-02-28",
        "JSON": '{"k": "\\ud83d\\ude00"}',
        "UUID": "12345678-1234-1234-1234-123456789abc",
    }[declared]
    script = f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared});"
    report, state = migrate(tmp_path, pg_url, script, {"t": [(1, good), (2, bad), (3, good)]})
    assert report.exit_code == 1, report.error
    assert [r[0] for r in fetch(pg_url, "SELECT id FROM t ORDER BY id")] == [1, 3]
    rej = rejects_of(state, "t")
    assert [(r.key, r.column) for r in rej] == [({"id": 2}, "v")]
    assert rej[0].reason


def test_a_column_with_the_applications_own_collation(tmp_path: Path, pg_url: str) -> None:
    # The application registered "app_nocase" in its process; we do not have it.
    db = tmp_path / "src.db"
    conn = sqlite3.connect(db)
    conn.create_collation(
        "app_nocase", lambda a, b: (a.lower() > b.lower()) - (a.lower() < b.lower())
    )
    conn.executescript(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT COLLATE app_nocase,
                        at DATETIME COLLATE app_nocase, flag BOOLEAN COLLATE app_nocase);
        CREATE INDEX t_name ON t (name);
        INSERT INTO t VALUES (1, 'a', '2020-01-01 00:00:00', 1), (2, 'B', '2020-01-02', 0);
        """
    )
    conn.commit()
    conn.close()
    report = api.sync(db, pg_url, state=str(tmp_path / "state.db"), verify="off")
    assert report.status == "ok"
    assert fetch(pg_url, "SELECT id, name, at, flag FROM t ORDER BY id") == [
        (1, "a", datetime(2020, 1, 1), True),
        (2, "B", datetime(2020, 1, 2), False),
    ]
    assert any("APP_NOCASE" in w.upper() for w in report.warnings)


def test_foreign_keys_that_cannot_be_created_are_reported(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT);
    CREATE TABLE child (
      id INTEGER PRIMARY KEY, pid INTEGER, code TEXT, gone INTEGER, nopk INTEGER,
      FOREIGN KEY (PID) REFERENCES Parent (ID),
      FOREIGN KEY (code) REFERENCES parent (missing_column),
      FOREIGN KEY (gone) REFERENCES no_such_table (id),
      FOREIGN KEY (nopk) REFERENCES rowid_only
    );
    CREATE TABLE rowid_only (v TEXT);
    """
    report, _ = migrate(
        tmp_path, pg_url, script, {"parent": [(1, "a")], "child": [(1, 1, "a", 5, 1)]}
    )
    assert report.status == "ok"
    assert fetch(
        pg_url,
        "SELECT conname, confrelid::regclass::text, convalidated FROM pg_constraint "
        "WHERE contype = 'f'",
    ) == [("child_pid_fkey", "parent", True)]
    fk_warnings = [w for w in report.warnings if w.startswith("child: foreign key")]
    assert len(fk_warnings) == 3
    assert any("missing_column" in w for w in fk_warnings)
    assert any("no_such_table" in w and "no table" in w for w in fk_warnings)


def test_sqlalchemy_style_boolean_checks_and_partial_indexes(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE users (
      id INTEGER PRIMARY KEY, email TEXT,
      is_active BOOLEAN NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
      is_admin BOOLEAN CHECK (is_admin IN (0, 1))
    );
    CREATE UNIQUE INDEX users_active_email ON users (email) WHERE is_active = 1;
    """
    rows = {"users": [(1, "a@x", 1, 0), (2, "a@x", 0, None), (3, "b@x", 1, 1)]}
    report, _ = migrate(tmp_path, pg_url, script, rows)
    assert report.status == "ok"
    assert report.warnings == []
    checks = [c[4] for c in constraints(pg_url, "users") if c[1] == "c"]
    assert len(checks) == 2
    indexes = dict(
        fetch(pg_url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'users'")
    )
    assert "WHERE (is_active = true)" in indexes["users_active_email"]
    with psycopg.connect(pg_url) as conn, pytest.raises(pgerr.UniqueViolation):
        conn.execute("INSERT INTO users (email, is_active) VALUES ('b@x', true)")


def test_identities_past_the_int4_range_or_a_hand_edited_sequence(
    tmp_path: Path, pg_url: str
) -> None:
    script = """
    CREATE TABLE big_seq (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
    INSERT INTO big_seq VALUES (3000000000, 'x');
    DELETE FROM big_seq;
    INSERT INTO big_seq VALUES (5, 'small id, large sequence');
    CREATE TABLE hand_seq (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
    INSERT INTO hand_seq VALUES (3, 'x');
    UPDATE sqlite_sequence SET seq = 'garbage' WHERE name = 'hand_seq';
    """
    cfg = parse_config("types:\n  int32: true\n")
    report, _ = migrate(tmp_path, pg_url, script, config=cfg)
    assert report.status == "ok", report.error
    # int32 would fit the ids, not the sequence: bigint, continuing after the sequence
    assert types_of(pg_url, "big_seq")["id"] == "bigint"
    assert types_of(pg_url, "hand_seq")["id"] == "integer"
    with psycopg.connect(pg_url) as conn:
        got = conn.execute("INSERT INTO big_seq (v) VALUES ('n') RETURNING id").fetchone()
        assert got == (3000000001,)
        got = conn.execute("INSERT INTO hand_seq (v) VALUES ('n') RETURNING id").fetchone()
        assert got == (4,)


def test_an_id_at_the_end_of_bigint_with_full_reloads(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE full_ids (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
    INSERT INTO full_ids VALUES (9223372036854775807, 'last');
    """
    cfg = parse_config("tables:\n  full_ids: {strategy: full}\n")
    report, _ = migrate(tmp_path, pg_url, script, config=cfg)
    assert report.status == "ok", report.error
    assert fetch(pg_url, "SELECT id FROM full_ids") == [(2**63 - 1,)]
    assert any(w.startswith("full_ids.id: the ids reached") for w in report.warnings)
    assert columns(pg_url, "full_ids")["id"]["identity"] == "d"


def test_an_id_at_the_end_of_bigint(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE full_ids (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
    INSERT INTO full_ids VALUES (9223372036854775807, 'last');
    """
    report, _ = migrate(tmp_path, pg_url, script)
    assert report.status == "ok", report.error
    assert fetch(pg_url, "SELECT id FROM full_ids") == [(2**63 - 1,)]
    assert any(w.startswith("full_ids.id:") for w in report.warnings)


def test_names_postgresql_reserves_or_refuses(tmp_path: Path, pg_url: str) -> None:
    script = """
    CREATE TABLE "Order" ("Group" INTEGER, "user" TEXT, "select" TEXT, "Ünïcödé Name" TEXT);
    CREATE TABLE "user" (id INTEGER PRIMARY KEY, "check" TEXT UNIQUE);
    CREATE INDEX "Order_Group" ON "Order" ("Group");
    INSERT INTO "Order" VALUES (1, 'u', 's', 'n');
    INSERT INTO "user" VALUES (1, 'c');
    """
    report, _ = migrate(tmp_path, pg_url, script)
    assert report.status == "ok", report.warnings
    assert user_tables(pg_url) == {"public.order", "public.user"}
    assert list(columns(pg_url, "order")) == ["group", "user", "select", "Ünïcödé Name"]
    assert fetch(pg_url, 'SELECT "group", "user" FROM "order"') == [(1, "u")]
    assert {c[1] for c in constraints(pg_url, "user")} == {"p", "u"}


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ('CREATE TABLE t ("" INTEGER, b INTEGER);', "empty name"),
        (
            "CREATE TABLE wide (" + ", ".join(f"c{i} INTEGER" for i in range(1601)) + ");",
            "1600",
        ),
    ],
)
def test_tables_postgresql_cannot_hold_fail_before_writing(
    tmp_path: Path, pg_url: str, script: str, fragment: str
) -> None:
    db = make_db(tmp_path / "src.db", script + "CREATE TABLE ok (id INTEGER PRIMARY KEY);")
    with pytest.raises(PlanError) as info:
        api.sync(db, pg_url, state=str(tmp_path / "state.db"), verify="off")
    assert info.value.exit_code == 2
    assert fragment in info.value.message and info.value.hint
    assert user_tables(pg_url) == set()


def test_a_wide_table(tmp_path: Path, pg_url: str) -> None:
    # 400 columns: PostgreSQL takes them, but profiling them in one query would ask SQLite
    # for more than its 2000 result columns
    names = [f"c{i}" for i in range(400)]
    kinds = ["", "", "", "INTEGER", "DATETIME"]  # no declared type: 7 aggregates each
    decls = ", ".join(f"{n} {kinds[i % 5]}" for i, n in enumerate(names))
    values = [(i, f"t{i}", i * 1.5, i, "2020-01-02")[i % 5] for i in range(400)]
    report, _ = migrate(
        tmp_path,
        pg_url,
        f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {decls});",
        {"wide": [(1, *values)]},
    )
    assert report.status == "ok"
    row = fetch(pg_url, "SELECT * FROM wide")[0]
    assert len(row) == 401
    assert row[1:6] == (0, "t1", 3.0, 3, datetime(2020, 1, 2))
    assert row[396:401] == (395, "t396", 595.5, 398, datetime(2020, 1, 2))


def test_on_invalid_null_policy_is_counted_and_never_breaks_not_null(
    tmp_path: Path, pg_url: str
) -> None:
    cfg = parse_config(
        "tables:\n  t:\n    columns:\n"
        "      qty: {on_invalid: 'null'}\n      at: {on_invalid: 'null'}\n"
    )
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, at DATETIME NOT NULL);"
    rows = [(1, 5, "2020-01-01"), (2, "five", "2020-01-02"), (3, 7, "2023-02-30"), (4, 8, "x")]
    report, state = migrate(tmp_path, pg_url, script, {"t": rows}, config=cfg)
    assert fetch(pg_url, "SELECT id, qty, at FROM t ORDER BY id") == [
        (1, 5, datetime(2020, 1, 1)),
        (2, None, datetime(2020, 1, 2)),
    ]
    assert report.tables["t"].changed_by_policy == 1
    # a NOT NULL column cannot take the policy's NULL: those rows are rejected, with reasons
    assert sorted((r.key["id"], r.column) for r in rejects_of(state)) == [(3, "at"), (4, "at")]
    assert report.exit_code == 1


def test_null_in_a_not_null_column_is_rejected_not_a_failed_load(
    tmp_path: Path, pg_url: str
) -> None:
    """A file written with the constraint off holds NULL in a NOT NULL column. SQLite folds
    ``IS NULL`` to false for such a column, so the profile must test typeof(): the row is
    rejected with its reason and the rest loads (the column stays NOT NULL)."""
    db = make_db(
        tmp_path / "src.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, at DATETIME);",
        {"t": [(1, "a", "2024-01-01 00:00:00"), (2, None, None), (3, "c", "2024-01-03 00:00:00")]},
    )
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = 'CREATE TABLE t (id INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, at DATETIME NOT NULL)' WHERE name = 't'"
    )
    conn.close()
    state = str(tmp_path / "state.db")
    report = api.sync(db, pg_url, state=state, verify="off")
    assert report.status == "rejected" and report.tables["t"].rejected == 1
    assert fetch(pg_url, "SELECT id FROM t ORDER BY id") == [(1,), (3,)]
    assert columns(pg_url, "t")["name"]["notnull"] and columns(pg_url, "t")["at"]["notnull"]
    (rejection,) = rejects_of(state, "t")
    assert "null" in rejection.reason.lower()
    # verification reads the same NULL (its canonical text too): the row is known as rejected
    for level in ("checksum", "rows"):
        checked = api.verify(db, pg_url, state=state, level=level).result
        assert checked.identical and checked.tables["t"].rejected == 1, level
