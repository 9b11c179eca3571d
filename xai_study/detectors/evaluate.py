"""Detector evaluation: frame- and video-level AUC, balanced accuracy, EER, AP; ROC and
DET plots (DeepfakeBench-style: the video score aggregates the frame logits)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.detectors.contract import aggregate_logits, sigmoid


def binary_metrics(labels: np.ndarray, p_fake: np.ndarray, threshold: float = 0.5) -> dict:
    """AUC, balanced accuracy (at ``threshold``), average precision and equal error rate.
    Metrics that need both classes are ``None`` when one class is absent."""
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        roc_auc_score,
        roc_curve,
    )

    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    s = np.asarray(p_fake, dtype=np.float64).reshape(-1)
    out: dict[str, Any] = {
        "n": int(y.size),
        "n_fake": int((y == 1).sum()),
        "n_real": int((y == 0).sum()),
        "accuracy": float(((s >= threshold).astype(int) == y).mean()) if y.size else None,
        "auc": None,
        "balanced_accuracy": None,
        "ap": None,
        "eer": None,
    }
    if y.size and 0 < y.sum() < y.size:
        out["auc"] = float(roc_auc_score(y, s))
        out["balanced_accuracy"] = float(balanced_accuracy_score(y, (s >= threshold).astype(int)))
        out["ap"] = float(average_precision_score(y, s))
        # every threshold: the default drop_intermediate=True removes the corners of the
        # ROC staircase, and the nearest remaining point can be far from FPR = FNR
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        fnr = 1 - tpr
        i = int(np.nanargmin(np.abs(fnr - fpr)))
        out["eer"] = float((fpr[i] + fnr[i]) / 2)
    return out


def choose_threshold(labels: np.ndarray, p_fake: np.ndarray) -> dict[str, float]:
    """The P(fake) threshold with the highest balanced accuracy on labelled scores.

    Candidates lie halfway (in logit space) between consecutive distinct scores, plus one
    below the lowest and one above the highest; among equally good candidates the middle
    one is taken. Needs both classes."""
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    s = np.clip(np.asarray(p_fake, dtype=np.float64).reshape(-1), 1e-12, 1 - 1e-12)
    if not (y.size and 0 < y.sum() < y.size):
        raise ValueError("choosing a threshold needs real and fake videos")
    logit = np.log(s / (1 - s))
    z = np.unique(logit)
    cands = np.concatenate([[z[0] - 1.0], (z[:-1] + z[1:]) / 2, [z[-1] + 1.0]])
    pred = logit[None, :] >= cands[:, None]  # (candidates, videos)
    tpr = (pred & (y == 1)).sum(1) / (y == 1).sum()
    tnr = (~pred & (y == 0)).sum(1) / (y == 0).sum()
    bal = (tpr + tnr) / 2
    best = np.flatnonzero(np.isclose(bal, bal.max()))
    i = int(best[(len(best) - 1) // 2])
    return {"p_fake": float(sigmoid(cands[i])), "balanced_accuracy": float(bal[i])}


def format_p(p: float) -> str:
    """A probability for people: ``0.9253``; near 1, ``1 - 2.2e-09`` (saturated scores
    would all print as 1)."""
    p = float(p)
    return f"{p:.4g}" if p < 0.999 else f"1 - {1 - p:.2g}"


def video_level(
    frame_logits: np.ndarray, video_index: np.ndarray, n_videos: int, how: str = "mean_logit"
) -> np.ndarray:
    """Video P(fake) from frame logits grouped by ``video_index``."""
    return np.array(
        [aggregate_logits(frame_logits[video_index == v], how) for v in range(n_videos)],
        dtype=np.float64,
    )


def score_faceset(detector, faceset, progress: bool = True, desc: str = "scoring") -> np.ndarray:
    """Frame logits ``(N,)`` for every crop of a :class:`FaceSet`."""
    from tqdm import tqdm

    n = len(faceset.frames)
    bs = max(1, int(detector.batch_size))
    out = []
    for i in tqdm(range(0, n, bs), desc=desc, unit="batch", disable=not progress, leave=False):
        out.append(detector.frame_logits(faceset.frames[i : i + bs]))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def evaluate_faceset(detector, faceset, progress: bool = True, logits=None) -> dict:
    """Frame- and video-level metrics of ``detector`` on a :class:`FaceSet`."""
    if logits is None:
        logits = score_faceset(detector, faceset, progress)
    how = detector.config.get("aggregation", "mean_logit")
    vids = video_level(logits, faceset.video, len(faceset.items), how)
    return {
        "frame": binary_metrics(faceset.labels, sigmoid(logits)),
        "video": binary_metrics(faceset.video_labels(), vids),
        "frame_logits": logits,
        "video_scores": vids,
    }


def plot_roc_det(labels, scores, out_prefix: str | os.PathLike, title: str = "") -> list[Path]:
    """Write ``<prefix>.roc.png`` and ``<prefix>.det.png``; nothing if a class is absent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm
    from sklearn.metrics import det_curve, roc_auc_score, roc_curve

    y = np.asarray(labels)
    s = np.asarray(scores)
    if not (0 < y.sum() < y.size):
        return []
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    fpr, tpr, _ = roc_curve(y, s)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot(fpr, tpr, lw=2, label=f"AUC = {roc_auc_score(y, s):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set_xlabel("false positive rate (real called fake)")
    ax.set_ylabel("true positive rate (fake caught)")
    ax.set_title(f"ROC {title}".strip())
    ax.legend(loc="lower right")
    fig.tight_layout()
    roc_path = prefix.with_name(prefix.name + ".roc.png")
    fig.savefig(roc_path)
    plt.close(fig)

    dfpr, dfnr, _ = det_curve(y, s)
    eps = 1e-3
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot(norm.ppf(np.clip(dfpr, eps, 1 - eps)), norm.ppf(np.clip(dfnr, eps, 1 - eps)), lw=2)
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99]
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks], rotation=45)
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(eps), norm.ppf(1 - eps))
    ax.set_ylim(norm.ppf(eps), norm.ppf(1 - eps))
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("false negative rate")
    ax.set_title(f"DET {title}".strip())
    ax.grid(alpha=0.3)
    fig.tight_layout()
    det_path = prefix.with_name(prefix.name + ".det.png")
    fig.savefig(det_path)
    plt.close(fig)
    return [roc_path, det_path]


def write_per_video_csv(
    path: str | os.PathLike, faceset, video_scores, logits, raw_scores=None
) -> Path:
    """One row per video: ``p_fake`` (``video_scores``: calibrated when the detector has a
    calibration), with ``raw_scores`` also ``p_fake_raw``, the identity, the number of
    frames and the mean frame logit."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        extra = ["p_fake_raw"] if raw_scores is not None else []
        w.writerow(
            ["video_id", "label", "p_fake", *extra, "identity", "frames", "mean_frame_logit"]
        )
        for v, it in enumerate(faceset.items):
            fl = logits[faceset.video == v]
            raw = [f"{raw_scores[v]:.6f}"] if raw_scores is not None else []
            w.writerow(
                [
                    it.video_id,
                    "fake" if it.label else "real",
                    f"{video_scores[v]:.6f}",
                    *raw,
                    getattr(it, "identity", ""),
                    len(fl),
                    f"{float(np.mean(fl)):.6f}",
                ]
            )
    return p


def clean_json(obj: Any) -> Any:
    """NaN/inf -> None, numpy -> Python, for ``json.dumps``."""
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dump_json(obj: Any, path: str | os.PathLike) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(clean_json(obj), indent=2) + "\n")
    return p
