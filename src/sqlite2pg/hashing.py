"""Row fingerprints computed inside SQLite, and the canonical text of a primary key.

Everything here is built so that the per-row work happens in SQLite's C code, not in Python:

* A row's *text* is ``quote(c1)||','||quote(c2)||...``. ``quote()`` is exact for every storage
  class (integers, REALs with all their digits, text, blobs as ``X'..'``, NULL) and tells an
  integer ``1`` from a text ``'1'``, so two rows have the same text only if they hold the same
  values.
* A *bucket* is 64 consecutive rowids (``rowid >> 6``). SQLite concatenates the texts of a
  bucket's rows in rowid order (``group_concat`` over a rowid-ordered scan) and Python hashes
  the whole bucket string once (BLAKE2b, 8 bytes, as a signed 64-bit integer).
* A *key text* is the same quote-concatenation over the primary-key columns. It is exact and
  parses back into the original typed values with :func:`parse_keys` (used for deletes, and by
  the change-log triggers, which write key texts from inside the application's transactions).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import struct
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .source import balanced, qi

BUCKET_BITS = 6  # a bucket (one row of state in the target): 64 rowids
BUCKET_ROWS = 1 << BUCKET_BITS
MAX_ROWID = 2**63 - 1
SUB_BITS = 4  # a sub-bucket (the unit re-read when it differs): 16 rowids
SUB_ROWS = 1 << SUB_BITS
SUBS = 1 << (BUCKET_BITS - SUB_BITS)
SUB_PACK = struct.Struct(f">{SUBS}q{SUBS}i")  # sub-bucket hashes, then their row counts


@dataclass(frozen=True)
class Bucket:
    bucket: int
    h: int  # hash of the sub-bucket hashes
    n: int  # rows
    subs: bytes  # SUB_PACK of the sub-bucket hashes (0: no rows) and row counts
    keys: bytes | None  # key texts in rowid order, when asked for


def _bucket(
    bucket: int, subs: list[int], counts: list[int], keys: list[bytes], with_keys: bool
) -> Bucket:
    packed = SUB_PACK.pack(*subs, *counts)
    return Bucket(
        bucket, h64(packed), sum(counts), packed, KEY_SEP.join(keys) if with_keys else None
    )


def unpack_subs(data: bytes | None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(sub-bucket hashes, their row counts), or None when not known."""
    if not data or len(data) != SUB_PACK.size:
        return None
    values = SUB_PACK.unpack(data)
    return values[:SUBS], values[SUBS:]


CHUNK_BUCKETS = 64  # buckets per query (measured: per-query overhead is ~20% at one bucket)
CHUNK_BYTES = 8 << 20  # at most about this much row text per query
KEY_SEP = b"\x1e"  # between the key texts of a bucket


def h64(data: bytes) -> int:
    """A signed 64-bit hash (fits PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def text_expr(columns: Sequence[str], prefix: str = "") -> str:
    """SQL building the exact text of a row (or key) from ``columns``."""
    if not columns:
        return "''"
    return "||','||".join(f"quote({prefix}{qi(c)})" for c in columns)


def key_text_expr(columns: Sequence[str], integer_columns: Sequence[str] = ()) -> str:
    """:func:`text_expr` of a key, cheaper when every key column is known to hold integers only
    (never NULL) in the snapshot being read: an integer concatenates to the same digits that
    ``quote()`` gives it (measured: a fifth off fingerprinting a two-integer-key table)."""
    if columns and all(c in integer_columns for c in columns):
        return "||','||".join(qi(c) for c in columns)
    return text_expr(columns)


def realish(declared: str) -> bool:
    """Columns where REAL values are ordinary (REAL affinity, or NUMERIC/DECIMAL types)."""
    d = declared.upper()
    if "INT" in d or any(k in d for k in ("CHAR", "CLOB", "TEXT")) or "BLOB" in d or not d:
        return False
    return any(k in d for k in ("REAL", "FLOA", "DOUB", "NUM", "DEC"))


def _json(args: Sequence[str]) -> str:
    """json_array over any number of arguments (SQLite allows 127 per call): nested in 100s."""
    if len(args) <= 100:
        return f"json_array({', '.join(args)})"
    return _json([_json(args[i : i + 100]) for i in range(0, len(args), 100)])


def row_text_expr(
    columns: Sequence[str], real_columns: Sequence[str] = (), clean_columns: Sequence[str] = ()
) -> str:
    """SQL building an exact text of a row, cheaply.

    ``json_array`` renders integers, text (escaped) and NULL exactly, in one call, about three
    times cheaper than ``quote()`` per column. It would render a REAL with 15 digits and
    refuse a BLOB, so columns where REALs are ordinary go through ``quote()`` inside it, and a
    row holding a REAL or a BLOB anywhere else is rendered with ``quote()`` (text as hex)
    throughout. The two forms cannot collide: only the JSON one starts with '['.

    ``clean_columns`` are known to hold no REAL or BLOB in the snapshot being read (the full
    load's profile proved it): they are left out of that test (on an integer-only table it is
    about a fifth of the time) and the text comes out byte for byte the same."""
    if not columns:
        return "''"

    def exact(c: str) -> str:  # quote() stops at a NUL in text: text goes as 'T' + its hex
        return f"iif(typeof({qi(c)}) = 'text', 'T' || hex({qi(c)}), quote({qi(c)}))"

    inner = _json([exact(c) if c in real_columns else qi(c) for c in columns])
    others = [c for c in columns if c not in real_columns and c not in clean_columns]
    if not others:
        return inner
    odd = balanced([f"typeof({qi(c)}) IN ('real', 'blob')" for c in others], "OR")
    fallback = balanced([exact(c) for c in columns], "|| ',' ||")
    return f"iif({odd}, {fallback}, {inner})"


_TOKEN = re.compile(
    rb"'((?:[^']|'')*)'"  # text
    rb"|[xX]'([0-9A-Fa-f]*)'"  # blob
    rb"|(NULL)"
    rb"|(-?Inf)"
    rb"|([-+]?[0-9][0-9.eE+-]*)"  # integer or real
    rb"|(,)|(\x1e)",
    re.DOTALL,
)


_INTS = re.compile(rb"-?[0-9]+(?:[,\x1e]-?[0-9]+)*")


def parse_keys(data: bytes) -> list[tuple[object, ...]]:
    """Key texts (``KEY_SEP``-separated) -> tuples of typed values, exactly as stored."""
    out: list[tuple[object, ...]] = []
    if not data:
        return out
    if _INTS.fullmatch(data):  # the common cases: integer keys, single or composite
        if b"," not in data:
            return [(int(x),) for x in data.split(KEY_SEP)]
        return [tuple(int(v) for v in k.split(b",")) for k in data.split(KEY_SEP)]
    current: list[object] = []
    pos = 0
    n = len(data)
    while pos < n:
        m = _TOKEN.match(data, pos)
        if m is None:
            raise ValueError(f"not a key text at {pos}: {data[pos : pos + 40]!r}")
        pos = m.end()
        text, blob, null, inf, num, comma, sep = m.groups()
        if comma is not None:
            continue
        if sep is not None:
            out.append(tuple(current))
            current = []
            continue
        if text is not None:
            raw = text.replace(b"''", b"'")
            try:
                current.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                current.append(raw)  # not valid UTF-8: such a row is rejected anyway
        elif blob is not None:
            current.append(bytes.fromhex(blob.decode()))
        elif null is not None:
            current.append(None)
        elif inf is not None:
            current.append(float("-inf") if inf.startswith(b"-") else float("inf"))
        else:
            assert num is not None
            s = num.decode()
            current.append(float(s) if any(ch in s for ch in ".eE") else int(s))
    out.append(tuple(current))
    return out


def key_texts(sconn: sqlite3.Connection, keys: Sequence[Sequence[object]]) -> list[bytes]:
    """The key texts of typed key tuples, computed by SQLite's own quote()."""
    out: list[bytes] = []
    if not keys:
        return out
    width = len(keys[0])
    expr = "||','||".join(["quote(?)"] * width)
    old = sconn.text_factory
    sconn.text_factory = bytes
    try:
        for k in keys:
            row = sconn.execute(f"SELECT {expr}", tuple(k)).fetchone()
            out.append(row[0])
    finally:
        sconn.text_factory = old
    return out


class BucketReader:
    """Bucket fingerprints of one rowid table, read inside the caller's snapshot."""

    def __init__(
        self,
        sconn: sqlite3.Connection,
        table: str,
        columns: Sequence[str],
        key_columns: Sequence[str],
        real_columns: Sequence[str] = (),
        clean_columns: Sequence[str] = (),
        integer_columns: Sequence[str] = (),
    ) -> None:
        """``clean_columns`` and ``integer_columns``: what the snapshot is known to hold (see
        :func:`row_text_expr` and :func:`key_text_expr`); the texts are the same without them."""
        self.sconn = sconn
        self.table = qi(table)
        self.row_expr = row_text_expr(columns, real_columns, clean_columns)
        self.key_expr = key_text_expr(key_columns, integer_columns)

    def _bounds(self) -> tuple[int, int] | None:
        # two queries: SQLite answers min() or max() alone from the b-tree, both at once by a scan
        lo = self.sconn.execute(f"SELECT min(rowid) FROM {self.table}").fetchone()[0]
        if lo is None:
            return None
        hi = self.sconn.execute(f"SELECT max(rowid) FROM {self.table}").fetchone()[0]
        return int(lo), int(hi)

    def hashes(self, *, with_keys: bool = False) -> Generator[Bucket, None, None]:
        """Every non-empty bucket in rowid order, with its sub-bucket fingerprints.

        Work goes by chunks of CHUNK_BUCKETS buckets, one query each. A chunk holding every
        one of its rowids (the usual case: rows inserted and rarely deleted) is concatenated
        whole by SQLite and cut into sub-buckets by Python (see :func:`_dense`); any other
        chunk is grouped by sub-bucket (16 rowids) in SQLite. Python hashes each sub-bucket's
        string once, and a bucket's hash is the hash of its sub-buckets' hashes. A range
        without rows (a gap in the rowids) is skipped by asking for the next rowid. The
        concatenation follows the scan's rowid order; should a future SQLite group rows in
        another order, buckets would merely look changed once (their rows are then compared
        one by one), never the reverse."""
        bounds = self._bounds()
        if bounds is None:
            return
        keys = ", group_concat(k, char(30))" if with_keys else ""
        inner = f"SELECT rowid, {self.row_expr} AS s" + (
            f", {self.key_expr} AS k" if with_keys else ""
        )
        inner += f" FROM {self.table} WHERE rowid BETWEEN ? AND ? ORDER BY rowid"
        grouped = (
            f"SELECT rowid >> {SUB_BITS}, group_concat(s, char(30)), count(*){keys} FROM "
            f"({inner}) GROUP BY 1"
        )
        whole = f"SELECT group_concat(s, char(30)){keys} FROM ({inner})"
        count = f"SELECT count(*) FROM {self.table} WHERE rowid BETWEEN ? AND ?"
        nxt = f"SELECT min(rowid) FROM {self.table} WHERE rowid > ?"
        span = BUCKET_ROWS  # until a chunk shows how wide the rows' texts are
        old = self.sconn.text_factory
        self.sconn.text_factory = bytes
        try:
            execute = self.sconn.execute
            lo = (bounds[0] >> BUCKET_BITS) << BUCKET_BITS
            while lo <= bounds[1]:
                hi = min(lo + span - 1, MAX_ROWID)
                n = execute(count, (lo, hi)).fetchone()[0]
                if n == 0:
                    following = execute(nxt, (hi,)).fetchone()[0]
                    if following is None:
                        break
                    lo = (int(following) >> BUCKET_BITS) << BUCKET_BITS
                    continue
                chunk = None
                if n == hi - lo + 1:
                    chunk = _dense(lo, n, execute(whole, (lo, hi)).fetchone(), with_keys)
                if chunk is None:
                    chunk = _grouped(execute(grouped, (lo, hi)), with_keys)
                buckets, size = chunk
                yield from buckets
                span = _span(size // n)
                if hi >= MAX_ROWID:
                    break
                lo = hi + 1
        finally:
            self.sconn.text_factory = old

    def sub_keys(self, subs: Sequence[int]) -> dict[int, bytes]:
        """The key texts of the given sub-buckets (only the non-empty ones)."""
        return self._keys(subs, SUB_BITS, SUB_ROWS)

    def keys_of(self, buckets: Sequence[int]) -> dict[int, bytes]:
        """The key texts of the given buckets (only the non-empty ones)."""
        return self._keys(buckets, BUCKET_BITS, BUCKET_ROWS)

    def _keys(self, ids: Sequence[int], bits: int, rows: int) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        q = (
            f"SELECT group_concat(k, char(30)) FROM (SELECT {self.key_expr} AS k "
            f"FROM {self.table} WHERE rowid BETWEEN ? AND ? ORDER BY rowid)"
        )
        old = self.sconn.text_factory
        self.sconn.text_factory = bytes
        try:
            for b in ids:
                lo = b << bits
                row = self.sconn.execute(q, (lo, lo + rows - 1)).fetchone()
                if row[0] is not None:
                    out[b] = row[0]
        finally:
            self.sconn.text_factory = old
        return out


def _span(row_bytes: int) -> int:
    """Rowids per chunk: CHUNK_BUCKETS buckets, fewer when rows are so wide that a chunk's
    whole concatenation would pass CHUNK_BYTES (memory stays flat)."""
    rows = CHUNK_BYTES // max(row_bytes, 1)
    return max(BUCKET_ROWS, min(rows >> BUCKET_BITS, CHUNK_BUCKETS) << BUCKET_BITS)


def _grouped(rows: Iterable[Sequence[Any]], with_keys: bool) -> tuple[list[Bucket], int]:
    """One chunk's buckets (and its texts' bytes) from rows (sub-bucket, texts, count[, keys])
    in order."""
    out = []
    size = 0
    current = None
    subs, counts, klist = [0] * SUBS, [0] * SUBS, list[bytes]()
    for row in rows:
        sub = int(row[0])
        bucket = sub >> (BUCKET_BITS - SUB_BITS)
        if bucket != current:
            if current is not None:
                out.append(_bucket(current, subs, counts, klist, with_keys))
            current, subs, counts, klist = bucket, [0] * SUBS, [0] * SUBS, []
        subs[sub & (SUBS - 1)] = h64(row[1])
        counts[sub & (SUBS - 1)] = int(row[2])
        size += len(row[1])
        if with_keys:
            klist.append(row[3])
    if current is not None:
        out.append(_bucket(current, subs, counts, klist, with_keys))
    return out, size


def _dense(lo: int, n: int, row: Sequence[Any], with_keys: bool) -> tuple[list[Bucket], int] | None:
    """The buckets (and texts' bytes) of a chunk that holds all ``n`` rowids from ``lo`` on,
    cut from the chunk's whole concatenation (row texts[, keys]): the same bytes per
    sub-bucket as grouping in SQLite, without its sorter (measured: 10-15% less CPU on
    Chinook's large tables). None when a text holds the separator itself (a key's text may),
    so a cut could fall inside it, or is NULL: such a chunk is grouped instead."""
    if row[0] is None or (with_keys and row[1] is None):
        return None
    texts = row[0].split(KEY_SEP)
    keys = row[1].split(KEY_SEP) if with_keys else []
    if len(texts) != n or (with_keys and len(keys) != n):
        return None
    out = []
    full = [SUB_ROWS] * SUBS
    for first in range(0, n, BUCKET_ROWS):
        subs = [
            h64(KEY_SEP.join(texts[i : i + SUB_ROWS]))
            for i in range(first, first + BUCKET_ROWS, SUB_ROWS)
        ]
        bucket_keys = keys[first : first + BUCKET_ROWS]
        out.append(_bucket((lo + first) >> BUCKET_BITS, subs, full, bucket_keys, with_keys))
    return out, len(row[0])


def table_fingerprint(
    sconn: sqlite3.Connection, table: str, columns: Sequence[str], real_columns: Sequence[str] = ()
) -> str:
    """One hash of a whole rowid table (for tables reloaded whole: skip when unchanged)."""
    h = hashlib.blake2b(digest_size=16)
    n = 0
    for b in BucketReader(sconn, table, columns, [], real_columns).hashes():
        h.update(b.bucket.to_bytes(8, "big", signed=True) + b.h.to_bytes(8, "big", signed=True))
        n += b.n
    return f"{n}:{h.hexdigest()}"
