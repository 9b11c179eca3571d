"""``xai-study build-study``: a study folder from a labelled video set.

For each section a fake video is paired with a real one (seeded shuffle). The fake is
analysed by :func:`xai_study.pipeline.analyse_video` (face clip, then every explainer on
the detector it needs: Grad-CAM and SHAP on the plain detector, LTPA and Bonettini on
their attention detectors), each explanation is rendered as an unlabelled heat-map
animation over the face crops, both videos are
re-encoded as small H.264 MP4s, and ``study.yaml`` is written (with the detector score,
the paper's objective metrics V/tau/rho/mu of every explanation and the run time, so
that the analysis can relate preferences to metrics).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.errors import StudyError, XaiStudyError

#: study explainer name -> (explainer registry name, detector architecture)
EXPLAINERS: dict[str, tuple[str, str]] = {
    "gradcam": ("gradcam", "plain"),
    "shap": ("shap3d", "plain"),
    "ltpa": ("ltpa", "ltpa"),
    "bonettini": ("bonettini", "bonettini"),
}

MAX_VIDEO_SIDE = 320
MAX_VIDEO_FRAMES = 50


def read_labels(data_csv: Path, split: str | None = "test") -> tuple[list[dict], list[dict]]:
    """``(fakes, reals)`` rows of a labels CSV (``path``, ``label`` [, ``video_id``/``id``,
    ``split``]). Rows of ``split`` only when the CSV has a split column and that split
    exists."""
    import pandas as pd

    if not data_csv.is_file():
        raise StudyError(f"labels file not found: {data_csv}")
    try:
        frame = pd.read_csv(data_csv, dtype=str)
    except Exception as exc:
        raise StudyError(f"{data_csv}: not a readable CSV: {exc}") from exc
    missing = {"path", "label"} - set(frame.columns)
    if missing:
        raise StudyError(f"{data_csv}: missing column(s) {', '.join(sorted(missing))}")
    if split and "split" in frame.columns and (frame["split"] == split).any():
        frame = frame[frame["split"] == split]
    idcol = "video_id" if "video_id" in frame.columns else ("id" if "id" in frame.columns else None)
    fakes, reals = [], []
    for i, row in frame.reset_index(drop=True).iterrows():
        label = str(row["label"]).strip().lower()
        if label in ("fake", "1"):
            target = fakes
        elif label in ("real", "0"):
            target = reals
        else:
            raise StudyError(f"{data_csv}: row {i + 2}: label must be real/fake or 0/1")
        path = Path(str(row["path"]))
        if not path.is_absolute():
            path = data_csv.parent / path
        if not path.is_file():
            raise StudyError(f"{data_csv}: row {i + 2}: video not found: {row['path']}")
        vid = str(row[idcol]) if idcol else path.stem
        source = row.get("target_video_id") if "target_video_id" in frame.columns else None
        source = _safe_id(str(source)) if isinstance(source, str) and source.strip() else None
        target.append({"id": _safe_id(vid), "path": path, "source": source})
    return fakes, reals


def pair_videos(fakes: list[dict], reals: list[dict], n: int, seed: int) -> list[tuple]:
    """``n`` (fake, real) pairs: each fake with the real video it was made from when the
    labels name it (``target_video_id``: same scene, only the face differs, as a viewer
    would need to tell them apart), the other fakes with the remaining reals at random.
    Fakes are drawn in a seeded random order."""
    rng = random.Random(seed)
    fakes = list(fakes)
    rng.shuffle(fakes)
    fakes = fakes[:n]
    free = {r["id"]: r for r in reals}
    pairs: list[tuple | None] = []
    for fake in fakes:
        real = free.pop(fake.get("source") or "", None)
        pairs.append((fake, real) if real is not None else None)
    rest = list(free.values())
    rng.shuffle(rest)
    out = []
    for fake, pair in zip(fakes, pairs, strict=True):
        out.append(pair if pair is not None else (fake, rest.pop()))
    return out


def _safe_id(value: str) -> str:
    keep = "".join(c if c.isalnum() or c in "_.-" else "_" for c in value)[:100]
    return keep if keep and keep[0].isalnum() else f"v{keep}"[:100]


def _opaque_name(section: str, role: str, seed: int) -> str:
    """A media file name that does not reveal which video is fake or which explainer
    made an animation (participants can see file names in the page's URLs)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}:{section}:{role}".encode()).hexdigest()[:10]
    return f"{section}_{digest}.mp4"


def _small_video(src: Path, dst: Path) -> None:
    """Re-encode for the browser: at most 50 frames (same duration), at most 320 px."""
    import cv2

    from xai_study.video import read_video, write_video

    vf = read_video(src, num_frames=MAX_VIDEO_FRAMES)
    frames = vf.frames
    h, w = frames.shape[1:3]
    scale = min(1.0, MAX_VIDEO_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    duration = vf.duration if vf.duration and vf.duration > 0 else len(frames) / 25.0
    fps = min(30.0, max(1.0, len(frames) / duration))
    write_video(frames, dst, fps=fps, crf=28)


def build_study(
    data_csv: Path,
    out_dir: Path,
    *,
    sections: int | None = None,
    shown: int | None = None,
    models: dict[str, str] | None = None,
    explainers: list[str] | None = None,
    explainer_params: dict[str, dict[str, Any]] | None = None,
    preset: str = "fast",
    num_frames: int | None = 16,
    seed: int = 0,
    split: str | None = "test",
    title: str | None = None,
    q2_mode: str = "single",
    attention_check: bool = True,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Build the study folder ``out_dir``; returns the path of ``study.yaml``.

    ``explainer_params`` is keyed by study explainer name (``shap``, ...) and overrides
    the ``preset``'s parameters."""
    from tqdm import tqdm

    from xai_study.study.spec import write_study

    explainers = explainers or list(EXPLAINERS)
    unknown = [e for e in explainers if e not in EXPLAINERS]
    if unknown:
        raise StudyError(
            f"unknown study explainer(s) {', '.join(unknown)} (choose from {', '.join(EXPLAINERS)})"
        )
    if len(explainers) < 2:
        raise StudyError("a study needs at least 2 explainers")
    if num_frames is not None and num_frames < 2:
        raise StudyError("--frames must be at least 2")
    fakes, reals = read_labels(data_csv, split)
    available = min(len(fakes), len(reals))
    if available == 0:
        raise StudyError(f"{data_csv}: needs at least one real and one fake video")
    n = sections or available
    if not 1 <= n <= available:
        raise StudyError(
            f"--sections must be from 1 to {available} ({len(fakes)} fake, {len(reals)} real)"
        )
    if shown is not None and not 1 <= shown <= n:
        raise StudyError(f"--shown must be from 1 to {n}")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise StudyError(f"{out_dir} exists and is not empty (use --force to replace it)")
        shutil.rmtree(out_dir)
    media = out_dir / "media"
    media.mkdir(parents=True, exist_ok=True)

    pairs = pair_videos(fakes, reals, n, seed)

    from xai_study.metrics import paper_metrics
    from xai_study.pipeline import analyse_video, get_detector
    from xai_study.render import render_overlay, save_animation

    models = {"plain": "plain", "bonettini": "bonettini", "ltpa": "ltpa", **(models or {})}
    needed = sorted({EXPLAINERS[e][1] for e in explainers} | {"plain"})
    detectors = {arch: get_detector(str(models[arch])) for arch in needed}  # fail early
    reg_names = [EXPLAINERS[e][0] for e in explainers]
    params = {EXPLAINERS[e][0]: dict(v) for e, v in (explainer_params or {}).items() if v}

    section_rows = []
    bar = tqdm(total=n, desc="build-study", unit="section", disable=not progress)
    try:
        for i, (fake, real) in enumerate(pairs, 1):
            sid = f"s{i:02d}"
            bar.set_postfix_str(f"{sid} {fake['id']}")
            try:
                analysis = analyse_video(
                    fake["path"],
                    explainers=reg_names,
                    preset=preset,
                    num_frames=num_frames,
                    detectors=detectors,
                    params=params,
                    render=False,
                )
            except XaiStudyError as exc:
                raise StudyError(f"{fake['path'].name}: {exc}") from exc
            fake_name = _opaque_name(sid, "fake", seed)
            real_name = _opaque_name(sid, "real", seed)
            _small_video(fake["path"], media / fake_name)
            _small_video(real["path"], media / real_name)
            crops = analysis.clip.frames
            fps = max(2.0, min(12.0, len(crops) / 2.0))
            anims: dict[str, str] = {}
            meta: dict[str, Any] = {
                "p_fake": round(float(analysis.p_fake), 6),
                "metrics": {},
                "seconds": {},
            }
            for name, reg in zip(explainers, reg_names, strict=True):
                expl = analysis.explanations[reg]
                frames = render_overlay(crops, expl.normalised, legend=False)  # unlabelled
                path = save_animation(frames, media / _opaque_name(sid, name, seed), fps=fps)
                anims[name] = str(path.relative_to(out_dir))
                metrics = paper_metrics(expl.maps, signed=expl.signed)
                meta["metrics"][name] = {
                    k: (None if v is None or not np.isfinite(v) else round(float(v), 6))
                    for k, v in metrics.items()
                }
                meta["seconds"][name] = round(float(expl.seconds), 3)
            section_rows.append(
                {
                    "id": sid,
                    "video_id": fake["id"],
                    "real_video_id": real["id"],
                    "real": f"media/{real_name}",
                    "fake": f"media/{fake_name}",
                    "animations": anims,
                    "meta": meta,
                }
            )
            bar.update()
    finally:
        bar.close()
    n_shown = shown or n
    data: dict[str, Any] = {
        "name": _safe_id(out_dir.resolve().name),
        "title": title or "Which explanation of a deepfake detector do you prefer?",
        "sections_shown": n_shown,
        "q2_mode": q2_mode,
        "explainers": explainers,
        "completion_code": f"XS-{_safe_id(out_dir.resolve().name).upper()}-{seed:04d}",
        "redirect_url": "",
        "attention_checks": (
            [
                {
                    "id": "ac1",
                    "after": max(1, n_shown // 2),
                    "question": "This question checks attention: please choose 'Blue'.",
                    "choices": ["Red", "Blue", "Green"],
                    "answer": "Blue",
                }
            ]
            if attention_check
            else []
        ),
        "built_with": {
            "data": str(data_csv),
            "models": {a: str(models[a]) for a in needed},
            "preset": preset,
            "frames": num_frames,
            "seed": seed,
            "explainer_params": {e: v for e, v in (explainer_params or {}).items() if v},
        },
        "sections": section_rows,
    }
    return write_study(data, out_dir)
