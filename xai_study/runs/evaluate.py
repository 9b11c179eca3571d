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

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_study.errors import XaiStudyError
from xai_study.labels import VideoRecord, interleave, read_labels
from xai_study.runs import results
from xai_study.runs.analysis import analyse_clip
from xai_study.runs.cluster import ClusterOptions, print_failures, take_shard
from xai_study.runs.detectors import DetectorSet
from xai_study.runs.measure import Measurer, seed_override
from xai_study.runs.presets import PRESETS
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


class ResultsTable(results.ResultsTable):
    """``per_video.csv``: one row per video x explainer, appended as computed (safe under
    concurrent writers, :mod:`xai_study.runs.results`), finished ones remembered."""

    def __init__(self, path: Path):
        super().__init__(path, CSV_COLUMNS, ("video", "explainer"), "evaluate")


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Record the run's settings in ``run.json``, or check they match the recorded ones."""
    meta = out / "run.json"
    if not meta.is_file():  # written whole, so that concurrent shards read all of it
        results.write_atomic(meta, json.dumps(settings, indent=2) + "\n")
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


@dataclass
class EvaluateJob:
    """:func:`evaluate_video` on a Ray worker (:mod:`xai_study.runs.cluster`): the
    detectors and MTCNN are loaded once per worker in :meth:`setup`. The driver's preset
    travels with the job, so every worker uses exactly the driver's settings."""

    explainers: list[str]
    specs: dict[str, Any]
    preset: str
    config: dict[str, Any]
    steps: int
    baseline: str
    sanity: bool
    seed: int
    batch_size: int | None = None
    _detectors: DetectorSet | None = field(default=None, init=False, repr=False)
    _measurer: Measurer | None = field(default=None, init=False, repr=False)

    def setup(self, device: str) -> None:
        from xai_study.video.faces import get_mtcnn

        PRESETS[self.preset] = self.config
        get_mtcnn(device)
        dets = DetectorSet(self.specs, device, self.batch_size)
        self._detectors = dets.for_explainers(self.explainers)
        self._measurer = Measurer(self.preset, self.steps, self.baseline, self.sanity, self.seed)

    def run(self, item: tuple[VideoRecord, list[str]]) -> list[dict[str, Any]]:
        if self._detectors is None or self._measurer is None:
            raise RuntimeError("EvaluateJob.run before setup")
        record, todo = item
        return evaluate_video(record, todo, self._detectors, self._measurer)


def row_errors(rows: list[dict[str, Any]]) -> str | None:
    """A video's failure in one line (the error of its rows), or None when it has none."""
    errors = {str(r["explainer"]): str(r["error"]) for r in rows if r.get("error")}
    if not errors:
        return None
    if len(errors) == len(rows) and len(set(errors.values())) == 1:
        return next(iter(errors.values()))
    return "; ".join(f"{e}: {m}" for e, m in errors.items())


def evaluate_on_ray(
    videos: list[VideoRecord],
    explainers: list[str],
    dets: DetectorSet,
    measurer: Measurer,
    table: ResultsTable,
    cluster: ClusterOptions,
    progress: bool = True,
):
    """The videos' rows computed by Ray workers, written to ``table`` as they arrive;
    returns the :class:`~xai_study.runs.cluster.RunReport`."""
    from xai_study.runs.cluster import run_videos

    items = []
    for v in videos:
        todo = [e for e in explainers if (v.video_id, e) not in table.done]
        if todo:
            items.append((v.video_id, (v, todo)))
    job = EvaluateJob(
        explainers=list(explainers),
        specs=dict(dets.specs),
        preset=measurer.preset,
        config=preset_config(measurer.preset),
        steps=measurer.steps,
        baseline=measurer.baseline,
        sanity=measurer.sanity,
        seed=measurer.seed,
        batch_size=dets.batch_size,
    )

    def on_result(video: str, rows: list[dict[str, Any]]) -> str | None:
        table.write_rows(rows)
        return row_errors(rows)

    with table:
        report = run_videos(job, items, cluster, on_result, progress, desc="evaluate")
    print_failures(report.failures)
    return report


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
    cluster: ClusterOptions | None = None,
    shard: tuple[int, int] | None = None,
    on_report=None,
) -> dict[str, Path]:
    """Run the evaluation (see ``xai-study evaluate --help``); returns the output paths.

    ``detectors`` maps architectures (``plain``, ``bonettini``, ``ltpa``) to specs (demo
    name, checkpoint or icpr2020dfdc file) or ready detector objects; a role it leaves
    out gets its demo checkpoint. ``detector`` is the spec for ``plain`` alone (what
    ``--detector`` gave). ``device`` (default: the GPU when present) runs the detectors
    and the face detector; ``batch_size`` is the number of frames per forward pass.
    With ``cluster`` (``--workers`` / ``--ray``) the videos are processed by Ray workers
    (:func:`evaluate_on_ray`; ``on_report`` receives its
    :class:`~xai_study.runs.cluster.RunReport`); ``shard=(i, n)`` takes every n-th video
    from the i-th, for n jobs writing into one folder."""
    from tqdm import tqdm

    check_explainers(explainers)
    config = preset_config(preset)
    steps = config["faithfulness_steps"] if steps is None else steps
    if steps < 0:
        raise XaiStudyError("--steps must be 0 (skip) or more")
    all_videos = interleave(read_labels(data, split, limit))
    videos = take_shard(all_videos, shard)
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
    elif cluster is not None and cluster.enabled:
        measurer = Measurer(preset, steps, baseline, sanity, seed)
        report = evaluate_on_ray(videos, explainers, dets, measurer, table, cluster, progress)
        if on_report is not None:
            on_report(report)
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
    # a shard summarises what all shards have written so far
    wanted = {(v.video_id, e) for v in (all_videos if shard else videos) for e in explainers}
    with open(csv_path, "a+b") as fh, results.locked(fh):  # one summary writer at a time
        summarise_run(out, data, preset, wanted, n_boot, seed)
    return {
        "per_video": csv_path,
        "summary_csv": out / "summary.csv",
        "paired": out / "paired.csv",
        "summary_md": out / "summary.md",
        "plot": out / "summary.png",
    }
