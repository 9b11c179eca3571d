"""Evaluate explainers over a labelled data set (``xai-study evaluate``).

For every video of a labels file (alternating fake and real, see
:func:`xai_study.labels.interleave`): extract the face clip, analyse it
(:func:`~xai_study.runs.analysis.analyse_clip`), measure every explanation
(:class:`~xai_study.runs.measure.Measurer`) and append one row per video x explainer to
``per_video.csv``. The run is resumable: ``run.json`` records the settings and finished
rows are skipped. Then the summary (:mod:`xai_study.metrics.summary`): ``summary.csv``,
``summary.md`` and ``summary.png``; when the run includes null explainers
(``null_centre``, ``null_supervoxels``, ``null_random_model``), ``paired.csv`` and a
section of ``summary.md`` compare every explainer with each null on the same videos
(:mod:`xai_study.metrics.paired`: intervals from a bootstrap over identities).
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from xai_study.errors import XaiStudyError
from xai_study.labels import VideoRecord, interleave, read_labels
from xai_study.runs.analysis import analyse_clip
from xai_study.runs.detectors import DetectorSet
from xai_study.runs.measure import Measurer, seed_override
from xai_study.runs.presets import preset as preset_config

VIDEO_COLUMNS = ["video", "path", "label", "split", "method", "identity"]
CSV_COLUMNS = [
    *VIDEO_COLUMNS,
    "explainer",
    "detector",
    "frames",
    "score",
    "seconds",
    "V",
    "tau",
    "rho",
    "mu",
    "I",
    "mass_accuracy",
    "mass_accuracy_chance",
    "pointing_game",
    "pointing_game_chance",
    "deletion_auc",
    "insertion_auc",
    "randomisation_spearman",
    "error",
]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


class ResultsTable:
    """``per_video.csv``: rows appended as they are computed, finished ones remembered."""

    def __init__(self, path: Path):
        self.path = path
        self.done: set[tuple[str, str]] = set()
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames != CSV_COLUMNS:
                    raise XaiStudyError(
                        f"{path} was not written by this version of 'evaluate' "
                        "(different columns); use another --out folder"
                    )
                self.done = {(r["video"], r["explainer"]) for r in reader}

    def __enter__(self) -> ResultsTable:
        new = not self.path.is_file()
        self._fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.DictWriter(self._fh, fieldnames=CSV_COLUMNS)
        if new:
            self._writer.writeheader()
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
        self._fh.flush()
        self.done.add((str(row["video"]), str(row["explainer"])))


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Record the run's settings in ``run.json``, or check they match the recorded ones."""
    meta = out / "run.json"
    if not meta.is_file():
        meta.write_text(json.dumps(settings, indent=2) + "\n")
        return
    try:
        old = json.loads(meta.read_text())
    except ValueError:
        old = None
    if old != settings:
        diff = sorted(k for k in settings if not old or old.get(k) != settings[k])
        raise XaiStudyError(
            f"{out} holds results computed with other settings ({', '.join(diff)}); "
            "use another --out folder or the same options"
        )


def clip_masks(record: VideoRecord, clip):
    """The clip's ground-truth masks on the crop grid (T, S, S) in [0, 1], or None when
    the row names no mask file."""
    if record.mask is None:
        return None
    from xai_study.data.masks import crop_masks, load_masks

    return crop_masks(load_masks(record.mask), clip)


def video_fields(record: VideoRecord) -> dict[str, str]:
    return {
        "video": record.video_id,
        "path": record.path_text,
        "label": record.label,
        "split": record.split,
        "method": record.method,
        "identity": record.identity,
    }


def evaluate_video(
    record: VideoRecord,
    explainers: list[str],
    detectors: DetectorSet,
    measurer: Measurer,
) -> list[dict[str, Any]]:
    """The rows of one video: one per explainer, with its error when the video fails."""
    from xai_study.video import extract_face_clip

    config = preset_config(measurer.preset)
    base = video_fields(record)
    try:
        clip = extract_face_clip(
            record.path,
            num_frames=config["frames"],
            size=config["size"],
            device=detectors.device,
        )
        masks = clip_masks(record, clip) if record.is_fake else None
        detectors.for_explainers(explainers)
        params = {e: seed_override(e, measurer.seed) for e in explainers}
        analysis = analyse_clip(clip, detectors, explainers, measurer.preset, params=params)
    except XaiStudyError as exc:
        return [{**base, "explainer": name, "error": str(exc)} for name in explainers]
    return [{**base, **row} for row in measurer.rows(analysis, detectors, masks)]


def check_explainers(explainers: list[str]) -> None:
    from xai_study.explainers import list_explainers

    if not explainers:
        raise XaiStudyError("--explainers is empty")
    known = list_explainers()
    unknown = [e for e in explainers if e not in known]
    if unknown:
        raise XaiStudyError(
            f"unknown explainer(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    if len(set(explainers)) != len(explainers):
        raise XaiStudyError("--explainers lists an explainer twice")


def against_nulls(per_video, n_boot: int, seed: int):
    """Every explainer minus every null explainer of the run (paired per video, interval
    from a bootstrap over identities), or None when the run has no null explainer."""
    from xai_study.explainers import null_explainers
    from xai_study.metrics.paired import paired_differences
    from xai_study.metrics.summary import METRIC_COLUMNS

    nulls = [n for n in null_explainers() if n in set(per_video["explainer"])]
    if not nulls or set(per_video["explainer"]) <= set(nulls):
        return None
    metrics = [m for m in METRIC_COLUMNS if m != "randomisation_spearman"]
    return paired_differences(per_video, nulls, metrics, n_boot=n_boot, seed=seed)


def summarise_run(out: Path, data: Path, preset: str, wanted: set, n_boot: int, seed: int):
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` from ``per_video.csv``."""
    import pandas as pd

    from xai_study.metrics.summary import summarise, summary_markdown, summary_plot

    per_video = pd.read_csv(
        out / "per_video.csv", keep_default_na=True, dtype={"error": str, "video": str}
    )
    keep = [
        (v, e) in wanted for v, e in zip(per_video["video"], per_video["explainer"], strict=True)
    ]
    per_video = per_video[keep]
    summary = summarise(per_video, n_boot=n_boot, seed=seed)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.6g")
    title = f"Explanation metrics: {data.name}, preset {preset}"
    text = summary_markdown(summary, per_video, title)
    paired = against_nulls(per_video, n_boot, seed)
    if paired is not None:
        from xai_study.metrics.paired import paired_markdown
        from xai_study.metrics.summary import LABELS

        paired.to_csv(out / "paired.csv", index=False, float_format="%.6g")
        text += "\n" + paired_markdown(paired, LABELS)
    (out / "summary.md").write_text(text + "\n")
    if len(summary):
        summary_plot(summary, out / "summary.png", title)


def _spec_text(dets: DetectorSet, arch: str) -> str:
    """The spec of ``arch`` as recorded in ``run.json``: the name or path given (a ready
    detector object is recorded under its architecture's name)."""
    spec = dets.spec(arch)
    return str(spec) if isinstance(spec, str | os.PathLike) else arch


def evaluate(
    data: Path,
    explainers: list[str],
    out: Path,
    preset: str = "fast",
    limit: int | None = None,
    split: str | None = None,
    detector: str | None = None,
    steps: int | None = None,
    baseline: str = "blur",
    sanity: bool = False,
    summary_only: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = True,
    detectors: DetectorSet | dict | None = None,
    device: str | None = None,
    batch_size: int | None = None,
) -> dict[str, Path]:
    """Run the evaluation (see ``xai-study evaluate --help``); returns the output paths.

    ``detectors`` maps architectures (``plain``, ``bonettini``, ``ltpa``) to specs (demo
    name, checkpoint or icpr2020dfdc file) or ready detector objects; a role it leaves
    out gets its demo checkpoint. ``detector`` is the spec for ``plain`` alone (what
    ``--detector`` gave). ``device`` (default: the GPU when present) runs the detectors
    and the face detector; ``batch_size`` is the number of frames per forward pass."""
    from tqdm import tqdm

    check_explainers(explainers)
    config = preset_config(preset)
    steps = config["faithfulness_steps"] if steps is None else steps
    if steps < 0:
        raise XaiStudyError("--steps must be 0 (skip) or more")
    videos = interleave(read_labels(data, split, limit))
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "per_video.csv"
    if summary_only and not csv_path.is_file():
        raise XaiStudyError(f"{out}: no per_video.csv to summarise")
    if isinstance(detectors, DetectorSet):
        dets = detectors
    else:
        specs = {"plain": detector or "plain", **dict(detectors or {})}
        dets = DetectorSet(specs, device, batch_size)
    settings: dict[str, Any] = {
        "preset": preset,
        "frames": config["frames"],
        "size": config["size"],
        "steps": steps,
        "baseline": baseline,
        "detector": _spec_text(dets, "plain"),
        "sanity": sanity,
        "seed": seed,
    }
    others = {a: _spec_text(dets, a) for a in sorted(dets.specs) if a != "plain"}
    others = {a: t for a, t in others.items() if t != a}
    if others:  # recorded only when given, so that older run folders still resume
        settings["detectors"] = others
    check_settings(out, settings)
    table = ResultsTable(csv_path)
    if not summary_only:
        dets.for_explainers(explainers)  # a wrong detector fails before any slow work
    if summary_only:
        videos = [v for v in videos if any((v.video_id, e) in table.done for e in explainers)]
    else:
        measurer = Measurer(preset, steps, baseline, sanity, seed)
        total = len(videos) * len(explainers)
        initial = sum((v.video_id, e) in table.done for v in videos for e in explainers)
        bar = tqdm(total=total, initial=initial, desc="evaluate", unit="expl", disable=not progress)
        with table, bar:
            for video in videos:
                todo = [e for e in explainers if (video.video_id, e) not in table.done]
                if not todo:
                    continue
                bar.set_postfix_str(str(video.video_id)[-30:])
                for row in evaluate_video(video, todo, dets, measurer):
                    table.write(row)
                    bar.update(1)
    wanted = {(v.video_id, e) for v in videos for e in explainers}
    summarise_run(out, data, preset, wanted, n_boot, seed)
    return {
        "per_video": csv_path,
        "summary_csv": out / "summary.csv",
        "paired": out / "paired.csv",
        "summary_md": out / "summary.md",
        "plot": out / "summary.png",
    }
