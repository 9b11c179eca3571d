"""CPU inference throughput of the demo detectors, and the training speed-up of the
cached frozen trunk.

    .venv/bin/python benchmarks/bench_detectors.py [--frames 64] [--threads N]

Prints frames/s of ``Detector.frame_logits`` on uint8 face crops (preprocessing
included) for each demo checkpoint in ``models/`` (random-init models of the same
architecture and input size when a checkpoint is missing), with the ratio to ``plain``
measured in the same run; then images/s of one training step with the full network vs
with the stem + 3 frozen stages cached (``xai-study train --freeze-stages 3``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _rate(fn, n_items: int, repeats: int = 3) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_items / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from xai_study.detectors import create_detector, load_detector
    from xai_study.errors import CheckpointError

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    rates = {}
    size = 128
    for name in ("plain", "bonettini", "ltpa"):
        try:
            det = load_detector(name)
            src = "checkpoint"
        except CheckpointError:
            det = create_detector(name, input_size=size)
            src = "random init (no checkpoint)"
        s = det.input_size
        frames = np.random.default_rng(0).integers(0, 256, (args.frames, s, s, 3), dtype=np.uint8)
        rates[name] = _rate(lambda d=det, f=frames: d.frame_logits(f), args.frames)
        print(
            f"inference {name:10s} {s}px ({src}): {rates[name]:7.1f} frames/s "
            f"(x{rates[name] / rates['plain']:.2f} of plain)"
        )

    from xai_study.detectors.train import freeze_early

    for name in ("plain", "ltpa"):
        det = create_detector(name, input_size=size, pretrained=True)
        freeze_early(det, 3)
        det.train()
        opt = torch.optim.AdamW([p for p in det.parameters() if p.requires_grad], 1e-3)
        x = torch.randn(32, 3, size, size)
        y = torch.rand(32, 1)
        with torch.no_grad():
            h = det.trunk(x, 3)

        def step(full: bool, d=det, o=opt, x=x, h=h, y=y) -> None:
            out = d(x) if full else d.forward_from(h, 3)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y)
            o.zero_grad()
            loss.backward()
            o.step()

        full = _rate(lambda s=step: s(True), 32, repeats=2)
        cached = _rate(lambda s=step: s(False), 32, repeats=2)
        print(
            f"training step {name:6s} {size}px: full {full:6.1f} img/s, cached trunk "
            f"{cached:6.1f} img/s (x{cached / full:.2f})"
        )


if __name__ == "__main__":
    main()
