"""Reading SQLite's SQL text: tokens, CREATE TABLE details the pragmas omit, and expressions
translated to PostgreSQL.

The pragmas give columns, keys and indexes; collations, CHECK constraints, generated-column
expressions and AUTOINCREMENT live only in the CREATE statement, so a small tokenizer reads them.
Expressions (defaults, checks, generated columns, partial and expression indexes, views) are
translated token by token; anything without a faithful PostgreSQL equivalent raises
``Untranslatable`` so the caller can warn instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from psycopg import sql

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<blob>[xX]'[0-9a-fA-F]*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`)
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*)
  | (?P<param>[?:@$][A-Za-z0-9_]*)
  | (?P<op>\|\||<<|>>|<=|>=|==|!=|<>|->>|->|[-+*/%<>=~&|(),.;])
    """,
    re.VERBOSE | re.DOTALL,
)


class Untranslatable(Exception):
    """An SQLite expression with no faithful PostgreSQL equivalent."""


@dataclass(frozen=True)
class Token:
    kind: str  # str, qident, num, word, blob, op, param
    text: str

    @property
    def ident(self) -> str:
        """The identifier this token names (quotes removed)."""
        t = self.text
        if self.kind == "qident":
            if t[0] == "[":
                return t[1:-1]
            q = t[0]
            return t[1:-1].replace(q + q, q)
        return t

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m:
            raise Untranslatable(f"cannot read SQL near {sql[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group()))
        pos = m.end()
    return tokens


def split_top(tokens: list[Token]) -> list[list[Token]]:
    """Split a token list at commas that are not inside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        if tok.text == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def paren_group(tokens: list[Token], start: int) -> tuple[list[Token], int]:
    """Tokens inside the parentheses opening at ``start``; returns them and the index after."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].text == "(":
            depth += 1
        elif tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return tokens[start + 1 : i], i + 1
    raise Untranslatable("unbalanced parentheses")


def join_tokens(tokens: list[Token]) -> str:
    out = ""
    for tok in tokens:
        if out and not (tok.text in ("(", ")", ",", ".") or out.endswith(("(", "."))):
            out += " "
        out += tok.text
    return out


@dataclass
class ColumnDetails:
    collation: str | None = None
    checks: list[str] = field(default_factory=list)
    generated_sql: str | None = None
    autoincrement: bool = False


@dataclass
class TableDetails:
    columns: dict[str, ColumnDetails] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)


_COLUMN_CONSTRAINT_WORDS = {
    "CONSTRAINT",
    "PRIMARY",
    "NOT",
    "NULL",
    "UNIQUE",
    "CHECK",
    "DEFAULT",
    "COLLATE",
    "REFERENCES",
    "GENERATED",
    "AS",
}
_TABLE_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}


def parse_create_table(sql: str) -> TableDetails:
    """Collations, CHECKs, generated expressions and AUTOINCREMENT from a CREATE TABLE."""
    tokens = tokenize(sql)
    start = next(i for i, t in enumerate(tokens) if t.text == "(")
    body, _ = paren_group(tokens, start)
    details = TableDetails()
    for item in split_top(body):
        first = item[0]
        if first.kind == "word" and first.text.upper() in _TABLE_CONSTRAINT_WORDS:
            i = 2 if first.is_word("CONSTRAINT") else 0
            if i < len(item) and item[i].is_word("CHECK"):
                expr, _ = paren_group(item, i + 1)
                details.checks.append(join_tokens(expr))
            continue
        col = ColumnDetails()
        details.columns[first.ident] = col
        i = 1
        while i < len(item):
            tok = item[i]
            if tok.is_word("COLLATE") and i + 1 < len(item):
                col.collation = item[i + 1].ident.upper()
                i += 2
            elif tok.is_word("CHECK"):
                expr, i = paren_group(item, i + 1)
                col.checks.append(join_tokens(expr))
            elif tok.is_word("AS") and i + 1 < len(item) and item[i + 1].text == "(":
                expr, i = paren_group(item, i + 1)
                col.generated_sql = join_tokens(expr)
            elif tok.is_word("AUTOINCREMENT"):
                col.autoincrement = True
                i += 1
            elif tok.text == "(":
                _, i = paren_group(item, i)
            else:
                i += 1
    return details


def view_select(sql: str) -> str:
    """The SELECT of a CREATE VIEW statement."""
    tokens = tokenize(sql)
    while tokens and tokens[-1].text == ";":
        tokens.pop()
    for i, tok in enumerate(tokens):
        if tok.is_word("AS") and i + 1 < len(tokens):
            return join_tokens(tokens[i + 1 :])
    raise Untranslatable("no AS in CREATE VIEW")


# --------------------------------------------------------------------------- translation

_FUNCTIONS = {
    "LOWER": "lower",
    "UPPER": "upper",
    "LENGTH": "length",
    "ABS": "abs",
    "COALESCE": "coalesce",
    "IFNULL": "coalesce",
    "NULLIF": "nullif",
    "SUBSTR": "substr",
    "SUBSTRING": "substr",
    "TRIM": "btrim",
    "LTRIM": "ltrim",
    "RTRIM": "rtrim",
    "REPLACE": "replace",
    "INSTR": "strpos",
    "ROUND": "round",
    "COUNT": "count",
    "SUM": "sum",
    "AVG": "avg",
    "TOTAL": "sum",
    "GROUP_CONCAT": "string_agg",
    "RANDOM": "random",
    "HEX": "encode",
}
_KEYWORDS = {
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "NULL",
    "TRUE",
    "FALSE",
    "IS",
    "EXISTS",
    "DISTINCT",
    "ESCAPE",
    "AS",
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "INNER",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "UNION",
    "ALL",
    "INTERSECT",
    "EXCEPT",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "WITH",
    "RECURSIVE",
}
_STRFTIME = {
    "Y": "YYYY",
    "m": "MM",
    "d": "DD",
    "H": "HH24",
    "M": "MI",
    "S": "SS",
    "f": "SS.MS",
    "j": "DDD",
}
NOW_UTC = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
DEFAULT_COLLATION = 'COLLATE "default"'
NOW_TEXT = f"to_char({NOW_UTC}, 'YYYY-MM-DD HH24:MI:SS')"
EPOCH_NOW = "floor(extract(epoch from CURRENT_TIMESTAMP))::bigint"
JULIAN_NOW = "(extract(epoch from CURRENT_TIMESTAMP) / 86400 + 2440587.5)::double precision"


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted by psycopg (safe for any name)."""
    return sql.Identifier(name).as_string(None)


@dataclass
class Translator:
    """Translates SQLite expressions; ``resolve`` maps an identifier to a quoted target name
    (or returns None when the identifier is unknown)."""

    resolve: Callable[[str], str | None]
    type_sql: Callable[[str], str] = lambda declared: "text"
    # True for a column that becomes boolean: SQLite compares it with 0 and 1
    # (SQLAlchemy writes CHECK (flag IN (0, 1))), PostgreSQL with false and true.
    is_boolean: Callable[[str], bool] = lambda ident: False

    def expression(self, sql: str) -> str:
        tokens = tokenize(sql)
        depth = 0
        for tok in tokens:
            depth += {"(": 1, ")": -1}.get(tok.text, 0)
            if depth < 0:
                break
        if depth:
            raise Untranslatable("unbalanced parentheses")
        return self._tokens(tokens)

    def default(self, sql: str, pg_kind: str) -> str:
        """A column default, typed for its column where SQLite's default is a time function
        (CURRENT_TIMESTAMP on a timestamp column is the moment, not its text)."""
        now = _now_function(tokenize(sql))
        if now is not None:
            typed = _typed_now(now, pg_kind)
            if typed is not None:
                return typed
        return self.expression(sql)

    def _tokens(self, tokens: list[Token]) -> str:
        out: list[str] = []
        for piece in self._walk(tokens):
            out.append(piece)
        return _join(out)

    def _walk(self, tokens: list[Token]) -> Iterator[str]:
        i = 0
        n = len(tokens)
        while i < n:
            tok = tokens[i]
            nxt = tokens[i + 1] if i + 1 < n else None
            up = tok.text.upper()
            if tok.kind == "str":
                yield tok.text
            elif tok.kind == "num":
                if tok.text.lower().startswith("0x"):
                    yield str(int(tok.text, 16))
                else:
                    yield tok.text
            elif tok.kind == "blob":
                yield "'\\x" + tok.text[2:-1].lower() + "'::bytea"
            elif tok.kind == "param":
                raise Untranslatable("parameters are not allowed here")
            elif tok.kind == "op":
                if tok.text == "==":
                    yield "="
                elif tok.text in ("->", "->>", "~", "<<", ">>", "&", "|"):
                    raise Untranslatable(f"operator {tok.text}")
                else:
                    yield tok.text
            elif tok.kind == "word" and up not in _KEYWORDS and nxt is not None and nxt.text == "(":
                args, end = paren_group(tokens, i + 1)
                yield self._function(up, args)
                i = end
                continue
            elif tok.kind == "word" and up in ("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME"):
                yield {
                    "CURRENT_TIMESTAMP": NOW_TEXT,
                    "CURRENT_DATE": f"to_char({NOW_UTC}, 'YYYY-MM-DD')",
                    "CURRENT_TIME": f"to_char({NOW_UTC}, 'HH24:MI:SS')",
                }[up]
            elif tok.kind == "word" and up == "IS":
                negate = nxt is not None and nxt.is_word("NOT")
                after = tokens[i + 2] if negate and i + 2 < n else nxt
                if after is not None and after.is_word("NULL"):
                    yield "IS NOT" if negate else "IS"
                else:
                    yield "IS DISTINCT FROM" if negate else "IS NOT DISTINCT FROM"
                i += 2 if negate else 1
                continue
            elif tok.kind == "word" and up in ("LIKE",):
                yield "ILIKE"  # SQLite's LIKE ignores (ASCII) case
                if nxt is not None and nxt.kind == "str":
                    # SQLite's LIKE ignores the column's collation; PostgreSQL refuses ILIKE
                    # under a nondeterministic one (our NOCASE), and would only say so when a
                    # row is written: name the deterministic default on the pattern.
                    yield f"{nxt.text} {DEFAULT_COLLATION}"
                    i += 2
                    continue
            elif tok.kind == "word" and up in ("GLOB", "REGEXP", "MATCH"):
                raise Untranslatable(f"{up} has no PostgreSQL equivalent here")
            elif tok.kind == "word" and up == "COLLATE" and nxt is not None:
                if nxt.ident.upper() == "NOCASE":
                    yield 'COLLATE "nocase"'
                elif nxt.ident.upper() != "BINARY":
                    raise Untranslatable(f"collation {nxt.ident}")
                i += 2
                continue
            elif tok.kind == "word" and up in _KEYWORDS:
                yield up
            elif tok.kind in ("word", "qident"):
                resolved = self.resolve(tok.ident)
                if resolved is not None:
                    yield resolved
                    if self.is_boolean(tok.ident):
                        pieces, i = _boolean_comparison(tokens, i + 1)
                        yield from pieces
                        continue
                elif tok.text.startswith('"'):
                    # SQLite reads an unknown double-quoted name as a string literal.
                    yield "'" + tok.ident.replace("'", "''") + "'"
                else:
                    raise Untranslatable(f"unknown name {tok.ident}")
            else:
                raise Untranslatable(f"unexpected {tok.text}")
            i += 1

    def _function(self, name: str, args: list[Token]) -> str:
        now = _now_function([Token("word", name), Token("op", "("), *args, Token("op", ")")])
        if now is not None:
            return _now_value(now)
        if name == "CAST":
            parts = [i for i, t in enumerate(args) if t.is_word("AS")]
            if not parts:
                raise Untranslatable("CAST without AS")
            inner = self._tokens(args[: parts[-1]])
            declared = " ".join(t.text for t in args[parts[-1] + 1 :])
            return f"CAST({inner} AS {self.type_sql(declared)})"
        if name in ("MAX", "MIN"):
            pieces = split_top(args)
            fn = name.lower() if len(pieces) == 1 else ("greatest" if name == "MAX" else "least")
            return f"{fn}({', '.join(self._tokens(p) for p in pieces)})"
        if name == "HEX":
            return f"upper(encode({self._tokens(args)}, 'hex'))"
        if name not in _FUNCTIONS:
            raise Untranslatable(f"function {name.lower()}()")
        arg_sql = [self._tokens(p) for p in split_top(args)]
        if name in ("INSTR", "REPLACE") and arg_sql:
            # substring searches fail under a nondeterministic collation (see LIKE)
            arg_sql[0] = f"({arg_sql[0]}) {DEFAULT_COLLATION}"
        inner = ", ".join(arg_sql)
        if name == "COUNT" and not args:
            inner = ""
        return f"{_FUNCTIONS[name]}({inner})"


_BOOL_LITERALS = {"0": "false", "1": "true"}


def _boolean_comparison(tokens: list[Token], i: int) -> tuple[list[str], int]:
    """After a boolean column: ``= 1``, ``<> 0``, ``IN (0, 1)``, ``NOT IN (1)`` with the
    numbers as false/true. Returns the pieces and the index after them (nothing matched: [])."""
    n = len(tokens)
    if i + 1 < n and tokens[i].text in ("=", "==", "!=", "<>"):
        lit = tokens[i + 1]
        if lit.kind == "num" and lit.text in _BOOL_LITERALS:
            op = "=" if tokens[i].text == "==" else tokens[i].text
            return [op, _BOOL_LITERALS[lit.text]], i + 2
    j = i + 1 if i < n and tokens[i].is_word("NOT") else i
    if j + 1 < n and tokens[j].is_word("IN") and tokens[j + 1].text == "(":
        inner, end = paren_group(tokens, j + 1)
        items = split_top(inner)
        if items and all(
            len(p) == 1 and p[0].kind == "num" and p[0].text in _BOOL_LITERALS for p in items
        ):
            values = ", ".join(_BOOL_LITERALS[p[0].text] for p in items)
            return [*(["NOT"] if j > i else []), "IN", f"({values})"], end
    return [], i


_DEFAULT_FORMATS = {
    "CURRENT_TIMESTAMP": "%Y-%m-%d %H:%M:%S",
    "CURRENT_DATE": "%Y-%m-%d",
    "CURRENT_TIME": "%H:%M:%S",
    "DATETIME": "%Y-%m-%d %H:%M:%S",
    "DATE": "%Y-%m-%d",
    "TIME": "%H:%M:%S",
    "JULIANDAY": "%J",
    "UNIXEPOCH": "%s",
}
_DATETIME_FORMATS = {
    f"%Y-%m-%d{sep}%H:%M:{sec}{z}" for sep in (" ", "T") for sec in ("%S", "%f") for z in ("", "Z")
}
_TIME_FORMATS = {"%H:%M:%S", "%H:%M:%f"}


@dataclass(frozen=True)
class NowCall:
    """A call that reads the clock: its strftime format and whether SQLite returns a number."""

    local: bool
    fmt: str
    numeric: bool = False


def _now_function(tokens: list[Token]) -> NowCall | None:
    """Recognise CURRENT_TIMESTAMP, datetime('now'[, 'localtime']), strftime(fmt, 'now'),
    julianday('now'), unixepoch('now') ..."""
    if len(tokens) == 1 and tokens[0].is_word("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME"):
        return NowCall(False, _DEFAULT_FORMATS[tokens[0].text.upper()])
    if len(tokens) < 3 or tokens[0].kind != "word" or tokens[1].text != "(":
        return None
    name = tokens[0].text.upper()
    if name not in ("DATETIME", "DATE", "TIME", "STRFTIME", "JULIANDAY", "UNIXEPOCH"):
        return None
    args, end = paren_group(tokens, 1)
    if end != len(tokens):
        return None
    values = [p for p in split_top(args)]
    if not all(len(p) == 1 and p[0].kind == "str" for p in values):
        return None
    texts = [p[0].text[1:-1].replace("''", "'") for p in values]
    if name == "STRFTIME":
        if not texts:
            return None
        fmt, texts = texts[0], texts[1:]
    else:
        fmt = _DEFAULT_FORMATS[name]
    if not texts or texts[0].lower() != "now":
        return None
    modifiers = [t.lower() for t in texts[1:]]
    if modifiers not in ([], ["localtime"], ["utc"]):
        return None
    return NowCall(modifiers == ["localtime"], fmt, name in ("JULIANDAY", "UNIXEPOCH"))


def _now_value(now: NowCall) -> str:
    """The PostgreSQL expression giving what SQLite's call returns (text, or a number)."""
    if now.fmt == "%s":
        base = EPOCH_NOW if not now.local else "floor(extract(epoch from LOCALTIMESTAMP))::bigint"
        return base if now.numeric else f"{base}::text"
    if now.fmt == "%J":
        if now.local:
            raise Untranslatable("julianday('now', 'localtime')")
        return JULIAN_NOW if now.numeric else f"{JULIAN_NOW}::text"
    base = "LOCALTIMESTAMP" if now.local else NOW_UTC
    return f"to_char({base}, '{_pg_format(now.fmt)}')"


def _typed_now(now: NowCall, pg_kind: str) -> str | None:
    """The clock as a value of the column's own type, where the format names exactly that."""
    base = "LOCALTIMESTAMP" if now.local else NOW_UTC
    fmt = now.fmt
    if pg_kind == "timestamp":
        if fmt in _DATETIME_FORMATS:
            return base
        if fmt == "%Y-%m-%d":
            return f"date_trunc('day', {base})"
    if pg_kind == "timestamptz":
        if fmt in _DATETIME_FORMATS:
            return "CURRENT_TIMESTAMP" if not now.local else f"({base} AT TIME ZONE 'UTC')"
        if fmt == "%Y-%m-%d":
            return f"(date_trunc('day', {base}) AT TIME ZONE 'UTC')"
    if pg_kind == "date" and fmt == "%Y-%m-%d":
        return f"({base})::date"
    if pg_kind == "time" and fmt in _TIME_FORMATS:
        return f"({base})::time"
    if pg_kind in ("smallint", "integer", "bigint", "numeric", "double") and fmt == "%s":
        return _now_value(NowCall(now.local, fmt, numeric=True))
    if pg_kind in ("numeric", "double") and fmt == "%J":
        return _now_value(NowCall(now.local, fmt, numeric=True))
    return None


def _pg_format(strftime_format: str) -> str:
    """An strftime format as a to_char pattern (inside an SQL string literal). Literal text is
    double-quoted so to_char never reads it as a pattern ('T' after 'DD' would be 'TH')."""
    out: list[str] = []
    literal = ""
    i = 0
    while i < len(strftime_format):
        ch = strftime_format[i]
        if ch == "%" and i + 1 < len(strftime_format):
            code = strftime_format[i + 1]
            i += 2
            if code == "%":
                literal += "%"
                continue
            if code not in _STRFTIME:
                raise Untranslatable(f"strftime format {strftime_format!r}")
            if literal:
                out.append(_to_char_literal(literal))
                literal = ""
            out.append(_STRFTIME[code])
            continue
        if ch == "%":
            raise Untranslatable(f"strftime format {strftime_format!r}")
        literal += ch
        i += 1
    if literal:
        out.append(_to_char_literal(literal))
    return "".join(out).replace("'", "''")


def _to_char_literal(text: str) -> str:
    if all(ch in " -:/.,;" for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _join(pieces: list[str]) -> str:
    out = ""
    for p in pieces:
        if out and not (p in (")", ",", ".") or out.endswith(("(", "."))):
            out += " "
        out += p
    return out
