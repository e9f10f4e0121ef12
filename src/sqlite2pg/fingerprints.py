"""Bucket fingerprints of several tables computed at once: some in a second process.

Building the row texts is SQLite work that allocates heavily, and SQLite's allocator takes a
process-wide mutex, so a second *thread* does not help (measured); a second *process* does.
It may only read the source when it is certain to see the run's snapshot: the same file
(device and inode) in rollback-journal mode, opened while the run's read transaction holds its
SHARED lock, during which no writer can commit (see :func:`source.twin`). Otherwise, or when
the helper fails or dies, each table is fingerprinted in this process as before.

Results are spooled to temporary files (memory stays flat) and read back in bucket order.

In a full load the helper runs at idle priority (``SCHED_IDLE`` on Linux, else nice 10), so it
only takes CPU that the load and PostgreSQL leave unused (measured: a few percent faster than
nice 10 on two cores). Should the machine be so busy that the helper gets almost no CPU while
the run waits for it, the run stops it and does the rest itself at its own priority.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from .hashing import SUB_PACK, Bucket, BucketReader
from .source import open_twin, twin_source

RECORD = struct.Struct(f">qqiI{SUB_PACK.size}s")
MIN_ROWS = 200_000  # smaller tables are not worth a process start (~0.2 s)
STALL_SECONDS = 2.0  # while the run waits: how often the helper's progress is checked
STALL_CPU = 0.2  # the share of a core below which a waited-for helper counts as starved
log = logging.getLogger("sqlite2pg.fingerprints")


def write_buckets(f: IO[bytes], buckets: Iterable[Bucket]) -> None:
    for b in buckets:
        k = b.keys or b""
        f.write(RECORD.pack(b.bucket, b.h, b.n, len(k), b.subs))
        f.write(k)


def read_buckets(f: IO[bytes]) -> Generator[Bucket, None, None]:
    f.seek(0)
    while True:
        head = f.read(RECORD.size)
        if len(head) < RECORD.size:
            return
        bucket, h, n, klen, subs = RECORD.unpack(head)
        yield Bucket(bucket, h, n, subs, f.read(klen) if klen else None)


@dataclass(frozen=True)
class Job:
    """One table's fingerprints, as :class:`BucketReader` takes them."""

    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    real_columns: tuple[str, ...]
    with_keys: bool
    rows: int  # about how many (the larger tables go to the helper)
    clean_columns: tuple[str, ...] = ()  # no REAL or BLOB in this snapshot (see row_text_expr)
    integer_columns: tuple[str, ...] = ()  # integers only in this snapshot (see key_text_expr)

    def reader(self, conn: sqlite3.Connection) -> BucketReader:
        return BucketReader(
            conn, self.table, self.columns, self.key_columns, self.real_columns,
            self.clean_columns, self.integer_columns,
        )  # fmt: skip


class Helper:
    """The larger tables' fingerprints, computed by a helper process while this one works on
    the others. :meth:`buckets` is None for a table the helper does not (or could not) do.

    The helper is ``python -m sqlite2pg.fingerprints`` (a plain subprocess, not
    multiprocessing, which would re-import the caller's main module): it reads its work as JSON
    on stdin and reports each finished table as a line on stdout."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        jobs: Sequence[Job],
        min_rows: int | None = None,
        *,
        share: float = 0.55,
        background: bool = False,
    ) -> None:
        """``share``: about how much of the work the helper takes; ``background``: at a low
        CPU priority, using what the run and PostgreSQL leave idle (a full load's copy)."""
        self.jobs: dict[str, int] = {}
        self.done: set[int] = set()  # jobs whose file is complete
        self.proc: subprocess.Popen[bytes] | None = None
        self.pending = b""  # output read but not yet a whole line
        self.background = background
        self.dir = ""
        source = twin_source(conn)
        chosen = _share(jobs, MIN_ROWS if min_rows is None else min_rows, share)
        if source is None or not chosen:
            return
        path, identity, version = source
        try:
            self.dir = tempfile.mkdtemp(prefix="sqlite2pg-fp-")
            work = {
                "path": str(path), "identity": list(identity), "version": version,
                "out": self.dir, "parent": os.getpid(), "jobs": [asdict(j) for j in chosen],
                "background": background,
            }  # fmt: skip
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sqlite2pg.fingerprints"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                bufsize=0,
            )  # fmt: skip
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(work).encode())
            self.proc.stdin.close()
        except OSError as exc:
            log.debug("no fingerprint helper: %s", exc)
            self._stop()
            return
        self.jobs = {j.table: i for i, j in enumerate(chosen)}

    def buckets(self, table: str) -> Generator[Bucket, None, None] | None:
        """The table's buckets in order (waits for the helper), or None: compute them here."""
        i = self.jobs.get(table)
        if i is None or not self._wait(i):
            return None
        f = open(Path(self.dir) / f"{i}.bin", "rb")  # noqa: SIM115 (closed below)

        def read() -> Generator[Bucket, None, None]:
            with f:
                yield from read_buckets(f)

        return read()

    def _wait(self, i: int) -> bool:
        while i not in self.done and self.proc is not None:
            line = self._line()
            if not line.startswith("done "):  # failed, died or starved: the rest is done here
                level = logging.INFO if line.startswith("starved") else logging.DEBUG
                log.log(level, "fingerprint helper stopped: %s", line.strip() or "no output")
                self._stop()
                break
            self.done.add(int(line.split()[1]))
        return i in self.done

    def _line(self) -> str:
        """The helper's next line of output; "" at its end, "starved: ..." when a background
        helper gets almost no CPU while this process waits for it."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        used = _cpu_seconds(self.proc.pid)
        while b"\n" not in self.pending:
            if select.select([fd], [], [], STALL_SECONDS)[0]:
                data = os.read(fd, 4096)
                if not data:
                    return ""
                self.pending += data
                continue
            now = _cpu_seconds(self.proc.pid)
            if not self.background or used is None or now is None:
                continue
            if now - used < STALL_CPU * STALL_SECONDS:
                return f"starved: {now - used:.2f} CPU-s in {STALL_SECONDS:.0f} s (machine busy)"
            used = now
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()

    def _stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def close(self) -> None:
        """Stop the helper if it still runs and remove its files."""
        self._stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used so far (Linux's /proc), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _background_priority() -> None:
    """Idle priority where the system has it (Linux), else a low one."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(10)


def _share(jobs: Sequence[Job], min_rows: int, share: float) -> list[Job]:
    """The helper's jobs: the costliest tables (rows times columns: the row texts are the
    work), up to about ``share`` of the total cost and at least the costliest, in the
    caller's order."""

    def cost(j: Job) -> int:
        return j.rows * len(j.columns)

    total = sum(cost(j) for j in jobs)
    taken = 0
    mine: set[str] = set()
    for j in sorted((j for j in jobs if j.rows >= min_rows), key=lambda j: -cost(j)):
        if not mine or taken + cost(j) <= total * share:
            mine.add(j.table)
            taken += cost(j)
    return [j for j in jobs if j.table in mine]


def _main() -> None:
    """In the helper process: fingerprint the jobs from the same snapshot, or say why not."""
    work = json.loads(sys.stdin.read())
    if work.get("background"):
        _background_priority()
    conn = open_twin(Path(work["path"]), tuple(work["identity"]), int(work["version"]))
    if conn is None:
        print("fail: not the same snapshot (busy, replaced or changed)", flush=True)
        return
    try:
        for i, spec in enumerate(work["jobs"]):
            job = Job(
                spec["table"], tuple(spec["columns"]), tuple(spec["key_columns"]),
                tuple(spec["real_columns"]), bool(spec["with_keys"]), int(spec["rows"]),
                tuple(spec["clean_columns"]), tuple(spec["integer_columns"]),
            )  # fmt: skip
            buckets = job.reader(conn).hashes(with_keys=job.with_keys)
            with open(Path(work["out"]) / f"{i}.bin", "wb") as f:
                write_buckets(f, _watched(buckets, int(work["parent"])))
            print(f"done {i}", flush=True)
    except (sqlite3.Error, OSError) as exc:
        print(f"fail: {exc}", flush=True)
    finally:
        conn.close()


def _watched(buckets: Iterator[Bucket], parent: int) -> Iterator[Bucket]:
    """Stop when the run that started us is gone (killed): never hold the source's read lock
    for a run that no longer exists."""
    for n, b in enumerate(buckets):
        if n % 4096 == 0 and os.getppid() != parent:
            os._exit(1)
        yield b


if __name__ == "__main__":
    _main()
