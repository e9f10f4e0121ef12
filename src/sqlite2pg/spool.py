"""A table's COPY text read ahead into a temporary file while PostgreSQL is busy elsewhere.

A full load is one transaction on one connection, so while PostgreSQL builds a table's keys
and indexes this process would wait; instead it reads the next table from SQLite and formats
its COPY text into a temporary file. That table's COPY then starts by sending the file and
goes on straight from SQLite for whatever did not fit under the size limit, so disk use stays
bounded however large the table. A spool that cannot be written (a full disk) is given up and
the table is read again when its turn comes.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from tempfile import TemporaryFile
from typing import IO

LIMIT = 256 << 20  # bytes of COPY text read ahead per table
BLOCK = 1 << 20  # bytes per COPY write when sending the file
log = logging.getLogger("sqlite2pg.spool")


class Spool:
    """Takes chunks of COPY text from ``chunks`` into a temporary file, up to ``limit`` bytes;
    :meth:`replay` gives the file's bytes, then the chunks not taken yet."""

    def __init__(self, chunks: Generator[bytearray, None, None], limit: int | None = None) -> None:
        self.rest = chunks
        self.file: IO[bytes] | None = None
        try:
            self.file = TemporaryFile()  # noqa: SIM115 (closed by close())
            for chunk in chunks:
                self.file.write(chunk)
                if self.file.tell() >= (LIMIT if limit is None else limit):
                    break
        except OSError as exc:
            log.warning("reading ahead failed (%s): the table is read when its turn comes", exc)
            self.close()
            self.file = None

    @property
    def usable(self) -> bool:
        return self.file is not None

    def replay(self) -> Generator[bytes | bytearray, None, None]:
        assert self.file is not None, "replay of a spool that failed"
        try:
            self.file.seek(0)
            while block := self.file.read(BLOCK):
                yield block
        finally:
            self.file.close()
        yield from self.rest

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.rest.close()
