"""Target names: the naming policy, PostgreSQL's 63-byte limit, and names we generate."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

NamingPolicy = Literal["snake_case", "preserve"]
MAX_BYTES = 63

_WORDLIKE = re.compile(r"[A-Za-z0-9_ \-]+\Z")
_BOUNDARY_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_BOUNDARY_2 = re.compile(r"([a-z0-9])([A-Z])")


def apply_policy(name: str, policy: NamingPolicy) -> str:
    """``snake_case`` turns InvoiceLine into invoice_line and ArtistId into artist_id.

    Names made of other characters than letters, digits, spaces, '-' and '_' are kept exactly:
    rewriting them would be guesswork, and quoting keeps them safe as they are.
    """
    if policy == "preserve" or not _WORDLIKE.match(name):
        return name
    s = _BOUNDARY_1.sub(r"\1_\2", name)
    s = _BOUNDARY_2.sub(r"\1_\2", s)
    s = re.sub(r"[ \-]+", "_", s)
    return re.sub(r"_+", "_", s).lower()


def too_long(name: str) -> bool:
    return len(name.encode("utf-8")) > MAX_BYTES


def generated_name(*parts: str, suffix: str) -> str:
    """A constraint/index name like PostgreSQL's own (table_col_fkey), shortened with a hash
    when it would exceed 63 bytes."""
    base = "_".join(p for p in parts if p)
    name = f"{base}_{suffix}"
    if not too_long(name):
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    room = MAX_BYTES - len(suffix) - len(digest) - 2
    short = base.encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{short}_{digest}_{suffix}"
