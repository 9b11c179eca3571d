"""``evaluate`` on Ray workers against the sequential run, measured in the same run
(issue #19's targets). On the demo test split (``--videos`` of them, half fake, half
real), preset ``fast``:

- two single-thread Ray workers vs one single-thread worker: speed-up (target >= 1.8x);
- two single-thread workers vs today's sequential run (torch's default threads): >= 1.0x;
- Ray's per-task overhead (hand-out to result at the driver, minus the worker's time on
  the video; each worker's first video, which includes its start-up, left out) as a
  share of a video's work: <= 5 %;

plus throughput in videos per hour, how far the 2-worker table is from the sequential one
(the ``seconds`` column aside: text equal, largest relative difference of the numbers)
and the load average before and after (figures from a busy machine are noisy). Usage::

    python benchmarks/bench_ray.py                       # the issue's settings
    python benchmarks/bench_ray.py --videos 4 --explainers gradcam   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from xai_study.runs.cluster import ClusterOptions
from xai_study.runs.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def compare(a, b) -> str:
    """Text cells must be equal; number cells may differ in the last digits (a worker
    runs torch on fewer threads, so its sums round differently): the largest relative
    difference is reported."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return "DIFFERENT (columns or rows)"
    worst, text = 0.0, 0
    for col in a.columns:
        for x, y in zip(a[col], b[col], strict=True):
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                text += x != y
                continue
            if fx != fy:
                worst = max(worst, abs(fx - fy) / max(abs(fx), abs(fy), 1e-12))
    if text:
        return f"DIFFERENT ({text} text cells differ)"
    return f"text cells equal, numbers within a relative {worst:.1e}"


def table(path: Path):
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns="seconds")
    return df.sort_values(["video", "explainer"]).reset_index(drop=True)


def main() -> None:
    from xai_study.explainers import paper_explainers

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "study_data/demo_data/labels.csv"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--videos", type=int, default=8, help="videos, half fake (default 8)")
    ap.add_argument(
        "--explainers",
        default=",".join(paper_explainers()),
        help="comma-separated (default: the paper's four)",
    )
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--workers", type=int, default=2, help="workers of the parallel run (2)")
    args = ap.parse_args()
    explainers = [e.strip() for e in args.explainers.split(",") if e.strip()]
    limit = max(1, args.videos // 2)
    print(f"load average before: {load()}")
    print(
        f"{args.data} split {args.split}, {2 * limit} videos, preset {args.preset}, "
        f"explainers {','.join(explainers)}"
    )

    import ray

    from xai_study.runs.cluster import init_ray

    t = time.perf_counter()
    init_ray(ClusterOptions(workers=max(args.workers, os.cpu_count() or 1), threads=1))
    print(f"ray.init (once, not in the figures below): {time.perf_counter() - t:.1f} s")

    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    common = dict(
        data=Path(args.data),
        explainers=explainers,
        preset=args.preset,
        split=args.split,
        limit=limit,
        n_boot=200,
        progress=False,
    )

    def run(name: str, cluster: ClusterOptions | None):
        reports = []
        t0 = time.perf_counter()
        evaluate(out=tmp / name, cluster=cluster, on_report=reports.append, **common)
        seconds = time.perf_counter() - t0
        n = 2 * limit
        print(f"  {name:<26} {seconds:8.1f} s  {3600 * n / seconds:8.1f} videos/h")
        return seconds, (reports[0] if reports else None)

    print("wall time of evaluate (detector and worker start-up included):")
    seq, _ = run("sequential", None)
    one, r1 = run("ray 1 worker x 1 thread", ClusterOptions(workers=1, threads=1))
    two, r2 = run(
        f"ray {args.workers} workers x 1 thread", ClusterOptions(workers=args.workers, threads=1)
    )
    ray.shutdown()

    tasks = [t for r in (r1, r2) if r is not None for t in r.tasks]
    same = compare(
        table(tmp / "sequential" / "per_video.csv"),
        table(tmp / f"ray {args.workers} workers x 1 thread" / "per_video.csv"),
    )

    def verdict(ok: bool) -> str:
        return "ok" if ok else "BELOW TARGET"

    print("figures:")
    speedup = one / two
    print(
        f"  {args.workers} workers vs 1 worker (1 thread each): {speedup:.2f}x "
        f"(efficiency {100 * speedup / args.workers:.0f} %; target >= 1.8x) {verdict(speedup >= 1.8)}"
    )
    vs_seq = seq / two
    print(
        f"  {args.workers} workers vs the sequential run: {vs_seq:.2f}x "
        f"(target >= 1.0x) {verdict(vs_seq >= 1.0)}"
    )
    if tasks:
        over = [max(0.0, rt - work) for rt, work in tasks]
        work = statistics.mean(w for _, w in tasks)
        share = 100 * statistics.mean(over) / work
        print(
            f"  Ray per-task overhead: {1000 * statistics.mean(over):.1f} ms per video, "
            f"{share:.2f} % of a video's work ({work:.1f} s; {len(tasks)} tasks; "
            f"target <= 5 %) {verdict(share <= 5)}"
        )
    else:
        print("  Ray per-task overhead: not measured (each worker had a single video)")
    print(f"  {args.workers}-worker per_video.csv against the sequential one: {same}")
    print(f"load average after: {load()}")
    print(f"outputs in {tmp}")


if __name__ == "__main__":
    main()
