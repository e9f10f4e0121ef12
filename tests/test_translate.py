"""SQLite SQL read and translated: parse_create_table and the expression Translator
(defaults, CHECKs, generated columns, index predicates), checked as text and, where the
meaning matters, by running the result in SQLite and PostgreSQL side by side."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from sqlite2pg.sqlite_sql import (
    NOW_UTC,
    Translator,
    Untranslatable,
    parse_create_table,
    quote_ident,
    split_top,
    tokenize,
    view_select,
)

COLUMNS = {"a", "b", "name", "price", "qty", "flag", "my col", "created"}


def resolve(ident: str) -> str | None:
    low = ident.lower()
    return quote_ident(low) if low in COLUMNS else None


def declared(name: str) -> str:
    return {"INTEGER": "bigint", "TEXT": "text", "REAL": "double precision"}.get(
        name.upper(), "numeric"
    )


T = Translator(resolve, declared, lambda ident: ident.lower() == "flag")


# --------------------------------------------------------------------------- tokens


def test_tokenize_keeps_strings_quoted_names_numbers_and_blobs_whole() -> None:
    toks = tokenize(
        "x'0AfF' 'it''s, (not) a split' \"a \"\"b\"\"\" [c d] `e` 0x1F 1.5e-3 .5 -- c\n"
        "/* block, comment */ =="
    )
    assert [(t.kind, t.text) for t in toks] == [
        ("blob", "x'0AfF'"),
        ("str", "'it''s, (not) a split'"),
        ("qident", '"a ""b"""'),
        ("qident", "[c d]"),
        ("qident", "`e`"),
        ("num", "0x1F"),
        ("num", "1.5e-3"),
        ("num", ".5"),
        ("op", "=="),
    ]
    assert [t.ident for t in toks[2:5]] == ['a "b"', "c d", "e"]


def test_split_top_only_splits_outside_parentheses() -> None:
    parts = split_top(tokenize("a, f(b, c), 'x,y', (d, e)"))
    assert [" ".join(t.text for t in p) for p in parts] == [
        "a",
        "f ( b , c )",
        "'x,y'",
        "( d , e )",
    ]


# --------------------------------------------------------------------------- CREATE TABLE


def test_parse_create_table_reads_what_the_pragmas_omit() -> None:
    sql = """CREATE TABLE "Order Items" (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        [Name] TEXT COLLATE NOCASE NOT NULL CHECK (length([Name]) > 0),
        `code` VARCHAR(10) COLLATE rtrim DEFAULT 'a,b',  -- a comment, with a comma
        price DECIMAL(10, 2) CHECK (price >= 0) CHECK (price < 1e6),
        total REAL GENERATED ALWAYS AS (price * 2) STORED,
        half REAL AS (price / 2),
        note TEXT DEFAULT ('(not a check)'),
        CONSTRAINT positive CHECK (price > 0 OR price IS NULL),
        CHECK ("Name" <> 'x'),
        UNIQUE (code),
        FOREIGN KEY (id) REFERENCES other (id)
    ) WITHOUT ROWID"""
    details = parse_create_table(sql)
    assert list(details.columns) == ["id", "Name", "code", "price", "total", "half", "note"]
    cols = details.columns
    assert cols["id"].autoincrement and not cols["Name"].autoincrement
    assert cols["Name"].collation == "NOCASE"
    assert cols["code"].collation == "RTRIM"
    assert cols["Name"].checks == ["length([Name]) > 0"]
    assert cols["price"].checks == ["price >= 0", "price < 1e6"]
    assert cols["total"].generated_sql == "price * 2"
    assert cols["half"].generated_sql == "price / 2"
    assert cols["note"].checks == [] and cols["note"].generated_sql is None
    assert details.checks == ["price > 0 OR price IS NULL", "\"Name\" <> 'x'"]


def test_view_select_and_its_translation() -> None:
    select = view_select("CREATE VIEW v AS SELECT a, b FROM t WHERE a == 1;")
    assert select == "SELECT a, b FROM t WHERE a == 1"
    views = Translator(lambda ident: quote_ident(ident.lower()))
    assert views.expression(select) == 'SELECT "a", "b" FROM "t" WHERE "a" = 1'


# --------------------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("a == 1", '"a" = 1'),
        ("a = 1 AND b != 2 OR b <> 3", '"a" = 1 AND "b" != 2 OR "b" <> 3'),
        ("a IS NULL", '"a" IS NULL'),
        ("a IS NOT NULL", '"a" IS NOT NULL'),
        ("a IS b", '"a" IS NOT DISTINCT FROM "b"'),
        ("a IS NOT b", '"a" IS DISTINCT FROM "b"'),
        # SQLite's LIKE ignores case, and the column's collation
        ("name LIKE 'ab%'", '"name" ILIKE \'ab%\' COLLATE "default"'),
        ("name NOT LIKE '_x'", '"name" NOT ILIKE \'_x\' COLLATE "default"'),
        ("name LIKE b", '"name" ILIKE "b"'),
        ("CAST(a AS INTEGER)", 'CAST("a" AS bigint)'),
        ("CAST(price AS REAL) > 1", 'CAST("price" AS double precision) > 1'),
        ("CAST(a AS TEXT) || name", 'CAST("a" AS text) || "name"'),
        ("ifnull(name, '')", "coalesce(\"name\", '')"),
        ("max(a, b, 3)", 'greatest("a", "b", 3)'),
        ("min(a, b)", 'least("a", "b")'),
        ("substr(name, 1, 2)", 'substr("name", 1, 2)'),
        ("instr(name, 'x') > 0", 'strpos(("name") COLLATE "default", \'x\') > 0'),
        ("replace(name, 'a', 'b')", "replace((\"name\") COLLATE \"default\", 'a', 'b')"),
        ("trim(name)", 'btrim("name")'),
        ("a IN (1, 2, 3)", '"a" IN (1, 2, 3)'),
        ("a BETWEEN 1 AND 2", '"a" BETWEEN 1 AND 2'),
        ("NOT (a > 1)", 'NOT ("a" > 1)'),
        ("CASE WHEN a > 1 THEN 'x' ELSE 'y' END", "CASE WHEN \"a\" > 1 THEN 'x' ELSE 'y' END"),
        ('"my col" + 1', '"my col" + 1'),
        ('"no such column"', "'no such column'"),  # SQLite: an unknown "name" is a string
        ("x'0aFF'", "'\\x0aff'::bytea"),
        ("0x1F + a", '31 + "a"'),
        ("name COLLATE NOCASE = 'x'", '"name" COLLATE "nocase" = \'x\''),
        ("name COLLATE BINARY = 'x'", "\"name\" = 'x'"),
        ("flag IN (0, 1)", '"flag" IN (false, true)'),
        ("flag = 1 AND a = 1", '"flag" = true AND "a" = 1'),
        ("flag == 0", '"flag" = false'),
        ("flag NOT IN (1)", '"flag" NOT IN (true)'),
        ("flag <> 0", '"flag" <> false'),
        ("flag", '"flag"'),
    ],
)
def test_expressions(sqlite: str, postgres: str) -> None:
    assert T.expression(sqlite) == postgres


@pytest.mark.parametrize(
    ("sqlite", "why"),
    [
        ("name GLOB 'a*'", "GLOB"),
        ("name REGEXP '^a'", "REGEXP"),
        ("name MATCH 'x'", "MATCH"),
        ("typeof(a) = 'integer'", "typeof"),
        ("json_valid(name)", "json_valid"),
        ("name -> '$.x'", "->"),
        ("name ->> '$.x'", "->>"),
        ("a & 1", "&"),
        ("a | 1", "|"),
        ("a << 1", "<<"),
        ("~a", "~"),
        ("no_such_column > 1", "no_such_column"),
        ("a = ?", "parameter"),
        ("a = :value", "parameter"),
        ("name COLLATE RTRIM = 'x'", "RTRIM"),
        ("datetime('now', '+1 day')", "datetime"),
        ("strftime('%w', 'now')", "%w"),
        ("strftime('%s000', 'now')", "%s"),
        ("julianday('now', 'localtime')", "julianday"),
        ("(a + 1", "unbalanced"),
    ],
)
def test_untranslatable_expressions_say_why(sqlite: str, why: str) -> None:
    with pytest.raises(Untranslatable) as info:
        T.expression(sqlite)
    assert why.lower() in str(info.value).lower()


# --------------------------------------------------------------------------- defaults

EPOCH = "floor(extract(epoch from CURRENT_TIMESTAMP))::bigint"


@pytest.mark.parametrize(
    ("sqlite", "kind", "postgres"),
    [
        ("CURRENT_TIMESTAMP", "timestamp", NOW_UTC),
        ("CURRENT_TIMESTAMP", "timestamptz", "CURRENT_TIMESTAMP"),
        ("datetime('now')", "timestamp", NOW_UTC),
        ("datetime('now', 'localtime')", "timestamp", "LOCALTIMESTAMP"),
        ("DATETIME('NOW', 'UTC')", "timestamp", NOW_UTC),
        ("strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", "timestamp", NOW_UTC),
        ("CURRENT_DATE", "date", f"({NOW_UTC})::date"),
        ("date('now')", "date", f"({NOW_UTC})::date"),
        ("CURRENT_DATE", "timestamp", f"date_trunc('day', {NOW_UTC})"),
        ("CURRENT_TIME", "time", f"({NOW_UTC})::time"),
        ("time('now')", "time", f"({NOW_UTC})::time"),
        ("strftime('%s', 'now')", "bigint", EPOCH),
        ("strftime('%s','now')", "integer", EPOCH),
        ("unixepoch('now')", "bigint", EPOCH),
        ("strftime('%s', 'now')", "text", f"{EPOCH}::text"),
        (
            "julianday('now')",
            "double",
            "(extract(epoch from CURRENT_TIMESTAMP) / 86400 + 2440587.5)::double precision",
        ),
        ("CURRENT_TIMESTAMP", "text", f"to_char({NOW_UTC}, 'YYYY-MM-DD HH24:MI:SS')"),
        ("strftime('%Y-%m-%dT%H:%M:%S', 'now')", "text",
         f"to_char({NOW_UTC}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"),
        ("strftime('%d/%m/%Y at %H''h', 'now')", "text",
         f"to_char({NOW_UTC}, 'DD/MM/YYYY\" at \"HH24\"''h\"')"),
        ("strftime('100%% %Y', 'now')", "text", f"to_char({NOW_UTC}, '\"100% \"YYYY')"),
        ("'literal'", "text", "'literal'"),
        ("(1 + 2)", "bigint", "(1 + 2)"),
    ],
)  # fmt: skip
def test_defaults_typed_for_their_column(sqlite: str, kind: str, postgres: str) -> None:
    assert T.default(sqlite, kind) == postgres


def test_a_time_function_default_never_becomes_a_string_literal() -> None:
    for sql in ("CURRENT_TIMESTAMP", "datetime('now')", "strftime('%s','now')", "date('now')"):
        for kind in ("timestamp", "timestamptz", "date", "text", "bigint"):
            assert not T.default(sql, kind).startswith("'"), (sql, kind)


# --------------------------------------------------------------------------- meaning, in both


STRFTIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%fZ",
    "%d/%m/%Y",
    "%H:%M",
    "%j",
    "year %Y, day %j",
    "100%% at %H",
    "THE %d TH",  # letters that are to_char patterns in PostgreSQL
    "It's %Y",
    'quote " and back\\slash %m',
]


@pytest.mark.parametrize("fmt", STRFTIME_FORMATS)
def test_strftime_formats_give_the_same_text_in_postgresql(pg_url: str, fmt: str) -> None:
    moment = "2024-03-05 06:07:08.123"
    quoted_fmt = "'" + fmt.replace("'", "''") + "'"
    expected = (
        sqlite3.connect(":memory:")
        .execute(f"SELECT strftime({quoted_fmt}, '{moment}')")
        .fetchone()[0]
    )
    translated = T.expression(f"strftime({quoted_fmt}, 'now')")
    fixed = translated.replace(NOW_UTC, f"timestamp '{moment}'")
    assert fixed != translated
    with psycopg.connect(pg_url) as conn:
        got = conn.execute(f"SELECT {fixed}").fetchone()  # type: ignore[arg-type]
    assert got == (expected,)


def test_typed_defaults_evaluate_to_now_in_postgresql(pg_url: str) -> None:
    cases = {
        "timestamp": ("CURRENT_TIMESTAMP", "timestamp without time zone"),
        "timestamptz": ("datetime('now')", "timestamp with time zone"),
        "date": ("date('now')", "date"),
        "time": ("CURRENT_TIME", "time without time zone"),
        "bigint": ("strftime('%s', 'now')", "bigint"),
        "double": ("julianday('now')", "double precision"),
    }
    now = datetime.now(timezone.utc)
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET TimeZone = 'America/New_York'")  # the defaults are UTC regardless
        values = {}
        for kind, (sql, pg_type) in cases.items():
            expr = T.default(sql, kind)
            row = conn.execute(f"SELECT {expr}, pg_typeof({expr})::text").fetchone()  # type: ignore[arg-type]
            assert row is not None and row[1] == pg_type, (kind, row)
            values[kind] = row[0]
    naive_now = now.replace(tzinfo=None)
    slack = timedelta(seconds=5)
    assert abs(values["timestamp"] - naive_now) < slack
    assert abs(values["timestamptz"] - now) < slack
    assert values["date"] in ((naive_now - slack).date(), (naive_now + slack).date())
    assert abs(values["bigint"] - now.timestamp()) < 5
    assert abs((values["double"] - 2440587.5) * 86400 - now.timestamp()) < 5


def test_boolean_checks_mean_the_same_in_postgresql(pg_url: str) -> None:
    check = T.expression("flag IN (0, 1)")
    with psycopg.connect(pg_url) as conn:
        conn.execute(f'CREATE TEMP TABLE t ("flag" boolean CHECK ({check}))')  # type: ignore[arg-type]
        conn.execute("INSERT INTO t VALUES (true), (false), (NULL)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,)
