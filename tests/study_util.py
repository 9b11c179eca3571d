"""Helpers for the study tests: a tiny but real study folder (H.264 clips made from the
committed test video) written in the study file format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xai_study.study.spec import write_study
from xai_study.video import read_video, write_video

ROOT = Path(__file__).resolve().parents[1]
EXPLAINERS = ["gradcam", "shap", "ltpa", "bonettini"]


def make_study(
    out: Path,
    n_sections: int = 4,
    shown: int | None = None,
    checks: bool = True,
    q2_mode: str = "single",
    redirect_url: str = "https://example.org/done?cc={code}",
    **fields,
) -> Path:
    """Write a study with ``n_sections`` sections (64x64 px, 6-frame clips) into ``out``;
    ``fields`` are further study-file fields (``quota=2``, ...)."""
    frames = read_video(ROOT / "tests" / "data" / "single_face.mp4", num_frames=6).frames
    small = frames[:, ::4, ::4][:, :64, :64].copy()
    media = out / "media"
    media.mkdir(parents=True, exist_ok=True)
    sections = []
    for i in range(1, n_sections + 1):
        sid = f"s{i:02d}"
        real = write_video(small, media / f"{sid}_real.mp4", fps=6)
        fake = write_video(255 - small, media / f"{sid}_fake.mp4", fps=6)
        anims = {}
        for j, name in enumerate(EXPLAINERS):
            tinted = small.copy()
            tinted[..., j % 3] = 255
            anims[name] = write_video(tinted, media / f"{sid}_{name}.mp4", fps=6)
        sections.append(
            {
                "id": sid,
                "video_id": f"fake_{i:03d}",
                "real_video_id": f"real_{i:03d}",
                "real": str(real.relative_to(out)),
                "fake": str(fake.relative_to(out)),
                "animations": {k: str(v.relative_to(out)) for k, v in anims.items()},
            }
        )
    data = {
        "name": out.name,
        "title": "Test study",
        "sections_shown": shown or n_sections,
        "q2_mode": q2_mode,
        "explainers": EXPLAINERS,
        "completion_code": "TEST-CODE-42",
        "redirect_url": redirect_url,
        "attention_checks": (
            [
                {
                    "id": "ac1",
                    "after": 1,
                    "question": "To show that you read this, choose 'Blue'.",
                    "choices": ["Red", "Blue", "Green"],
                    "answer": "Blue",
                }
            ]
            if checks
            else []
        ),
        "sections": sections,
        **fields,
    }
    return write_study(data, out)


def assert_unique(values) -> None:
    values = list(values)
    assert len(values) == len(set(values)), values


__all__ = ["EXPLAINERS", "assert_unique", "make_study", "np"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for test servers)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_call(url: str, api: str, data: list, query: str = "", timeout: float = 60) -> list:
    """One raw HTTP call of a survey endpoint (``/gradio_api/call/<api>``), as a script
    or a participant's browser makes it; ``query`` is the link's ``?PROLIFIC_PID=...``;
    ``timeout`` for the call (twice that for reading its result stream)."""
    import json

    import requests

    base = url.rstrip("/")
    r = requests.post(f"{base}/gradio_api/call/{api}{query}", json={"data": data}, timeout=timeout)
    r.raise_for_status()
    event = r.json()["event_id"]
    with requests.get(
        f"{base}/gradio_api/call/{api}/{event}", stream=True, timeout=2 * timeout
    ) as s:
        kind = None
        for line in s.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                assert kind == "complete", line
                return json.loads(line.split(":", 1)[1])
    raise AssertionError(f"{api}: no result")
