"""How long the study analysis takes as a study grows (the results page recomputes it on
every refresh). Prints seconds per call for synthetic studies of N participants x 20
sections and the ratio against the paper's size (67 participants), measured in the
same run. Usage: ``python benchmarks/bench_analysis.py [--sizes 67,500,2000]``."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from xai_study.study.analysis import REQUIRED_RESPONSE_COLUMNS, analyze, figures
from xai_study.study.export import read_responses, write_csv

EXPLAINERS = ["gradcam", "shap", "ltpa", "bonettini"]


def synthetic(participants: int, sections: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = participants * sections
    pid = np.repeat([f"p{i:05d}" for i in range(participants)], sections)
    sec = np.tile([f"s{j:02d}" for j in range(sections)], participants)
    q1 = rng.choice(["video1", "video2", "dont_know"], size=n, p=[0.1, 0.8, 0.1])
    return pd.DataFrame(
        {
            "participant_id": pid,
            "section": sec,
            "video_id": [f"fake_{s[1:]}" for s in sec],
            "q1_answer": q1,
            "q1_correct": [None if a == "dont_know" else a == "video2" for a in q1],
            "q2_choice": rng.choice(EXPLAINERS, size=n, p=[0.23, 0.31, 0.19, 0.27]),
            "screen": np.repeat(rng.choice(["large", "small"], size=participants), sections),
            "familiarity": np.repeat(
                rng.choice(["yes", "heard of it", "no"], size=participants), sections
            ),
            "answered_at": "2026-01-01T00:00:00+00:00",
        },
        columns=list(REQUIRED_RESPONSE_COLUMNS),
    )


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="67,500,2000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    analyze(synthetic(10))  # warm up imports
    base = None
    print(
        f"{'participants':>12} {'answers':>8} {'analyze s':>10} {'x67':>6} {'plots s':>8} "
        f"{'csv round trip s':>17}"
    )
    import tempfile
    from pathlib import Path

    for n in sizes:
        frame = synthetic(n)
        t_an = best_of(lambda frame=frame: analyze(frame))
        result = analyze(frame)
        t_plot = best_of(lambda result=result: figures(result), repeat=2)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "responses.csv"
            t_csv = best_of(
                lambda frame=frame, path=path: read_responses(write_csv(frame, path)), repeat=2
            )
        base = base or t_an
        print(
            f"{n:>12} {len(frame):>8} {t_an:>10.3f} {t_an / base:>6.1f} {t_plot:>8.3f} "
            f"{t_csv:>17.3f}"
        )


if __name__ == "__main__":
    main()
