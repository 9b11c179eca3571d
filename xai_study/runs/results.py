"""A results CSV that several processes can append to: ``per_video.csv`` of ``evaluate``
and the table of a batch ``detect``.

Rows are appended as they are computed, a whole video's rows in one write under an
exclusive lock on the file (``fcntl.flock``), so concurrent writers (Ray workers'
results arriving at one driver, ``--shard i/n`` jobs writing into one folder) never
interleave or duplicate rows: before appending, a writer reads what the others appended
since it last looked and drops rows that are already there. A row cut short by a process
killed mid-write (no newline at the end of the file) is removed by the next writer. The
keys of the finished rows (``done``) make a rerun resume.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from xai_study.errors import XaiStudyError


def cell(value) -> str:
    """A CSV cell: empty for None and non-finite floats, floats to 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


@contextlib.contextmanager
def locked(fh: BinaryIO) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``fh`` for the block (no-op where there is none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so that a
    concurrent reader sees the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class ResultsTable:
    """A CSV with ``columns`` whose rows are identified by the ``key`` columns."""

    def __init__(
        self, path: Path, columns: Sequence[str], key: Sequence[str], command: str = "evaluate"
    ):
        self.path = Path(path)
        self.columns = list(columns)
        self.key = tuple(key)
        self.command = command
        self.done: set[tuple[str, ...]] = set()
        self._pos = 0  # bytes of complete rows read so far
        self._fh: BinaryIO | None = None
        if self.path.is_file():
            with open(self.path, "rb") as fh:
                self._read_new(fh)

    def _read_new(self, fh: BinaryIO) -> bytes:
        """Read the complete rows appended since the last call; returns the bytes after
        them (a row cut short, or nothing)."""
        fh.seek(self._pos)
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end:
            reader = csv.reader(io.StringIO(data[:end].decode("utf-8"), newline=""))
            if self._pos == 0:
                header = next(reader, None)
                if header != self.columns:
                    raise XaiStudyError(
                        f"{self.path} was not written by this version of '{self.command}' "
                        "(different columns); use another output"
                    )
            where = [self.columns.index(k) for k in self.key]
            for row in reader:
                if len(row) == len(self.columns):
                    self.done.add(tuple(row[i] for i in where))
            self._pos += end
        return data[end:]

    def row_key(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(cell(row.get(k)) for k in self.key)

    def __enter__(self) -> ResultsTable:
        self._fh = open(self.path, "a+b")  # noqa: SIM115
        self.write_rows([])  # the header of a new file
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def write(self, row: dict[str, Any]) -> None:
        self.write_rows([row])

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append ``rows`` (those not already in the file) in one locked write; returns
        how many were written."""
        fh = self._fh
        if fh is None:
            raise RuntimeError("ResultsTable.write_rows outside 'with table:'")
        with locked(fh):
            if self._read_new(fh):  # a writer was killed mid-row: drop its partial row
                fh.truncate(self._pos)
            out = io.StringIO(newline="")
            writer = csv.DictWriter(out, fieldnames=self.columns)
            if self._pos == 0:
                writer.writeheader()
            new = []
            for row in rows:
                k = self.row_key(row)
                if k not in self.done:
                    writer.writerow({c: cell(row.get(c)) for c in self.columns})
                    new.append(k)
                    self.done.add(k)
            if out.tell():
                fh.write(out.getvalue().encode("utf-8"))
                fh.flush()
            fh.seek(0, os.SEEK_END)
            self._pos = fh.tell()
        return len(new)
