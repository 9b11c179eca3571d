"""Write xai_study/video/mtcnn_weights.npz from the MTCNN weights in facenet-pytorch 2.6.0.

facenet-pytorch is a dev dependency only (it is what the equivalence test compares
against); the runtime reads the .npz this script writes. Run once, from the repository
root, and commit the result together with the printed hashes in MTCNN_WEIGHTS.md:

    python scripts/convert_mtcnn_weights.py

Each facenet-pytorch state-dict key is renamed to the module layout of
xai_study/video/mtcnn.py (``pnet.body.0.weight`` ...); values are stored unchanged
(float32).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_study.video.mtcnn import MTCNN, WEIGHTS_FILE  # noqa: E402

# facenet-pytorch layer name -> ours, per net (Sequential indices: conv, PReLU, [pool] ...)
RENAME = {
    "pnet": {
        "conv1": "body.0",
        "prelu1": "body.1",
        "conv2": "body.3",
        "prelu2": "body.4",
        "conv3": "body.5",
        "prelu3": "body.6",
        "conv4_1": "prob",
        "conv4_2": "offsets",
    },
    "rnet": {
        "conv1": "body.0",
        "prelu1": "body.1",
        "conv2": "body.3",
        "prelu2": "body.4",
        "conv3": "body.6",
        "prelu3": "body.7",
        "dense4": "dense.0",
        "prelu4": "dense.1",
        "dense5_1": "prob",
        "dense5_2": "offsets",
    },
    "onet": {
        "conv1": "body.0",
        "prelu1": "body.1",
        "conv2": "body.3",
        "prelu2": "body.4",
        "conv3": "body.6",
        "prelu3": "body.7",
        "conv4": "body.9",
        "prelu4": "body.10",
        "dense5": "dense.0",
        "prelu5": "dense.1",
        "dense6_1": "prob",
        "dense6_2": "offsets",
        "dense6_3": "landmarks",
    },
}


def main() -> int:
    import facenet_pytorch

    src = Path(facenet_pytorch.__file__).parent / "data"
    arrays: dict[str, np.ndarray] = {}
    for net, names in RENAME.items():
        path = src / f"{net}.pt"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name}  sha256 {digest}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key, value in state.items():
            layer, param = key.rsplit(".", 1)
            arrays[f"{net}.{names[layer]}.{param}"] = value.numpy().astype(np.float32)
    np.savez_compressed(WEIGHTS_FILE, **arrays)
    MTCNN(weights=WEIGHTS_FILE)  # every parameter present, with its exact shape
    digest = hashlib.sha256(WEIGHTS_FILE.read_bytes()).hexdigest()
    print(f"wrote {WEIGHTS_FILE.relative_to(ROOT)} ({WEIGHTS_FILE.stat().st_size} bytes)")
    print(f"{WEIGHTS_FILE.name}  sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
