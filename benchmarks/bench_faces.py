"""Benchmark: video -> face clip on the CPU (issue 2 target: <= 15 s for 32 frames).

Times, in one process on the 20 s 640x360 test video (tests/data/WolfgangLanger_Pexels.mp4):
  decode   read_video(32 frames) alone: the baseline every other figure is divided by;
  load     importing torch and building MTCNN (once per process);
  cold     the first extract_face_clip call after dropping the cached model (rebuild +
           warm-up; the imports are already done);
  warm     extract_face_clip once the model is loaded (median of --repeat runs);
  threads  detection with 1 torch thread (the default) against torch's default count;
the detection resolution trade-off (max_side) with the coverage each one gives; and
(--long) decoding 32 frames of a 2.6 min video (the test video looped 8x, a keyframe
every 2 s, made in a temporary folder) with keyframe seeking against a full decode.
Each line gives wall seconds and the process's CPU seconds (on a shared machine the wall
time grows with other people's load).

    .venv/bin/python benchmarks/bench_faces.py [--video PATH] [--frames 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


CPU = {"last": 0.0}


def timed(fn, *args, **kw):
    """Wall seconds and result; the process CPU seconds go to CPU["last"]."""
    c = time.process_time()
    t = time.perf_counter()
    out = fn(*args, **kw)
    CPU["last"] = time.process_time() - c
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(ROOT / "tests/data/WolfgangLanger_Pexels.mp4"))
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--long", action="store_true", help="also time decoding a long video")
    args = ap.parse_args()

    import torch

    from xai_study.video import extract_face_clip, read_video
    from xai_study.video import faces as faces_mod

    print(f"video: {args.video}  frames: {args.frames}")
    print(f"cpu cores: {os.cpu_count()}  torch threads: {torch.get_num_threads()}")
    print(f"load average: {os.getloadavg()[0]:.2f} (others' work on the machine skews timings)")

    threads = torch.get_num_threads()
    decode, decode_cpu = [], []
    for _ in range(args.repeat):
        decode.append(timed(read_video, args.video, args.frames)[0])
        decode_cpu.append(CPU["last"])
    t_decode, c_decode = statistics.median(decode), statistics.median(decode_cpu)
    video = read_video(args.video, args.frames)
    h, w = video.size
    print(
        f"decode  {t_decode:6.2f} s wall {c_decode:6.2f} s cpu  "
        f"({w}x{h}, {video.total_frames} frames in the file)"
    )

    t_load, _ = timed(faces_mod.get_mtcnn)
    print(f"load    {t_load:6.2f} s wall {CPU['last']:6.2f} s cpu  (import + build MTCNN)")
    faces_mod._MODELS.clear()  # measure the cold path again, inside extract_face_clip
    t_cold, clip = timed(extract_face_clip, args.video, num_frames=args.frames)
    print(
        f"cold    {t_cold:6.2f} s wall {CPU['last']:6.2f} s cpu  "
        f"= {t_cold / t_decode:5.1f} x decode wall  (coverage {clip.coverage:.2f})"
    )
    warm, warm_cpu = [], []
    for _ in range(args.repeat):
        warm.append(timed(extract_face_clip, args.video, num_frames=args.frames)[0])
        warm_cpu.append(CPU["last"])
    t_warm, c_warm = statistics.median(warm), statistics.median(warm_cpu)
    print(
        f"warm    {t_warm:6.2f} s wall {c_warm:6.2f} s cpu  = {t_warm / t_decode:5.1f} x decode "
        f"wall, {c_warm / c_decode:5.1f} x decode cpu"
    )
    verdict = {True: "met", False: "NOT met"}
    print(
        f"target <= 15 s for {args.frames} frames: warm {t_warm:.1f} s {verdict[t_warm <= 15]}; "
        f"first call of a process (load + cold) {t_load + t_cold:.1f} s "
        f"{verdict[t_load + t_cold <= 15]}"
    )

    print(
        f"torch threads during detection (default 1), frames already decoded, {args.repeat} runs:"
    )
    for n in (1, None):
        walls, cpus = [], []
        for _ in range(args.repeat):
            walls.append(timed(extract_face_clip, video, threads=n)[0])
            cpus.append(CPU["last"])
        label = "1" if n else f"{threads} (torch default)"
        print(
            f"  threads {label:>18}: median {statistics.median(walls):6.2f} s wall "
            f"(min {min(walls):5.2f}, max {max(walls):5.2f})  {statistics.median(cpus):6.2f} s cpu"
        )

    print("detection resolution (longest side seen by MTCNN), frames already decoded:")
    for side in (None, 640, 480, 320):
        t, c = timed(extract_face_clip, video, max_side=side)
        label = "full" if side is None else str(side)
        print(
            f"  max_side {label:>4}: {t:6.2f} s wall {CPU['last']:6.2f} s cpu  "
            f"coverage {c.coverage:.2f}"
        )

    if args.long:
        bench_long(args.video, args.frames, args.repeat)


def bench_long(path: str, frames: int, repeat: int) -> None:
    import tempfile
    from fractions import Fraction

    import av

    from xai_study.video import read_video

    src = read_video(path, num_frames=None)
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / "long.mp4"
        with av.open(str(long), mode="w") as c:
            s = c.add_stream("libx264", rate=Fraction(src.fps).limit_denominator(1001))
            s.height, s.width = src.size
            s.pix_fmt = "yuv420p"
            s.options = {"crf": "28", "preset": "ultrafast", "g": str(round(2 * src.fps))}
            for _ in range(8):
                for f in src.frames:
                    for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                        c.mux(packet)
            for packet in s.encode():
                c.mux(packet)
        n = 8 * len(src.frames)
        results = {}
        for seek in (True, False):
            walls = [timed(read_video, long, frames, seek=seek)[0] for _ in range(repeat)]
            results[seek] = statistics.median(walls)
        same = np.array_equal(
            read_video(long, frames, seek=True).frames, read_video(long, frames, seek=False).frames
        )
        print(f"long video ({n} frames, {n / src.fps / 60:.1f} min), {frames} frames sampled:")
        print(f"  full decode    {results[False]:6.2f} s wall (baseline)")
        print(
            f"  keyframe seek  {results[True]:6.2f} s wall = {results[False] / results[True]:.1f}x "
            f"faster; identical frames: {same}"
        )


if __name__ == "__main__":
    main()
