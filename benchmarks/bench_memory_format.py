"""Channels-last memory format for the batched logit loop: speed and agreement.

    .venv/bin/python benchmarks/bench_memory_format.py [--frames 32] [--threads 2]

For each demo detector, times ``batched_logits`` on the same uint8 face-sized frames in
the default (NCHW) layout and in channels-last (what ``batched_logits`` now uses), in
alternating repeats within one run, and prints the ratio and the largest logit
difference. Then SHAP-3D (per-frame games, a small budget, the same seed, so the same
coalitions) on one demo test fake with both layouts: the Spearman correlation of the two
value vectors and their largest difference, i.e. whether the explanation changes.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nsamples", type=int, default=64, help="SHAP-3D coalitions per frame")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from xai_study.detectors import load_detector
    from xai_study.detectors.contract import batched_logits

    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    for name in ("plain", "bonettini", "ltpa"):
        nchw, cl = load_detector(name), load_detector(name)
        nchw._xs_channels_last = False  # keep the default layout
        s = nchw.input_size
        frames = np.random.default_rng(0).integers(0, 256, (args.frames, s, s, 3), dtype=np.uint8)
        a = batched_logits(nchw, frames, 16)
        b = batched_logits(cl, frames, 16)
        t_nchw = t_cl = float("inf")
        for _ in range(args.repeats):  # alternate, so both see the same load
            t_nchw = min(t_nchw, _best(lambda d=nchw, f=frames: batched_logits(d, f, 16), 1))
            t_cl = min(t_cl, _best(lambda d=cl, f=frames: batched_logits(d, f, 16), 1))
        print(
            f"{name:10s} {s}px: NCHW {args.frames / t_nchw:6.1f} frames/s, channels-last "
            f"{args.frames / t_cl:6.1f} frames/s (x{t_nchw / t_cl:.2f}); max |logit diff| "
            f"{float(np.abs(a - b).max()):.1e}"
        )

    from pathlib import Path

    from scipy.stats import spearmanr

    from xai_study.explainers import create_explainer
    from xai_study.labels import read_labels
    from xai_study.runs.presets import PRESETS
    from xai_study.video.clip import extract_face_clip

    root = Path(__file__).resolve().parents[1] / "study_data" / "demo_data"
    fake = next(r for r in read_labels(root / "labels.csv", split="test") if r.is_fake)
    clip = extract_face_clip(str(fake.path), num_frames=16, size=224).frames
    params = {**PRESETS["fast"]["explainer_params"]["shap3d"], "nsamples": args.nsamples}
    values = {}
    for layout in ("nchw", "channels_last"):
        det = load_detector("plain")
        if layout == "nchw":
            det._xs_channels_last = False
        t = time.perf_counter()
        expl = create_explainer("shap3d", det, seed=0, **params).explain(clip)
        values[layout] = (np.asarray(expl.extra["values"]), time.perf_counter() - t)
    (va, ta), (vb, tb) = values["nchw"], values["channels_last"]
    rho = spearmanr(va, vb).statistic
    print(
        f"SHAP-3D on {fake.video_id} ({args.nsamples} coalitions per frame, seed 0): NCHW {ta:.1f} s, "
        f"channels-last {tb:.1f} s (x{ta / tb:.2f}); values Spearman {rho:.4f}, max |diff| "
        f"{float(np.abs(va - vb).max()):.1e} (mean |value| {float(np.abs(va).mean()):.1e})"
    )


if __name__ == "__main__":
    main()
