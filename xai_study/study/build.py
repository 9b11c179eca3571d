"""``xai-study build-study``: a study folder from a labelled video set.

For each section a fake video is paired with a real one (seeded shuffle). The fake is
analysed by :func:`xai_study.runs.analyse_video` (face clip, then every explainer on
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

MAX_VIDEO_SIDE = 320
MAX_VIDEO_FRAMES = 50


def read_pool(data_csv: Path, split: str | None = "test") -> tuple[list[dict], list[dict]]:
    """``(fakes, reals)`` of a labels file (:func:`xai_study.labels.read_labels`) as
    ``{id, path, source}`` rows; ``split`` applies when the file has a ``split`` column."""
    from xai_study.labels import read_labels

    try:
        records = read_labels(data_csv, split=split or None, split_if_present=True)
    except XaiStudyError as exc:
        raise StudyError(str(exc)) from None
    fakes, reals = [], []
    for line, rec in enumerate(records, start=2):
        if not rec.path.is_file():
            raise StudyError(f"{data_csv}: row {line}: video not found: {rec.path_text}")
        row = {
            "id": _safe_id(rec.video_id),
            "path": rec.path,
            "source": _safe_id(rec.source) if rec.source else None,
        }
        (fakes if rec.is_fake else reals).append(row)
    return fakes, reals


def study_explainers(names: list[str] | None) -> dict[str, str]:
    """Study name -> registry name of ``names`` (study names, registry names or labels;
    default: the paper's four), in order."""
    from xai_study.explainers import explainer_class, paper_explainers

    out: dict[str, str] = {}
    for name in names or paper_explainers():
        try:
            cls = explainer_class(name)
        except XaiStudyError as exc:
            raise StudyError(f"unknown study explainer {name!r} ({exc})") from None
        out[cls.study_name] = cls.name
    return out


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


def _check_request(explainers, sections, shown, num_frames, fakes, reals, data_csv) -> int:
    if len(explainers) < 2:
        raise StudyError("a study needs at least 2 explainers")
    if num_frames is not None and num_frames < 2:
        raise StudyError("--frames must be at least 2")
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
    return n


def _prepare_folder(out_dir: Path, force: bool) -> Path:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise StudyError(f"{out_dir} exists and is not empty (use --force to replace it)")
        shutil.rmtree(out_dir)
    media = out_dir / "media"
    media.mkdir(parents=True, exist_ok=True)
    return media


def _rounded(metrics: dict[str, float]) -> dict[str, float | None]:
    return {
        k: (None if v is None or not np.isfinite(v) else round(float(v), 6))
        for k, v in metrics.items()
    }


def build_section(
    sid: str,
    fake: dict,
    real: dict,
    explainers: dict[str, str],
    detectors,
    out_dir: Path,
    *,
    preset: str,
    num_frames: int | None,
    params: dict[str, dict[str, Any]],
    seed: int,
) -> dict[str, Any]:
    """Analyse one fake, render its unlabelled animations and copy both videos into
    ``out_dir/media``; returns the section's entry of ``study.yaml``."""
    from xai_study.metrics import paper_metrics
    from xai_study.render import render_overlay, save_animation
    from xai_study.runs import analyse_video

    media = out_dir / "media"
    try:
        analysis = analyse_video(
            fake["path"],
            explainers=list(explainers.values()),
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
    for name, reg in explainers.items():
        expl = analysis.explanations[reg]
        frames = render_overlay(crops, expl.normalised, legend=False)  # unlabelled
        path = save_animation(frames, media / _opaque_name(sid, name, seed), fps=fps)
        anims[name] = str(path.relative_to(out_dir))
        meta["metrics"][name] = _rounded(paper_metrics(expl.maps, signed=expl.signed))
        meta["seconds"][name] = round(float(expl.seconds), 3)
        if expl.extra.get("convergence") is not None:
            meta.setdefault("convergence", {})[name] = expl.summary()["convergence"]
    return {
        "id": sid,
        "video_id": fake["id"],
        "real_video_id": real["id"],
        "real": f"media/{real_name}",
        "fake": f"media/{fake_name}",
        "animations": anims,
        "meta": meta,
    }


def _attention_checks(n_shown: int) -> list[dict[str, Any]]:
    return [
        {
            "id": "ac1",
            "after": max(1, n_shown // 2),
            "question": "This question checks attention: please choose 'Blue'.",
            "choices": ["Red", "Blue", "Green"],
            "answer": "Blue",
        }
    ]


def build_study(
    data_csv: Path,
    out_dir: Path,
    *,
    sections: int | None = None,
    shown: int | None = None,
    models: Any = None,  # {arch: spec}, a runs.DetectorSet, or None (the demo models)
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

    from xai_study.explainers import canonical_name
    from xai_study.runs.detectors import VERDICT_ARCH, arch_for, detector_set
    from xai_study.study.spec import write_study

    chosen = study_explainers(explainers)
    fakes, reals = read_pool(data_csv, split)
    n = _check_request(list(chosen), sections, shown, num_frames, fakes, reals, data_csv)
    needed = sorted({arch_for(reg) for reg in chosen.values()} | {VERDICT_ARCH})
    # ``models``: specs per architecture, or a DetectorSet (with its device and batch size)
    detectors = detector_set(models).load(needed)  # fail early, before any file is written
    params = {canonical_name(e): dict(v) for e, v in (explainer_params or {}).items() if v}
    _prepare_folder(out_dir, force)

    section_rows = []
    with tqdm(total=n, desc="build-study", unit="section", disable=not progress) as bar:
        for i, (fake, real) in enumerate(pair_videos(fakes, reals, n, seed), 1):
            sid = f"s{i:02d}"
            bar.set_postfix_str(f"{sid} {fake['id']}")
            section_rows.append(
                build_section(
                    sid,
                    fake,
                    real,
                    chosen,
                    detectors,
                    out_dir,
                    preset=preset,
                    num_frames=num_frames,
                    params=params,
                    seed=seed,
                )
            )
            bar.update()
    n_shown = shown or n
    name = _safe_id(out_dir.resolve().name)
    data: dict[str, Any] = {
        "name": name,
        "title": title or "Which explanation of a deepfake detector do you prefer?",
        "sections_shown": n_shown,
        "q2_mode": q2_mode,
        "explainers": list(chosen),
        "completion_code": f"XS-{name.upper()}-{seed:04d}",
        "redirect_url": "",
        "attention_checks": _attention_checks(n_shown) if attention_check else [],
        "built_with": {
            "data": str(data_csv),
            "models": {a: str(detectors.spec(a)) for a in needed},
            "preset": preset,
            "frames": num_frames,
            "seed": seed,
            "explainer_params": {e: v for e, v in (explainer_params or {}).items() if v},
        },
        "sections": section_rows,
    }
    return write_study(data, out_dir)
