"""Speed of the explanation metrics (run: .venv/bin/python benchmarks/bench_metrics.py).

1. The paper's four metrics on a 32 x 224 x 224 clip: the vectorised implementation
   against a per-frame, per-shift, per-row Python loop written from design §2
   (same numbers, checked), as a ratio measured in the same run.
2. Deletion + insertion AUC with a real detector (EfficientNet-Lite0 'plain', random
   head): batched scoring of the perturbed clips (``detector_scorer``, all clips of a
   batch in one forward pass, endpoints shared) against scoring each perturbed clip
   on its own with ``detector.video_score`` (the unbatched baseline).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def naive_paper(maps):
    from xai_study.maps import normalise

    n = normalise(maps)
    t_, h, w = n.shape
    dy, dx = round(0.1 * h), round(0.1 * w)
    v = float(np.mean([f.var() for f in n]))
    taus = [
        np.corrcoef(n[t].ravel(), n[t + 1].ravel())[0, 1]
        for t in range(t_ - 1)
        if np.ptp(n[t]) > 0 and np.ptp(n[t + 1]) > 0
    ]
    rhos, mus = [], []
    for f in n:
        if np.ptp(f) == 0:
            continue
        x = f - f.mean()
        a0 = (x * x).sum()
        vals = []
        for sy, sx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            u, s = dy * sy, dx * sx
            total = 0.0
            for y in range(h - u):
                row = x[y]
                other = x[y + u]
                if s >= 0:
                    total += float(row[: w - s] @ other[s:])
                else:
                    total += float(row[-s:] @ other[: w + s])
            vals.append(total)
        rhos.append(np.mean(vals) / a0)
        mus.append(f[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2].sum() / f.sum())
    return {"V": v, "tau": np.mean(taus), "rho": np.mean(rhos), "mu": np.mean(mus)}


def timed(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_paper():
    from xai_study.metrics import paper_metrics

    rng = np.random.default_rng(0)
    maps = rng.random((32, 224, 224)) ** 4
    t_fast, fast = timed(lambda: paper_metrics(maps))
    t_slow, slow = timed(lambda: naive_paper(maps), repeat=1)
    for k in fast:
        assert abs(fast[k] - slow[k]) < 1e-9, (k, fast[k], slow[k])
    print("paper metrics, 32 x 224 x 224 clip")
    print(f"  vectorised   {t_fast * 1000:8.1f} ms")
    print(f"  row loop     {t_slow * 1000:8.1f} ms")
    print(f"  speed-up     {t_slow / t_fast:8.1f} x  (identical values)")


def bench_faithfulness(frames: int, size: int, steps: int):
    import torch

    from xai_study.detectors import create_detector
    from xai_study.metrics import DeletionAUC, InsertionAUC

    torch.set_num_threads(max(1, torch.get_num_threads()))
    det = create_detector("plain", input_size=size).eval()
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    maps = rng.random((frames, size, size))

    def unbatched(batch):
        return np.array([det.video_score(c) for c in batch])

    def batched_run():
        d, i = (
            DeletionAUC(steps, "blur", batch_size=steps),
            InsertionAUC(steps, "blur", batch_size=steps),
        )
        ends = d.endpoints(clip, det)
        return d(clip, maps, det, endpoints=ends), i(clip, maps, det, endpoints=ends)

    def unbatched_run():
        d, i = DeletionAUC(steps, "blur", batch_size=1), InsertionAUC(steps, "blur", batch_size=1)
        return d(clip, maps, unbatched), i(clip, maps, unbatched)

    t_b, (db, ib) = timed(batched_run, repeat=1)
    t_u, (du, iu) = timed(unbatched_run, repeat=1)
    assert abs(db - du) < 1e-4 and abs(ib - iu) < 1e-4, (db, du, ib, iu)
    clips_b, clips_u = 2 * (steps - 1) + 2, 2 * (steps + 1)
    print(f"deletion + insertion AUC, {frames} frames at {size} px, {steps} steps, plain detector")
    print(f"  batched + shared endpoints {t_b:7.2f} s  ({clips_b} clips scored)")
    print(f"  one clip at a time         {t_u:7.2f} s  ({clips_u} clips scored)")
    print(f"  speed-up                   {t_u / t_b:7.2f} x  (same AUCs: {db:.4f}, {ib:.4f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    bench_paper()
    bench_faithfulness(args.frames, args.size, args.steps)


if __name__ == "__main__":
    main()
