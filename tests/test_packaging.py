"""The built wheel and sdist: package data, metadata, and the installed-copy lookup.

The wheel is built in-process with the project's build backend (hatchling, a dev
dependency), offline. The wheel is then unpacked into a folder that stands in for
site-packages, and a fresh interpreter started from another directory must find the
demo checkpoints and the demo study there and serve the study. (A full ``pip install``
into a fresh virtual environment is too heavy for the suite; README "Install" gives the
commands.)
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import requests
from study_util import free_port

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = {
    "models": ROOT / "models",
    "study_data/demo": ROOT / "study_data" / "demo",
    "study_data/demo_data": ROOT / "study_data" / "demo_data",
}


def _files(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _build(kind: str, out: Path) -> Path:
    build = pytest.importorskip("hatchling.build", reason="hatchling is a dev dependency")
    hook = build.build_wheel if kind == "wheel" else build.build_sdist
    cwd = os.getcwd()
    os.chdir(ROOT)  # PEP 517 hooks run in the project directory
    try:
        return out / hook(str(out))
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build("wheel", tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked as pip would lay it out in site-packages."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


def test_wheel_carries_the_demo_files_and_the_mtcnn_weights(wheel):
    with zipfile.ZipFile(wheel) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
    for rel, folder in BUNDLED.items():
        expected = _files(folder)
        assert expected, rel
        for name, size in expected.items():
            assert sizes.get(f"xai_study/_bundle/{rel}/{name}") == size, (rel, name)
    for name in ("mtcnn_weights.npz", "MTCNN_WEIGHTS.md"):
        path = ROOT / "xai_study" / "video" / name
        assert sizes[f"xai_study/video/{name}"] == path.stat().st_size
    for arch in ("plain", "bonettini", "ltpa"):
        assert f"xai_study/_bundle/models/{arch}.pt" in sizes


def test_wheel_metadata_installs_with_plain_pip(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode())
        entry_points = z.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    requires = meta.get_all("Requires-Dist") or []
    names = {r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
             for r in requires}  # fmt: skip
    assert "facenet-pytorch" not in names  # its torch<2.3 / numpy<2 pins broke pip
    assert {"torch", "torchvision", "gradio", "numpy"} <= names
    assert meta["Requires-Python"] == ">=3.11"
    assert "xai-study = xai_study.cli:main" in entry_points


@pytest.mark.slow  # a second 35 MB archive (30-60 s on 2 shared cores)
def test_sdist_has_what_the_wheel_needs(tmp_path):
    """The sdist has everything the wheel's force-include needs (pip builds from it)."""
    with tarfile.open(_build("sdist", tmp_path)) as t:
        names = set(t.getnames())
    top = next(iter(names)).split("/")[0]
    for rel, folder in BUNDLED.items():
        for name in _files(folder):
            assert f"{top}/{rel}/{name}" in names, (rel, name)
    assert f"{top}/xai_study/video/mtcnn_weights.npz" in names
    assert f"{top}/pyproject.toml" in names


def _run_installed(site: Path, cwd: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(site), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_installed_copy_finds_the_demo_files(installed, tmp_path):
    code = (
        "import xai_study, xai_study.resources as r\n"
        "from xai_study.detectors.checkpoint import resolve_model\n"
        "from xai_study.study.spec import load_study\n"
        "print(xai_study.__file__)\n"
        "print(r.checkout_root())\n"
        "print(resolve_model('plain'))\n"
        "s = load_study(r.demo_study_dir())\n"
        "print(s.root, len(s.sections))\n"
        "print(r.demo_videos_dir(), len(list(r.demo_videos_dir().glob('*.mp4'))))\n"
    )
    res = _run_installed(installed, tmp_path, code)
    assert res.returncode == 0, res.stderr
    pkg, root, plain, study, videos = res.stdout.strip().splitlines()
    bundle = installed / "xai_study" / "_bundle"
    assert Path(pkg).parent == installed / "xai_study"
    assert root == "None"  # no checkout around an installed package
    assert Path(plain) == bundle / "models" / "plain.pt"
    assert study.split()[0] == str(bundle / "study_data" / "demo")
    assert int(study.split()[1]) > 0
    assert videos.split()[0] == str(bundle / "study_data" / "demo_data" / "videos")
    assert int(videos.split()[1]) > 0


def _wait_for(url: str, proc: subprocess.Popen, seconds: float = 240) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"server exited with {proc.returncode}: {out[-2000:]}")
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            time.sleep(0.5)
    raise AssertionError(f"nothing answered on {url}")


def _serve(cmd: list[str], cwd: Path, env: dict[str, str], port: int) -> tuple[str, str]:
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        page = _wait_for(f"http://127.0.0.1:{port}/", proc)
        assert page.status_code == 200
        config = requests.get(f"http://127.0.0.1:{port}/config", timeout=30).json()
        return page.text, str(config.get("title"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


@pytest.mark.slow  # starts the web app (Gradio import + launch, 15-40 s on 2 cores)
def test_installed_copy_serves_the_demo_study_from_another_directory(installed, tmp_path):
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    env = {**clean, "PYTHONPATH": str(installed), "GRADIO_SERVER_PORT": str(port)}
    _, title = _serve([sys.executable, "-m", "xai_study", "serve"], tmp_path, env, port)
    assert "(demo)" in title  # the demo study's title
    # answers go to the current directory, not into the installed package
    assert (tmp_path / "demo.db").is_file()
    assert not list((installed / "xai_study" / "_bundle").rglob("*.db"))


@pytest.mark.slow  # starts the web app (Gradio import + launch, 15-40 s on 2 cores)
def test_app_py_listens_on_gradio_server_port(tmp_path):
    """The acceptance check of issue 18: GRADIO_SERVER_PORT=N python app.py serves on N."""
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'answers.db'}",
    }
    _, title = _serve([sys.executable, str(ROOT / "app.py")], tmp_path, env, port)
    assert "(demo)" in title
