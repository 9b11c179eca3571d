"""Detector runs without explanations: one video's verdict (``xai-study detect``), the
verdicts of every video of a labels file (``detect --labels``, also on Ray workers) and a
detector's scores over a split of a labels file (``xai-study evaluate-detector``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.devices import resolve_device
from xai_study.errors import XaiStudyError
from xai_study.labels import VideoRecord, read_labels
from xai_study.runs.cluster import ClusterOptions, Failure, print_failures, take_shard
from xai_study.runs.detectors import VERDICT_ARCH, DetectorSet
from xai_study.runs.evaluate import VIDEO_COLUMNS, video_fields
from xai_study.runs.results import ResultsTable

DETECT_COLUMNS = [
    *VIDEO_COLUMNS,
    "model",
    "arch",
    "p_fake",
    "predicted",
    "threshold",
    "frames",
    "frames_sampled",
    "aggregation",
    "error",
]


def load_one(
    model: Any, role: str = VERDICT_ARCH, device: str | None = None, batch_size: int | None = None
):
    """The detector ``model`` (a spec or an object) for ``role`` on ``device``."""
    return DetectorSet({role: model}, device, batch_size).get(role)


def detect_video(
    video,
    model: Any = "plain",
    frames: int = 32,
    aggregation: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    role: str = VERDICT_ARCH,
    det=None,
) -> dict[str, Any]:
    """P(fake), label, threshold and per-frame scores of ``video`` under ``model`` (the
    detector for ``role``; ``det``: that detector already loaded), with the detector and
    the face detector on ``device`` (default: the GPU when present) and ``batch_size``
    frames per forward pass. ``p_fake``, ``frame_scores`` and ``threshold`` are on the
    calibrated scale (the checkpoint's calibration; the raw one without), ``p_fake_raw``
    and ``frame_logits`` are the model's own output."""
    from xai_study.detectors.calibration import calibration_of
    from xai_study.detectors.contract import aggregate_logits
    from xai_study.video.clip import extract_face_clip

    if frames < 1:
        raise XaiStudyError("--frames must be at least 1")
    device = resolve_device(device)
    det = load_one(model, role, device, batch_size) if det is None else det
    clip = extract_face_clip(video, num_frames=frames, size=det.input_size, device=device)
    logits = det.frame_logits(clip.frames)
    how = aggregation or det.config.get("aggregation", "mean_logit")
    calibration = calibration_of(det)
    p = calibration.video_p(logits, how)
    return {
        "p_fake": p,
        "label": "fake" if p >= det.threshold else "real",
        "threshold": det.threshold,
        "p_fake_raw": aggregate_logits(logits, how),
        "calibration": calibration.describe(),
        "frame_scores": calibration.frame_p(logits).tolist(),
        "frame_logits": logits.astype(float).tolist(),
        "frame_indices": clip.frame_indices.astype(int).tolist(),
        "timestamps": [round(float(t), 4) for t in clip.timestamps],
        "aggregation": how,
        "model": str(model),
        "arch": det.config["arch"],
        "frames_sampled": int(clip.frames_sampled),
    }


def detect_row(
    record: VideoRecord,
    det,
    model: Any,
    frames: int,
    aggregation: str | None,
    device: str | None = None,
) -> dict[str, Any]:
    """One video's row of ``detect --labels`` (with its error when the video fails)."""
    row: dict[str, Any] = {**video_fields(record), "model": str(model)}
    try:
        r = detect_video(record.path, model, frames, aggregation, device=device, det=det)
    except XaiStudyError as exc:
        return {**row, "error": str(exc)}
    return {
        **row,
        "arch": r["arch"],
        "p_fake": r["p_fake"],
        "predicted": r["label"],
        "threshold": r["threshold"],
        "frames": len(r["frame_scores"]),
        "frames_sampled": r["frames_sampled"],
        "aggregation": r["aggregation"],
    }


@dataclass
class DetectJob:
    """:func:`detect_row` on a Ray worker: the detector and MTCNN loaded once per worker."""

    model: Any
    frames: int
    aggregation: str | None
    role: str = VERDICT_ARCH
    batch_size: int | None = None
    _det: Any = field(default=None, init=False, repr=False)
    _device: str | None = field(default=None, init=False, repr=False)

    def setup(self, device: str) -> None:
        from xai_study.video.faces import get_mtcnn

        self._device = resolve_device(device)
        get_mtcnn(self._device)
        self._det = load_one(self.model, self.role, self._device, self.batch_size)

    def run(self, record: VideoRecord) -> dict[str, Any]:
        if self._det is None:
            raise RuntimeError("DetectJob.run before setup")
        return detect_row(
            record, self._det, self.model, self.frames, self.aggregation, self._device
        )


@dataclass
class BatchDetection:
    """What ``detect --labels`` did."""

    out: Path
    rows: list[dict[str, Any]]  # every row of the output file for the videos asked for
    failures: list[Failure]
    report: Any = None  # the RunReport of a run on Ray


def detect_labels(
    labels: str | Path,
    out: str | Path,
    model: str = "plain",
    frames: int = 32,
    aggregation: str | None = None,
    split: str | None = None,
    cluster: ClusterOptions | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    device: str | None = None,
    batch_size: int | None = None,
    role: str = VERDICT_ARCH,
) -> BatchDetection:
    """P(fake) of every video of a labels file (``split``: one split), one row per video
    in ``out`` (a CSV, appended as videos finish, resumable); on Ray with ``cluster``;
    otherwise in this process on ``device`` (default: the GPU when present)."""
    import csv

    from tqdm import tqdm

    if frames < 1:
        raise XaiStudyError("--frames must be at least 1")
    records = take_shard(read_labels(Path(labels), split), shard)
    load_one(model, role, "cpu")  # a wrong model fails before any slow work
    out = Path(out)
    if out.is_dir():
        raise XaiStudyError(f"--out {out} is a folder; name the CSV file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    table = ResultsTable(out, DETECT_COLUMNS, ("video", "model"), "detect")
    todo = [r for r in records if (r.video_id, str(model)) not in table.done]
    failures: list[Failure] = []
    report = None
    with table:
        if cluster is not None and cluster.enabled:
            from xai_study.runs.cluster import run_videos

            def on_result(video: str, row: dict[str, Any]) -> str | None:
                table.write_rows([row])
                return row.get("error") or None

            job = DetectJob(model, frames, aggregation, role, batch_size)
            items = [(r.video_id, r) for r in todo]
            report = run_videos(job, items, cluster, on_result, progress, desc="detect")
            failures = report.failures
        else:
            device = resolve_device(device)
            det = load_one(model, role, device, batch_size)
            bar = tqdm(todo, desc="detect", unit="video", disable=not progress)
            for record in bar:
                row = detect_row(record, det, model, frames, aggregation, device)
                table.write_rows([row])
                if row.get("error"):
                    failures.append(Failure(record.video_id, row["error"]))
                bar.set_postfix_str(f"failed={len(failures)}")
    print_failures(failures)
    wanted = {(r.video_id, str(model)) for r in records}
    with open(out, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if (r["video"], r["model"]) in wanted]
    return BatchDetection(out=out, rows=rows, failures=failures, report=report)


@dataclass
class DetectorEvaluation:
    """What ``evaluate-detector`` found (``metrics`` is ``metrics.json``)."""

    metrics: dict[str, Any]
    checkpoint: Path
    chosen: dict[str, Any] | None = None  # the threshold chosen with save_threshold
    extra: dict[str, Any] = field(default_factory=dict)


def _project_checkpoint(path: Path, flag: str) -> dict[str, Any]:
    from xai_study.detectors.checkpoint import read_checkpoint

    obj = read_checkpoint(path)
    if obj.get("format") != "xai-study-detector":
        raise XaiStudyError(f"{flag} needs a project checkpoint")
    return obj


def _at_threshold(faces, res, threshold: float) -> dict[str, float] | None:
    from xai_study.detectors.evaluate import binary_metrics

    if threshold == 0.5:
        return None
    vb = binary_metrics(faces.video_labels(), res["video_scores"], threshold)
    fb = binary_metrics(faces.labels, res["frame_scores"], threshold)
    return {
        "threshold": threshold,
        "video_balanced_accuracy": vb["balanced_accuracy"],
        "frame_balanced_accuracy": fb["balanced_accuracy"],
    }


def _write_outputs(out: Path, metrics, faces, res, split: str) -> None:
    from xai_study.detectors.evaluate import dump_json, plot_roc_det, write_per_video_csv

    dump_json(metrics, out / "metrics.json")
    write_per_video_csv(
        out / "per_video.csv", faces, res["video_scores"], res["frame_logits"], res["raw_scores"]
    )
    plot_roc_det(faces.video_labels(), res["video_scores"], out / "video", title=f"{split} (video)")
    plot_roc_det(faces.labels, res["frame_scores"], out / "frame", title=f"{split} (frame)")


def calibrated_results(det, faces, res: dict[str, Any], bins: int = 10) -> dict[str, Any]:
    """``res`` of :func:`~xai_study.detectors.evaluate.evaluate_faceset` on the detector's
    calibrated scale: ``video_scores`` / ``frame_scores`` become calibrated P(fake)
    (``raw_scores`` keeps the raw video P(fake)), the ``video`` / ``frame`` metrics are
    recomputed on them (AUC, EER and AP do not change: the map is increasing), and
    ``calibration`` holds ECE (``bins`` equal-width bins), Brier score and NLL before and
    after, per video and per frame."""
    from xai_study.detectors.calibration import calibration_measures, calibration_of
    from xai_study.detectors.contract import sigmoid
    from xai_study.detectors.evaluate import binary_metrics

    cal = calibration_of(det)
    how = det.config.get("aggregation", "mean_logit")
    logits = res["frame_logits"]
    raw = np.asarray(res["video_scores"], dtype=np.float64)
    if cal.identity:
        video, frame = raw, sigmoid(logits, dtype=logits.dtype)  # float32 frames, as before
    else:
        video = np.array(
            [cal.video_p(logits[faces.video == v], how) for v in range(len(faces.items))]
        )
        frame = cal.frame_p(logits)
    out = dict(res, raw_scores=raw, video_scores=video, frame_scores=frame)
    if not cal.identity:
        out["video"] = binary_metrics(faces.video_labels(), video)
        out["frame"] = binary_metrics(faces.labels, frame)
    y_v, y_f = faces.video_labels(), faces.labels
    out["calibration"] = dict(
        cal.to_meta(),
        bins=bins,
        video={
            "raw": calibration_measures(raw, y_v, bins),
            "calibrated": calibration_measures(video, y_v, bins),
        },
        frame={
            "raw": calibration_measures(sigmoid(logits), y_f, bins),
            "calibrated": calibration_measures(frame, y_f, bins),
        },
    )
    return out


def auc_intervals(faces, res: dict[str, Any], n_boot: int = 2000, seed: int = 0):
    """Identity-clustered 95 % bootstrap intervals of the video and frame AUC
    (:func:`xai_study.metrics.paired.cluster_bootstrap_auc`; videos without an identity
    are their own cluster)."""
    from xai_study.metrics.paired import cluster_bootstrap_auc

    ident = np.array([it.identity or f"video:{it.video_id}" for it in faces.items])
    out: dict[str, dict[str, Any]] = {}
    for level, y, s, c in (
        ("video", faces.video_labels(), res["video_scores"], ident),
        ("frame", faces.labels, res["frame_scores"], ident[faces.video]),
    ):
        out[level] = dict(
            cluster_bootstrap_auc(y, s, c, n_boot=n_boot, seed=seed), resampled="identities"
        )
    return out


def _save_to_checkpoint(obj, path: Path, metrics, chosen, split, data, frames, n_videos) -> None:
    from xai_study.detectors.checkpoint import write_checkpoint_dict
    from xai_study.detectors.evaluate import clean_json

    meta = obj.setdefault("meta", {})
    if metrics is not None:
        meta.setdefault("metrics", {})[split] = clean_json(
            {k: metrics[k] for k in ("data", "frames_per_video", "video", "frame")}
        )
    if chosen is not None:
        meta["threshold"] = clean_json(
            dict(
                chosen,
                rule="highest video balanced accuracy",
                split=split,
                data=str(data),
                frames_per_video=frames,
                n_videos=n_videos,
            )
        )
    write_checkpoint_dict(obj, path)


def evaluate_detector(
    model: str,
    data: str,
    split: str = "test",
    frames: int = 32,
    out: str | None = None,
    cache_dir: str | None = None,
    save_threshold: bool = False,
    save_to_checkpoint: bool = False,
    progress: bool = True,
    device: str | None = None,
    batch_size: int | None = None,
    role: str = VERDICT_ARCH,
) -> DetectorEvaluation:
    """Score every video of ``split``: video and frame AUC, balanced accuracy, EER, AP
    (and at the detector's threshold), identity-clustered AUC intervals and ECE / Brier
    before and after the checkpoint's calibration; with ``out`` also ``metrics.json``,
    ``per_video.csv`` and ROC/DET plots; ``save_threshold`` stores the threshold with
    the highest balanced accuracy in the checkpoint, ``save_to_checkpoint`` the metrics.
    ``device`` (default: the GPU when present) runs the detector and the face detector;
    ``batch_size`` is the number of frames per forward pass."""
    from xai_study.detectors.calibration import calibration_of
    from xai_study.detectors.checkpoint import resolve_model
    from xai_study.detectors.data import build_faceset, read_labels, select_split
    from xai_study.detectors.evaluate import choose_threshold, evaluate_faceset

    if frames < 1:
        raise XaiStudyError("--frames must be at least 1")
    device = resolve_device(device)
    det = load_one(model, role, device, batch_size)
    path = resolve_model(model)
    obj = None
    if save_to_checkpoint or save_threshold:  # checked before the long part
        flag = "--save-threshold" if save_threshold else "--save-to-checkpoint"
        obj = _project_checkpoint(path, flag)
    items = select_split(read_labels(data), split, data)
    faces = build_faceset(
        items,
        frames,
        det.input_size,
        cache_dir=cache_dir,
        progress=progress,
        desc=f"faces ({split})",
        device=device,
    )
    res = calibrated_results(det, faces, evaluate_faceset(det, faces, progress=progress))
    chosen = None
    if save_threshold:
        if split == "test":
            print(
                "note: a threshold chosen on the test split makes test figures optimistic",
                file=sys.stderr,
            )
        try:  # chosen on the raw scores, stored on both scales (the same decisions)
            raw = choose_threshold(faces.video_labels(), res["raw_scores"])
        except ValueError as exc:
            raise XaiStudyError(f"--save-threshold: {exc} in split {split!r}") from None
        cal = calibration_of(det)
        chosen = dict(raw, p_fake=cal.p_from_raw(raw["p_fake"]), p_fake_raw=raw["p_fake"])
    metrics: dict[str, Any] = {
        "model": model,
        "data": data,
        "split": split,
        "frames_per_video": frames,
        "aggregation": det.config.get("aggregation", "mean_logit"),
        "video": res["video"],
        "frame": res["frame"],
        "auc_interval": auc_intervals(faces, res),
        "calibration": res["calibration"],
        "skipped": faces.skipped,
    }
    at = _at_threshold(faces, res, chosen["p_fake"] if chosen else det.threshold)
    if at is not None:
        metrics["at_threshold"] = at
    if out:
        _write_outputs(Path(out), metrics, faces, res, split)
    if obj is not None:
        saved = metrics if save_to_checkpoint else None
        _save_to_checkpoint(obj, path, saved, chosen, split, data, frames, len(faces.items))
    return DetectorEvaluation(metrics=metrics, checkpoint=path, chosen=chosen)
