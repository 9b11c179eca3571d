"""Explainer cost on a 16-frame face clip (CPU).

Prints, measured in the same run:

1. the wall time of the paper's four explainers (gradcam, shap3d, ltpa, bonettini) with
   the ``fast`` preset, one line per explainer, and the process's peak memory (RSS)
   at the end of that run (targets: <= 60 s on 2 cores, <= 3 GB);
2. SHAP-3D overhead: its wall time divided by the time of the *same number* of batched
   model evaluations alone (the same batch sizes, preprocess + forward on real frames,
   no masking, no SHAP) (target <= 1.15), with the number of frame evaluations the
   per-frame cache saved.

The detectors are the demo checkpoints when ``models/`` has them, otherwise randomly
initialised (ImageNet-backbone) detectors of the same architecture and size, which cost
the same. Face extraction is not timed.

Usage: ``python benchmarks/bench_explainers.py [--video PATH] [--frames 16] [--threads 2]``
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAPER = ("gradcam", "shap3d", "ltpa", "bonettini")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def load_detectors():
    from xai_study.detectors import create_detector, load_detector

    dets, source = {}, {}
    for arch in ("plain", "bonettini", "ltpa"):
        if (ROOT / "models" / f"{arch}.pt").is_file():
            dets[arch], source[arch] = load_detector(arch), "demo checkpoint"
        else:
            dets[arch] = create_detector(arch, pretrained=True)
            source[arch] = "random head on ImageNet lite0 (no demo checkpoint)"
    return dets, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(ROOT / "tests" / "data" / "single_face.mp4"))
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="SHAP overhead repeats (min)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from xai_study.detectors.contract import batched_logits
    from xai_study.explainers import create_explainer, explainer_class
    from xai_study.runs import explainer_params
    from xai_study.video import extract_face_clip

    clip = extract_face_clip(args.video, num_frames=args.frames)
    dets, source = load_detectors()
    # warm up imports and kernels (not part of the figures)
    create_explainer("gradcam", dets["plain"]).explain(clip.frames[:1])
    batched_logits(dets["plain"], clip.frames[:2], 16)
    rss_ready = peak_rss_mb()
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f} (other processes share the cores: the figures scale with the load)"
    )
    print(
        f"clip: {len(clip.frames)} frames {clip.frames.shape[1]}x{clip.frames.shape[2]} "
        f"from {Path(args.video).name}; torch threads: {torch.get_num_threads()}"
    )
    for arch, text in source.items():
        cfg = dets[arch].config
        print(f"detector {arch}: {cfg['backbone']} {cfg['input_size']}px, {text}")

    # 1. the paper's four with the fast preset
    print("\n[1] paper's four explainers, preset 'fast'")
    total = 0.0
    results = {}
    for name in PAPER:
        cls = explainer_class(name)
        det = dets[cls.requires or "plain"]
        params = {k: v for k, v in explainer_params("fast", name).items() if k in cls.defaults}
        t0 = time.perf_counter()
        results[name] = create_explainer(name, det, **params).explain(clip)
        dt = time.perf_counter() - t0
        total += dt
        print(f"  {name:10s} {dt:7.2f} s  peak RSS so far {peak_rss_mb():5.0f} MB  params={params}")
    print(f"  total wall time: {total:.1f} s (target <= 60 s on 2 cores)")
    print(
        f"  peak RSS: {peak_rss_mb():.0f} MB (after loading models + clip: {rss_ready:.0f} MB; "
        "target <= 3072 MB)"
    )

    # 2. SHAP-3D overhead over its own model evaluations
    print("\n[2] SHAP-3D overhead (fast preset)")
    det = dets["plain"]
    params = explainer_params("fast", "shap3d")
    # alternate the two measurements and keep the fastest of each (the cores are shared)
    shap_times, model_times, inside = [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        expl = create_explainer("shap3d", det, **params).explain(clip)
        shap_times.append(time.perf_counter() - t0)
        x = expl.extra
        sizes = x["batch_sizes"]
        frames = clip.frames
        pool = np.concatenate([frames] * (max(sizes) // len(frames) + 2))
        t0 = time.perf_counter()
        for i, b in enumerate(sizes):
            start = (i * 7) % len(frames)
            # in the precision the game ran in (the preset's "auto" may pick bfloat16)
            batched_logits(det, pool[start : start + b], batch_size=b, precision=x["precision"])
        model_times.append(time.perf_counter() - t0)
        inside.append(x["model_seconds"])
    shap_wall, model_only = min(shap_times), min(model_times)
    gap = x["f_clip"] - x["f_baseline"]
    err = abs(x["values"].sum() - gap) / max(abs(gap), 1e-12)
    print(
        f"  supervoxels {x['supervoxels']}, coalitions {x['coalitions']}, "
        f"frame evaluations {x['frames_evaluated']} in {x['batches']} batches "
        f"(without the per-frame cache: {x['frames_without_cache']}, "
        f"{x['frames_without_cache'] / max(x['frames_evaluated'], 1):.2f}x more)"
    )
    print(
        f"  SHAP-3D wall time ({x['precision']}): {shap_wall:.2f} s; same batched model "
        "evaluations alone: "
        f"{model_only:.2f} s"
    )
    print(
        f"  runs: SHAP-3D {[round(t, 2) for t in shap_times]} s, model alone "
        f"{[round(t, 2) for t in model_times]} s (the fastest of each is used)"
    )
    print(f"  overhead ratio: {shap_wall / model_only:.3f} (target <= 1.15)")
    in_run = [round(t / m, 3) for t, m in zip(shap_times, inside, strict=True)]
    print(
        "  same ratio inside each SHAP-3D run (wall / its own detector time, immune to "
        f"load changes between runs): {in_run}"
    )
    print(
        f"  efficiency: sum(phi) = {x['values'].sum():.5f}, f(clip) - f(baseline) = "
        f"{gap:.5f}, relative error {100 * err:.4f} %"
    )
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
