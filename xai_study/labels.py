"""The one reader of labelled video lists (``labels.csv``).

Every command that takes ``--data LABELS.csv`` (``train``, ``evaluate-detector``,
``evaluate``, ``build-study``) reads it here, so they accept the same file.

Columns (names are case-insensitive):

- ``path`` (or ``video`` / ``file``): the video, relative to the CSV's folder or absolute;
- ``label``: ``fake`` (also ``1``, ``true``, ``manipulated``, ``deepfake``) or ``real``
  (also ``0``, ``false``, ``original``, ``pristine``);
- optional ``video_id`` (or ``id``; default: the path as written, which is unique where
  file names are not, e.g. ``fake/001.mp4`` and ``real/001.mp4``), ``split``
  (``train`` / ``val`` / ``test``; ``validation``, ``valid`` and ``dev`` mean ``val``,
  ``eval`` means ``test``; empty when the file has no such column), ``method``, ``source_identity`` (the person
  shown; identity-disjoint splits and clustered intervals use it), ``target_video_id`` (the
  real video a fake was made from) and ``mask_path`` (or ``mask``: the ground-truth
  manipulation mask ``.npz`` of a fake, see :mod:`xai_study.data.masks`).

Asking for a split that has no rows is an error that names the splits there are; so is
asking for a split of a file without a ``split`` column, unless the caller says the split
applies only "when present" (``build-study``'s default ``--split test``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from xai_study.errors import XaiStudyError

FAKE_LABELS = frozenset({"fake", "1", "true", "manipulated", "deepfake"})
REAL_LABELS = frozenset({"real", "0", "false", "pristine", "original"})
SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "eval": "test"}
PATH_COLUMNS = ("path", "video", "file")


@dataclass(frozen=True)
class VideoRecord:
    """One row of a labels file."""

    video_id: str
    path: Path  # absolute (resolved against the CSV's folder)
    path_text: str  # as written in the file
    label: str  # "fake" or "real"
    split: str = ""
    method: str = ""
    identity: str = ""  # source_identity: the person shown
    source: str = ""  # target_video_id: the real video a fake was made from
    mask: Path | None = None

    @property
    def is_fake(self) -> bool:
        return self.label == "fake"


def parse_label(value: str) -> str | None:
    """``fake`` / ``real`` for any accepted spelling, else None."""
    v = str(value).strip().lower()
    if v in FAKE_LABELS:
        return "fake"
    if v in REAL_LABELS:
        return "real"
    return None


def canonical_split(value: str) -> str:
    v = str(value).strip().lower()
    return SPLIT_ALIASES.get(v, v)


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise XaiStudyError(f"{path}: no such labels file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
            rows = [
                {k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader
            ]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise XaiStudyError(f"{path}: not a readable CSV file ({exc})") from None
    return fields, rows


def _absolute(csv_path: Path, text: str) -> Path:
    p = Path(text)
    return p if p.is_absolute() else csv_path.parent / p


def _record(csv_path: Path, line: int, row: dict[str, str], path_col: str) -> VideoRecord:
    rel = row[path_col]
    if not rel:
        raise XaiStudyError(f"{csv_path}, line {line}: empty {path_col!r}")
    label = parse_label(row.get("label", ""))
    if label is None:
        raise XaiStudyError(
            f"{csv_path}, line {line}: label must be fake/real or 1/0, got {row.get('label')!r}"
        )
    video_path = _absolute(csv_path, rel)
    mask_text = row.get("mask_path") or row.get("mask") or ""
    return VideoRecord(
        video_id=row.get("video_id") or row.get("id") or rel,
        path=video_path,
        path_text=rel,
        label=label,
        split=canonical_split(row.get("split", "")),
        method=row.get("method", ""),
        identity=row.get("source_identity", ""),
        source=row.get("target_video_id", ""),
        mask=_absolute(csv_path, mask_text) if mask_text else None,
    )


def read_labels(
    csv_path: str | os.PathLike,
    split: str | None = None,
    limit: int | None = None,
    split_if_present: bool = False,
) -> list[VideoRecord]:
    """The videos of a labels file, in file order (see the module docstring).

    ``split`` keeps that split's rows (an error when it has none; with
    ``split_if_present``, a file without a ``split`` column keeps every row); ``limit``
    keeps at most
    that many fake and that many real videos (the first of each label, so a subset stays
    balanced). A video id listed twice is an error.
    """
    path = Path(csv_path)
    fields, rows = _read_rows(path)
    path_col = next((c for c in PATH_COLUMNS if c in fields), None)
    if path_col is None or "label" not in fields:
        raise XaiStudyError(
            f"{path}: needs the columns 'path' (or 'video'/'file') and 'label', "
            f"found: {', '.join(fields) or 'none'}"
        )
    if not rows:
        raise XaiStudyError(f"{path}: the labels file has no rows")
    if limit is not None and limit < 1:
        raise XaiStudyError("--limit must be at least 1")
    records: list[VideoRecord] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        rec = _record(path, line, row, path_col)
        if rec.video_id in seen:
            raise XaiStudyError(f"{path}, line {line}: video {rec.video_id!r} is listed twice")
        seen.add(rec.video_id)
        records.append(rec)
    if split is not None and not (split_if_present and "split" not in fields):
        if "split" not in fields:
            raise XaiStudyError(
                f"{path}: split {split!r} asked for, but there is no 'split' column"
            )
        records = select_split(records, split, str(path))
    if limit:
        records = balanced_subset(records, limit)
    return records


def select_split(records: list[VideoRecord], split: str, where: str = "") -> list[VideoRecord]:
    """The records of ``split``; an error naming the splits there are when it is empty."""
    wanted = canonical_split(split)
    chosen = [r for r in records if r.split == wanted]
    if not chosen:
        have = ", ".join(sorted({r.split for r in records})) or "none"
        raise XaiStudyError(f"{where or 'labels'}: no videos in split {split!r} (splits: {have})")
    return chosen


def balanced_subset(records: list[VideoRecord], limit: int) -> list[VideoRecord]:
    """At most ``limit`` fake and ``limit`` real records, the first of each, in order."""
    taken = {"fake": 0, "real": 0}
    kept = []
    for r in records:
        if taken[r.label] < limit:
            taken[r.label] += 1
            kept.append(r)
    return kept


def interleave(records: list[VideoRecord]) -> list[VideoRecord]:
    """Alternate fake and real videos (each in file order), so that a run stopped early
    has done about as many of each."""
    fakes = [r for r in records if r.is_fake]
    reals = [r for r in records if not r.is_fake]
    out: list[VideoRecord] = []
    for i in range(max(len(fakes), len(reals))):
        out += fakes[i : i + 1] + reals[i : i + 1]
    return out
