"""Live demo benchmark: end-to-end time of the ``fast`` preset on a bundled ~3 s clip
(cold cache), the same request again (warm cache), and the process's peak memory.

    .venv/bin/python benchmarks/bench_demo.py [--video PATH] [--frames N] [--random-init]

Targets (issue 8): cold <= 60 s on 2 CPU cores, warm <= 1 s, peak memory <= 4 GB.
Uses the demo checkpoints in models/ when present; ``--random-init`` (or missing
checkpoints) uses randomly initialised detectors of the same architectures (same cost).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", help="video to analyse (default: first bundled fake video)")
    ap.add_argument("--frames", type=int, default=16, help="frames (fast preset: 16)")
    ap.add_argument("--random-init", action="store_true", help="random-init detectors")
    args = ap.parse_args()

    import torch

    from xai_study.demo import DemoSettings, ResultCache, run_demo
    from xai_study.video import probe_codec

    video = Path(args.video) if args.video else None
    if video is None:
        videos = sorted((ROOT / "study_data/demo_data/videos").glob("fake_*.mp4"))
        if not videos:
            print("no bundled demo video found; pass --video")
            return 2
        video = videos[0]
    info = probe_codec(video)
    secs = info["frames"] / info["fps"] if info["fps"] else float("nan")
    have = all((ROOT / "models" / f"{a}.pt").exists() for a in ("plain", "ltpa", "bonettini"))
    dets, det_id = None, "demo-checkpoints"
    if args.random_init or not have:
        from xai_study.detectors import create_detector

        torch.manual_seed(0)
        dets = {a: create_detector(a).eval() for a in ("plain", "ltpa", "bonettini")}
        det_id = "random-init"
    print(f"video: {video.name} ({secs:.1f} s, {info['width']}x{info['height']})")
    print(f"detectors: {det_id}; torch threads: {torch.get_num_threads()}")
    settings = DemoSettings(preset="fast", frames=args.frames, detectors=det_id)
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResultCache(Path(tmp) / "cache")
        t0 = time.perf_counter()
        res = run_demo(video, settings, cache, detectors=dets)
        cold = time.perf_counter() - t0
        stages = res.seconds
        t0 = time.perf_counter()
        again = run_demo(video, settings, cache, detectors=dets)
        warm = time.perf_counter() - t0
        assert again.cached
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"verdict: {res.verdict} (P(fake) = {res.p_fake:.3f})")
    print("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(
        f"cold end-to-end (fast preset): {cold:.1f} s   target <= 60 s   {'OK' if cold <= 60 else 'OVER'}"
    )
    print(
        f"warm cache:                    {warm:.3f} s  target <= 1 s    {'OK' if warm <= 1 else 'OVER'}"
    )
    print(f"speed-up warm vs cold:         {cold / max(warm, 1e-9):.0f}x")
    print(
        f"peak memory (max RSS):         {peak_gb:.2f} GB  target <= 4 GB   {'OK' if peak_gb <= 4 else 'OVER'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
