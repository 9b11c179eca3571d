"""``xai-study calibrate`` (fit a calibration of P(fake) on a labelled split and store it
in a project checkpoint) and ``xai-study convert`` (an icpr2020dfdc state dict -> a
project checkpoint, so that thresholds and a calibration can be stored on it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.errors import XaiStudyError


@dataclass
class CalibrationRun:
    """What ``calibrate`` did: the stored ``meta["calibration"]`` entry, the threshold
    before and after (``None`` without a stored one) and the checkpoint written."""

    entry: dict[str, Any]
    checkpoint: Path
    threshold: dict[str, Any] | None = None
    decisions_changed: int = 0


def _project_checkpoint(path: Path) -> dict[str, Any]:
    from xai_study.detectors.checkpoint import FORMAT, read_checkpoint
    from xai_study.detectors.icpr import is_icpr_state

    obj = read_checkpoint(path)
    if obj.get("format") != FORMAT:
        if is_icpr_state(obj):
            raise XaiStudyError(
                f"{path}: an icpr2020dfdc state dict; write a project checkpoint first with "
                f"`xai-study convert {path} --out CHECKPOINT.pt`"
            )
        raise XaiStudyError(f"{path}: not an xai-study detector checkpoint")
    return obj


def calibrate_checkpoint(
    checkpoint: str | os.PathLike,
    data: str,
    split: str = "val",
    frames: int = 32,
    method: str = "temperature",
    bins: int = 10,
    cache_dir: str | None = None,
    progress: bool = True,
    command: str | None = None,
    out: str | os.PathLike | None = None,
) -> CalibrationRun:
    """Fit ``method`` (temperature or Platt scaling of the video logit) by maximum
    likelihood on the videos of ``split`` and store it in the checkpoint's metadata; a
    stored threshold is re-expressed on the new scale (same decisions). Any earlier
    calibration is replaced (the fit always starts from the raw logits). With ``out``,
    also ``calibration.json`` (the stored entry) and ``per_video.csv`` (each fitted
    video's label, identity, raw video logit, raw and calibrated P(fake))."""
    from xai_study.detectors.calibration import (
        METHODS,
        Calibration,
        calibration_measures,
        fit_calibration,
    )
    from xai_study.detectors.checkpoint import load_detector, resolve_model, write_checkpoint_dict
    from xai_study.detectors.contract import aggregate_logits, video_logit
    from xai_study.detectors.data import build_faceset, read_labels, select_split
    from xai_study.detectors.evaluate import clean_json, score_faceset
    from xai_study.labels import canonical_split

    if method not in METHODS:
        raise XaiStudyError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if frames < 1:
        raise XaiStudyError("--frames must be at least 1")
    if bins < 1:
        raise XaiStudyError("--bins must be at least 1")
    path = resolve_model(checkpoint)
    obj = _project_checkpoint(path)
    det = load_detector(path)
    items = select_split(read_labels(data), split, data)
    faces = build_faceset(
        items, frames, det.input_size, cache_dir=cache_dir, progress=progress, desc="faces"
    )
    logits = score_faceset(det, faces, progress=progress)
    how = det.config.get("aggregation", "mean_logit")
    per_video = [logits[faces.video == v] for v in range(len(faces.items))]
    z = np.array([video_logit(fl, how) for fl in per_video])
    y = faces.video_labels()
    try:
        cal, at_bound = fit_calibration(z, y, method)
    except XaiStudyError as exc:
        raise XaiStudyError(f"calibrate: {exc} (split {split!r} of {data})") from None
    raw = np.array([aggregate_logits(fl, how) for fl in per_video])
    after = np.array([cal.video_p(fl, how) for fl in per_video])
    identities = {it.identity or f"video:{it.video_id}" for it in faces.items}
    entry = dict(
        cal.to_meta(),
        fitted_on={
            "data": str(data),
            "split": canonical_split(split),
            "frames_per_video": frames,
            "aggregation": how,
            "n_videos": len(faces.items),
            "n_fake": int(y.sum()),
            "n_real": int(len(y) - y.sum()),
            "n_identities": len(identities),
            "skipped": len(faces.skipped),
        },
        fit={
            "bins": bins,
            "raw": calibration_measures(raw, y, bins),
            "calibrated": calibration_measures(after, y, bins),
        },
        at_bound=bool(at_bound),
        command=command or "",
    )
    meta = obj.setdefault("meta", {})
    old_cal = Calibration.from_meta(meta.get("calibration"), str(path))
    threshold = None
    changed = 0
    stored = meta.get("threshold")
    if isinstance(stored, dict) and "p_fake" in stored:
        t_raw = float(stored.get("p_fake_raw", old_cal.raw_from_p(float(stored["p_fake"]))))
        t_cal = cal.p_from_raw(t_raw)
        changed = int(np.sum((raw >= t_raw) != (after >= t_cal)))
        threshold = {"before": float(stored["p_fake"]), "after": t_cal, "raw": t_raw}
        meta["threshold"] = dict(stored, p_fake=t_cal, p_fake_raw=t_raw)
    meta["calibration"] = clean_json(entry)
    write_checkpoint_dict(obj, path)
    if out is not None:
        _write_fit(Path(out), meta["calibration"], faces, z, raw, after)
    return CalibrationRun(
        entry=entry, checkpoint=path, threshold=threshold, decisions_changed=changed
    )


def _write_fit(out: Path, entry, faces, z, raw, after) -> None:
    import csv

    from xai_study.detectors.evaluate import dump_json

    dump_json(entry, out / "calibration.json")
    with (out / "per_video.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video_id", "label", "identity", "video_logit", "p_fake_raw", "p_fake"])
        for v, it in enumerate(faces.items):
            w.writerow(
                [it.video_id, "fake" if it.label else "real", it.identity,
                 f"{z[v]:.6f}", f"{raw[v]:.8g}", f"{after[v]:.8g}"]
            )  # fmt: skip


def convert_checkpoint(
    source: str | os.PathLike,
    out: str | os.PathLike,
    half: bool = False,
    force: bool = False,
    command: str | None = None,
) -> Path:
    """Write the project checkpoint of an icpr2020dfdc state dict (``plain`` for
    EfficientNetB4-style files, ``bonettini`` for EfficientNetAutoAttB4), with the source
    file's name and SHA-256 in its metadata. Refuses other inputs and, unless ``force``,
    an existing ``out``."""
    from xai_study.detectors.checkpoint import (
        file_sha256,
        load_detector,
        read_checkpoint,
        resolve_model,
        save_checkpoint,
    )
    from xai_study.detectors.icpr import is_icpr_state

    src = resolve_model(source)
    if not is_icpr_state(read_checkpoint(src)):
        raise XaiStudyError(f"{source}: not an icpr2020dfdc state dict (nothing to convert)")
    target = Path(out)
    if target.exists() and not force:
        raise XaiStudyError(f"{target} exists (use --force to overwrite it)")
    if target.resolve() == src.resolve():
        raise XaiStudyError("--out must differ from the icpr2020dfdc file")
    det = load_detector(src)
    meta = dict(
        det.meta,
        converted_from={"file": src.name, "sha256": file_sha256(src)},
        command=command or "",
    )
    return save_checkpoint(det, target, meta=meta, half=half)
