"""Record the numbers that the detector contract's helpers produce, to compare a change.

Loads the demo checkpoints (``models/*.pt``) and the known-answer toy, takes the face
crops of ``tests/data/single_face.mp4`` and writes one ``.npz`` with: frame logits,
video scores (every aggregation), preprocessed tensors, the baselines of the explainers
and of the faithfulness metrics, map resizing, every explainer's maps (small sample
counts) and deletion / insertion AUCs. Run it before and after a change and compare:

    PYTHONPATH=$PWD .venv/bin/python scripts/detector_numerics.py --out /tmp/before.npz
    # ... change the code ...
    PYTHONPATH=$PWD .venv/bin/python scripts/detector_numerics.py --out /tmp/after.npz \
        --compare /tmp/before.npz

``--compare`` prints one line per array (``identical`` or the largest difference) and
exits 1 when any array differs by more than ``--atol`` (default 0: bit for bit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def record(frames_count: int) -> dict[str, np.ndarray]:
    import torch

    from xai_study.detectors import aggregate_logits, load_detector
    from xai_study.explainers import create_explainer
    from xai_study.explainers.base import make_baseline

    try:  # after the detector contract (one batched-logit loop, one map resizing)
        from xai_study.detectors.contract import batched_logits
        from xai_study.maps import resize_maps

        def frame_logits(det, frames, batch_size):
            return batched_logits(det, frames, batch_size).astype(np.float64)

    except ImportError:  # before it
        from xai_study.explainers.base import frame_logits, resize_maps  # type: ignore
    from xai_study.explainers.toys import make_region_detector, textured_clip
    from xai_study.metrics.faithfulness import (
        DeletionAUC,
        InsertionAUC,
        baseline_frames,
        detector_scorer,
    )
    from xai_study.video.clip import extract_face_clip

    torch.manual_seed(0)
    out: dict[str, np.ndarray] = {}
    clip = extract_face_clip(ROOT / "tests/data/single_face.mp4", num_frames=frames_count)
    crops = clip.frames
    out["crops"] = crops
    small = crops[:, ::4, ::4]  # 56 px, so every path resizes
    for kind in ("blur", "mean", "black"):
        out[f"make_baseline/{kind}"] = make_baseline(crops, kind)
        out[f"make_baseline/{kind}/sigma3"] = make_baseline(crops, kind, 3.0)
    for kind in ("black", "grey", "mean", "blur"):
        out[f"baseline_frames/{kind}"] = baseline_frames(crops, kind)
    maps = np.random.default_rng(0).random((len(crops), 7, 7)).astype(np.float32)
    out["resize_maps/224"] = resize_maps(maps, (224, 224))
    out["resize_maps/nearest"] = resize_maps(maps, (30, 20), mode="nearest")

    toy = make_region_detector("plain")
    tclip = textured_clip(4, 64)
    out["toy/frame_logits"] = np.asarray(toy.frame_logits(tclip), dtype=np.float64)
    out["toy/video_score"] = np.float64(toy.video_score(tclip))
    out["toy/base.frame_logits"] = frame_logits(toy, tclip, batch_size=3)
    expl = create_explainer("shap3d", toy, nsamples=64, n_segments=32, compactness=30.0)
    out["toy/shap3d"] = expl.explain(tclip).maps
    out["toy/shap3d/score"] = np.float64(expl.explain(tclip).score)
    scorer = detector_scorer(toy, max_batch_frames=3)
    out["toy/scorer"] = scorer(np.stack([tclip, tclip[::-1]]))

    for name in ("plain", "bonettini", "ltpa"):
        det = load_detector(name)
        x = det.preprocess(crops)
        out[f"{name}/preprocess"] = x.numpy()
        out[f"{name}/preprocess_small"] = det.preprocess(small).numpy()
        logits = det.frame_logits(crops)
        out[f"{name}/frame_logits"] = logits
        out[f"{name}/base.frame_logits"] = frame_logits(det, crops, batch_size=3)
        with torch.no_grad():
            out[f"{name}/forward"] = det(x).numpy()
        out[f"{name}/video_score"] = np.float64(det.video_score(crops))
        for how in ("mean_logit", "mean_prob", "median"):
            out[f"{name}/aggregate/{how}"] = np.float64(aggregate_logits(logits, how))
        att = det.attention(x) if name != "plain" else None
        if att is not None:
            for i, a in enumerate(att if isinstance(att, list) else [att]):
                out[f"{name}/attention/{i}"] = a.detach().numpy()
        four = crops[:4]
        params = {
            "gradcam": {},
            "saliency": {},
            "integrated_gradients": {"n_steps": 4},
            "shap3d": {"nsamples": 48, "n_segments": 32},
            "lime3d": {"num_samples": 24, "n_segments": 32},
        }
        if name != "plain":
            params[name] = {}
        for ex, kw in params.items():
            e = create_explainer(ex, det, **kw).explain(four)
            out[f"{name}/{ex}/maps"] = e.maps
            out[f"{name}/{ex}/score"] = np.float64(e.score)
            if name == "plain" and ex == "gradcam":
                for metric in (DeletionAUC(steps=4), InsertionAUC(steps=4)):
                    out[f"{name}/{ex}/{metric.name}"] = np.float64(metric(four, e.maps, det))
                    ends = metric.endpoints(four, det)
                    out[f"{name}/{ex}/{metric.name}/ends"] = np.asarray(ends)
        out[f"{name}/scorer"] = detector_scorer(det)(np.stack([crops[:3], crops[1:4]]))
    return out


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray], atol: float) -> int:
    bad = 0
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            print(f"{key}: only in {'after' if key not in a else 'before'}")
            bad += 1
            continue
        x, y = np.asarray(a[key]), np.asarray(b[key])
        if x.shape != y.shape or x.dtype != y.dtype:
            print(f"{key}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
            bad += 1
            continue
        if np.array_equal(x, y):
            print(f"{key}: identical")
            continue
        diff = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
        print(f"{key}: max abs difference {diff:.3g}")
        bad += diff > atol
    print(f"{len(set(a) | set(b))} arrays, {bad} differ")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="where to write the .npz")
    ap.add_argument("--frames", type=int, default=8, help="frames sampled from the video")
    ap.add_argument("--compare", help="an earlier .npz to compare with")
    ap.add_argument("--atol", type=float, default=0.0)
    args = ap.parse_args()
    data = record(args.frames)
    np.savez(args.out, **{k.replace("/", "|"): v for k, v in data.items()})
    if args.compare:
        with np.load(args.compare) as f:
            before = {k.replace("|", "/"): f[k] for k in f.files}
        return compare(before, data, args.atol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
