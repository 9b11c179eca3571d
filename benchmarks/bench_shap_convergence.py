"""SHAP-3D convergence at demo cost: per-frame games against whole-clip Kernel SHAP.

For a preset's supervoxels (``--preset fast``: 16 frames, 224 px; ``paper``: 32
frames; n_segments / compactness / temporal_spacing / nsamples from ``PRESETS``), the
demo plain detector and the first N demo test fakes (``study_data/demo_data/labels.csv``, split test, label fake), prints
per clip and as medians:

1. SHAP-3D (``method="frames"``, ``--nsamples`` coalitions per frame game) run with two
   seeds: the Spearman correlation between the two seeds' supervoxel values (target
   median >= 0.9), the convergence figure's own prediction of it (``agreement``), the
   frame evaluations used, the wall time, and the wall time divided by the time spent
   inside the detector for those evaluations (target <= 1.10; ``--replay`` also times
   the same batches replayed through the detector alone);
2. the old whole-clip Kernel SHAP (``method="clip"``) with the number of coalitions
   that costs about the same frame evaluations, also with two seeds: its seed-to-seed
   Spearman at that cost;
3. with ``--four``, the wall time of the other three explainers of the paper on the
   first clip, added to SHAP-3D's (target <= 60 s per clip).

``--eval-size N`` also runs SHAP-3D with its masked evaluations at N px (the supervoxel
parameter ``input_size``), two seeds, and prints how well those values agree with the
full-size ones (Spearman against the full-size seed 0) beside the full-size seed-to-seed
Spearman, and the wall time at N px: a cheaper evaluation is worth it only if the first
is about as high as the second. ``--precision bfloat16`` does the same for masked
evaluations under bfloat16 autocast (the two options combine).

``--input-size`` runs the detector at another input size (a cheaper stand-in when the
cores are busy: the explanation is then of that input, state it). Timings scale with the
load on the shared cores (printed).

Usage: ``python benchmarks/bench_shap_convergence.py [--clips 5] [--preset fast]
[--nsamples 384] [--base-precision float32] [--input-size 224] [--eval-size 160]
[--precision bfloat16] [--threads 2] [--four] [--replay] [--no-clip-method]``
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def demo_fakes(n: int) -> list[tuple[str, Path]]:
    root = ROOT / "study_data" / "demo_data"
    with open(root / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test" and r["label"] == "fake"]
    return [(r["video_id"], root / r["path"]) for r in rows[:n]]


def run(det, frames, params, seed):
    from xai_study.explainers import create_explainer

    t0 = time.perf_counter()
    expl = create_explainer("shap3d", det, seed=seed, **params).explain(frames)
    return expl, time.perf_counter() - t0


def replay(det, frames, sizes) -> float:
    """Time of the same batch sizes of frames through the detector alone."""
    from xai_study.explainers.base import frame_logits

    pool = np.concatenate([frames] * (max(sizes) // len(frames) + 2))
    t0 = time.perf_counter()
    for i, b in enumerate(sizes):
        start = (i * 7) % len(frames)
        frame_logits(det, pool[start : start + b], batch_size=b)
    return time.perf_counter() - t0


def main() -> None:
    from xai_study.detectors.contract import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--preset", choices=("fast", "paper"), default="fast")
    parser.add_argument(
        "--nsamples", type=int, default=0, help="coalitions per frame game (0: the preset's)"
    )
    parser.add_argument("--frames", type=int, default=0, help="frames (0: the preset's)")
    parser.add_argument(
        "--base-precision",
        choices=PRECISIONS,
        default="float32",
        help="precision of the main two-seed runs (float32: the reference)",
    )
    parser.add_argument("--input-size", type=int, default=0, help="detector input (0: its own)")
    parser.add_argument("--eval-size", type=int, default=0, help="also SHAP-3D at this size")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="also SHAP-3D with the masked evaluations in this precision (bfloat16 autocast)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--four", action="store_true", help="time the other three explainers")
    parser.add_argument("--replay", action="store_true", help="replay the batches alone")
    parser.add_argument("--no-clip-method", action="store_true", help="skip method=clip")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from xai_study.detectors import load_detector
    from xai_study.explainers import create_explainer, explainer_class
    from xai_study.explainers.convergence import rank_correlation
    from xai_study.runs import PRESETS
    from xai_study.video import extract_face_clip

    det = load_detector("plain")
    if args.input_size:
        det.config["input_size"] = int(args.input_size)
    chosen = PRESETS[args.preset]
    fast = chosen["explainer_params"]["shap3d"]
    seg = {k: fast[k] for k in ("n_segments", "compactness", "temporal_spacing") if k in fast}
    nsamples = args.nsamples or int(fast["nsamples"])
    params = {**seg, "method": "frames", "nsamples": nsamples, "precision": args.base_precision}
    n_frames = args.frames or int(chosen["frames"])
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f}; torch threads {torch.get_num_threads()}; detector plain "
        f"{det.config['backbone']} at {det.input_size} px"
    )
    print(f"SHAP-3D params: {params}")
    variant = {}
    if args.eval_size:
        variant["input_size"] = args.eval_size
    if args.precision != "float32":
        variant["precision"] = args.precision
    vname = ", ".join(
        ([f"{args.eval_size} px"] if args.eval_size else [])
        + ([args.precision] if args.precision != "float32" else [])
    )
    rows = []
    for video_id, path in demo_fakes(args.clips):
        frames = extract_face_clip(str(path), num_frames=n_frames, size=224).frames
        a, wall_a = run(det, frames, params, seed=0)
        b, wall_b = run(det, frames, params, seed=1)
        xa, xb = a.extra, b.extra
        row = {
            "clip": video_id,
            "players": int(xa["supervoxels"]),
            "per_frame": float(np.mean([len(p) for p in map(np.unique, xa["segments"])])),
            "spearman": rank_correlation(xa["values"], xb["values"]),
            "agreement": xa["convergence"]["agreement"],
            "evals": int(xa["frames_evaluated"]),
            "wall": wall_a,
            "ratio": wall_a / max(xa["model_seconds"], 1e-9),
            "ratio_b": wall_b / max(xb["model_seconds"], 1e-9),
        }
        if variant:
            small = {**params, **variant}
            c, row["small_wall"] = run(det, frames, small, seed=0)
            d, _ = run(det, frames, small, seed=1)
            row["small_vs_full"] = rank_correlation(xa["values"], c.extra["values"])
            row["small_vs_full_b"] = rank_correlation(xa["values"], d.extra["values"])
            row["small_seeds"] = rank_correlation(c.extra["values"], d.extra["values"])
            row["small_ratio"] = row["small_wall"] / max(c.extra["model_seconds"], 1e-9)
        if args.replay:
            row["replay_ratio"] = wall_a / replay(det, frames, xa["batch_sizes"])
        if not args.no_clip_method:
            # whole-clip coalitions cost about T / 1.5 frame evaluations (per-frame cache)
            n_clip = max(8, round(row["evals"] * 1.5 / len(frames)))
            clip_params = {**seg, "method": "clip", "nsamples": n_clip}
            c, _ = run(det, frames, clip_params, seed=0)
            d, _ = run(det, frames, clip_params, seed=1)
            row["clip_nsamples"] = n_clip
            row["clip_evals"] = int(c.extra["frames_evaluated"])
            row["clip_spearman"] = rank_correlation(c.extra["values"], d.extra["values"])
        if args.four and not rows:
            others = {}
            for name in ("gradcam", "ltpa", "bonettini"):
                arch = explainer_class(name).requires or "plain"
                other = det if arch == "plain" else load_detector(arch)
                if args.input_size:
                    other.config["input_size"] = int(args.input_size)
                kw = chosen["explainer_params"].get(name, {})
                t0 = time.perf_counter()
                create_explainer(name, other, **kw).explain(frames)
                others[name] = time.perf_counter() - t0
            row["four"] = wall_a + sum(others.values())
            row["others"] = others
        rows.append(row)
        line = (
            f"{video_id}: {row['players']} supervoxels ({row['per_frame']:.1f} per frame); "
            f"two seeds Spearman {row['spearman']:.3f} (figure predicted "
            f"{row['agreement']}); {row['evals']} frame evaluations; wall {row['wall']:.1f} s"
            f"; wall/model {row['ratio']:.3f} and {row['ratio_b']:.3f}"
        )
        if "replay_ratio" in row:
            line += f"; wall/replayed model {row['replay_ratio']:.3f}"
        if "clip_spearman" in row:
            line += (
                f"; whole-clip Kernel SHAP, {row['clip_nsamples']} coalitions = "
                f"{row['clip_evals']} frame evaluations: two seeds Spearman "
                f"{row['clip_spearman']:.3f}"
            )
        if "small_wall" in row:
            line += (
                f"; at {vname}: wall {row['small_wall']:.1f} s, Spearman with "
                f"full size seed 0: {row['small_vs_full']:.3f} (seed 0) "
                f"{row['small_vs_full_b']:.3f} (seed 1), its own two seeds "
                f"{row['small_seeds']:.3f}; wall/model {row['small_ratio']:.3f}"
            )
        if "four" in row:
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in row["others"].items())
            line += f"; four explainers {row['four']:.1f} s ({parts})"
            if "small_wall" in row:
                four = row["small_wall"] + sum(row["others"].values())
                line += f"; four explainers with SHAP-3D at {vname}: {four:.1f} s"
        print(line, flush=True)

    def med(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.median(vals)) if vals else float("nan")

    print(
        f"\nmedian over {len(rows)} clips: two-seed Spearman {med('spearman'):.3f} "
        f"(target >= 0.9), predicted {med('agreement'):.3f}; frame evaluations "
        f"{med('evals'):.0f}; wall {med('wall'):.1f} s; wall/model {med('ratio'):.3f} "
        "(target <= 1.10)"
    )
    if variant:
        print(
            f"at {vname}: wall {med('small_wall'):.1f} s; Spearman with the "
            f"full size {med('small_vs_full'):.3f} / {med('small_vs_full_b'):.3f} (seed 0 / "
            f"1) against full-size seed-to-seed {med('spearman'):.3f}; own seeds "
            f"{med('small_seeds'):.3f}; wall/model {med('small_ratio'):.3f}"
        )
    if not args.no_clip_method:
        print(
            f"whole-clip Kernel SHAP at {med('clip_evals'):.0f} frame evaluations: two-seed "
            f"Spearman {med('clip_spearman'):.3f}"
        )


if __name__ == "__main__":
    main()
