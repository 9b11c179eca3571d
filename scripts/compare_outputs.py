"""Compare two folders written by ``scripts/golden_outputs.sh`` (before / after a change).

Every file present in either folder is compared:

- ``.json``/``.yaml``: parsed, then compared value by value; keys named ``seconds`` (run
  times) are ignored and numbers must agree to ``--rtol`` (default 1e-6);
- ``.csv``: compared cell by cell, numbers to ``--rtol``, the ``seconds`` column ignored;
- ``.npz``: every array, to ``--rtol``;
- ``.md``/``.txt``/``.stdout``: line by line, after removing run times (``12.3 s``) and
  the two folders' own paths (a command prints where it wrote);
- anything else (MP4, PNG): byte for byte, reported separately as "binary differs"
  (H.264 and PNG encoders are deterministic here, so a difference is worth a look).

Exit status 0 when everything agrees, 1 otherwise; one line per difference.

    .venv/bin/python scripts/compare_outputs.py runs/golden_before runs/golden_after
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

IGNORED_KEYS = {"seconds"}
TIME_RE = re.compile(r"\s*(\d+(\.\d+)?\s*s\b|\d+:\d\d(:\d\d)?)")


def _close(a, b, rtol: float) -> bool:
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    if math.isnan(fa) and math.isnan(fb):
        return True
    return math.isclose(fa, fb, rel_tol=rtol, abs_tol=rtol)


def _tree(a, b, rtol: float, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k in IGNORED_KEYS:
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'after' if k not in a else 'before'}")
                continue
            _tree(a[k], b[k], rtol, f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _tree(x, y, rtol, f"{where}[{i}]", out)
    elif isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        if a != b:
            out.append(f"{where}: {a!r} != {b!r}")
    elif isinstance(a, int | float) and isinstance(b, int | float):
        if not _close(a, b, rtol):
            out.append(f"{where}: {a!r} != {b!r}")
    elif a != b:
        out.append(f"{where}: {str(a)[:80]!r} != {str(b)[:80]!r}")


def _load_tree(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text())
    import yaml

    return yaml.safe_load(path.read_text())


def _csv(a: Path, b: Path, rtol: float, rel: str, out: list[str]) -> None:
    ra = list(csv.reader(a.open(newline="")))
    rb = list(csv.reader(b.open(newline="")))
    if not ra or not rb or ra[0] != rb[0]:
        out.append(f"{rel}: header differs: {ra[:1]} != {rb[:1]}")
        return
    header = ra[0]
    if len(ra) != len(rb):
        out.append(f"{rel}: {len(ra) - 1} rows != {len(rb) - 1} rows")
        return
    for i, (x, y) in enumerate(zip(ra[1:], rb[1:], strict=True), start=2):
        for col, u, v in zip(header, x, y, strict=True):
            if col in IGNORED_KEYS:
                continue
            if u != v and not _close(u, v, rtol):
                out.append(f"{rel}:{i} {col}: {u!r} != {v!r}")


def _npz(a: Path, b: Path, rtol: float, rel: str, out: list[str]) -> None:
    import numpy as np

    with np.load(a) as da, np.load(b) as db:
        if sorted(da.files) != sorted(db.files):
            out.append(f"{rel}: arrays {sorted(da.files)} != {sorted(db.files)}")
            return
        for k in da.files:
            x, y = da[k], db[k]
            if x.shape != y.shape:
                out.append(f"{rel}[{k}]: shape {x.shape} != {y.shape}")
            elif x.dtype.kind in "fc":
                if not np.allclose(x, y, rtol=rtol, atol=rtol * max(1.0, float(abs(x).max()))):
                    out.append(f"{rel}[{k}]: max |diff| {float(abs(x - y).max()):.3g}")
            elif not np.array_equal(x, y):
                out.append(f"{rel}[{k}]: differs")


def _text(a: Path, b: Path, rel: str, out: list[str], roots: tuple[str, str]) -> None:
    """Line by line, with run times and the two output folders' own paths masked."""

    def lines(path: Path, root: str) -> list[str]:
        text = path.read_text().replace(root, "<out>")
        return [TIME_RE.sub(" <t>", s) for s in text.splitlines()]

    la, lb = lines(a, roots[0]), lines(b, roots[1])
    if la == lb:
        return
    for i, (x, y) in enumerate(zip(la, lb, strict=False), start=1):
        if x != y:
            out.append(f"{rel}:{i}: {x[:70]!r} != {y[:70]!r}")
            return
    out.append(f"{rel}: {len(la)} lines != {len(lb)} lines")


def compare(before: Path, after: Path, rtol: float = 1e-6) -> tuple[list[str], list[str], int]:
    """(differences, binary differences, files compared)."""
    diffs: list[str] = []
    binary: list[str] = []
    files = sorted(
        {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
        | {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    )
    for rel in files:
        a, b, name = before / rel, after / rel, str(rel)
        if not a.is_file() or not b.is_file():
            diffs.append(f"{name}: only in {'after' if not a.is_file() else 'before'}")
            continue
        suffix = a.suffix.lower()
        if suffix in (".json", ".yaml", ".yml"):
            _tree(_load_tree(a), _load_tree(b), rtol, name, diffs)
        elif suffix == ".csv":
            _csv(a, b, rtol, name, diffs)
        elif suffix == ".npz":
            _npz(a, b, rtol, name, diffs)
        elif suffix in (".md", ".txt", ".stdout"):
            _text(a, b, name, diffs, (str(before), str(after)))
        elif a.read_bytes() != b.read_bytes():
            binary.append(f"{name}: binary differs")
    return diffs, binary, len(files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-6, help="numeric tolerance (1e-6)")
    args = ap.parse_args(argv)
    diffs, binary, n = compare(args.before, args.after, args.rtol)
    for line in diffs + binary:
        print(line)
    print(f"{n} files compared: {len(diffs)} differences, {len(binary)} binary differences")
    return 0 if not diffs and not binary else 1


if __name__ == "__main__":
    sys.exit(main())
