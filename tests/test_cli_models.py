"""One way to name detectors in every command: ``--model ARCH=NAME|PATH`` (repeatable),
``--device`` and ``--batch-size``; the deprecated spellings still work, with a warning."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_study.cli import build_parser, main
from xai_study.errors import XaiStudyError

ROOT = Path(__file__).resolve().parents[1]
DEMO_STUDY = ROOT / "study_data" / "demo"
COMMANDS = ["detect", "explain", "evaluate-detector", "evaluate", "build-study", "serve"]


def _checkpoint(arch: str, path: Path, input_size: int = 64) -> Path:
    from xai_study.detectors import create_detector, save_checkpoint

    torch.manual_seed(len(arch))
    return save_checkpoint(create_detector(arch, input_size=input_size), path)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """Random-weight project checkpoints at 64 px (the demo ones are 224 px)."""
    folder = tmp_path_factory.mktemp("models")
    return {a: _checkpoint(a, folder / f"{a}.pt") for a in ("plain", "bonettini")}


def _required(command: str, tmp: Path, video: Path) -> list[str]:
    """The arguments each command needs besides the detector options."""
    labels = tmp / "labels.csv"
    if not labels.exists():
        labels.write_text(f"path,label\n{video},fake\n{video},real\n")
    return {
        "detect": [str(video)],
        "explain": [str(video), "--out", str(tmp / "explain")],
        "evaluate-detector": ["--data", str(labels)],
        "evaluate": ["--data", str(labels), "--explainers", "gradcam", "--out", str(tmp / "ev")],
        "build-study": ["--data", str(labels), "--out", str(tmp / "study")],
        "serve": ["--study", str(DEMO_STUDY), "--db", f"sqlite:///{tmp / 'serve.db'}"],
    }[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_model_device_and_batch_size(command, tmp_path, short_face_video):
    argv = [command, *_required(command, tmp_path, short_face_video)]
    argv += ["--model", "plain=a.pt", "--model", "ltpa", "--device", "cpu", "--batch-size", "3"]
    args = build_parser().parse_args(argv)
    assert args.model == ["plain=a.pt", "ltpa"]
    assert args.device == "cpu" and args.batch_size == 3
    defaults = build_parser().parse_args([command, *_required(command, tmp_path, short_face_video)])
    assert defaults.model == [] and defaults.device == "auto" and defaults.batch_size is None


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_the_options(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    for word in ("--model ARCH=NAME|PATH", "--device", "--batch-size", "icpr2020dfdc"):
        assert word in text, word


def _garbage(tmp: Path) -> str:
    path = tmp / "garbage.pt"
    path.write_bytes(b"this is not a checkpoint")
    return f"plain={path}"


def _neither_format(tmp: Path) -> str:
    path = tmp / "dict.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    return f"plain={path}"


BAD_SPECS = {
    "unknown ARCH": (lambda tmp: "vit=x.pt", "unknown detector role 'vit'"),
    "no detector": (lambda tmp: "ltpa=", "names no detector"),
    "missing file": (lambda tmp: f"plain={tmp / 'nope.pt'}", "no such checkpoint"),
    "not a checkpoint": (_garbage, "not a readable PyTorch checkpoint"),
    "neither format": (_neither_format, "nor an icpr2020dfdc state dict"),
    "wrong architecture": (lambda tmp: "ltpa=plain", "that is a plain detector"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
@pytest.mark.parametrize("command", COMMANDS)
def test_a_wrong_model_is_one_line_and_exit_2(command, case, tmp_path, short_face_video, capsys):
    make, message = BAD_SPECS[case]
    argv = [command, *_required(command, tmp_path, short_face_video), "--device", "cpu"]
    rc = main([*argv, "--model", make(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "study").exists() and not (tmp_path / "explain").exists()


@pytest.mark.parametrize("command", ["detect", "evaluate-detector"])
def test_single_detector_commands_refuse_two(command, tmp_path, short_face_video, capsys):
    argv = [command, *_required(command, tmp_path, short_face_video)]
    rc = main([*argv, "--model", "plain", "--model", "bonettini=bonettini"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "scores one detector" in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
@pytest.mark.parametrize("command", COMMANDS)
def test_cuda_without_a_gpu_is_a_clear_error(command, device, tmp_path, short_face_video, capsys):
    argv = [command, *_required(command, tmp_path, short_face_video), "--device", device]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: device '{device}' asked for, but no CUDA GPU is available"]


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "meta"])
def test_unknown_device_is_a_clear_error(device, tmp_path, short_face_video, capsys):
    assert main(["detect", str(short_face_video), "--device", device]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "device" in err[0] and "use auto, cpu, cuda or cuda:N" in err[0]


def test_batch_size_must_be_positive(tmp_path, short_face_video, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["detect", str(short_face_video), "--batch-size", "0"])
    assert exc.value.code == 2
    assert "--batch-size" in capsys.readouterr().err


# --- what each command passes on -------------------------------------------------------
class _Stop(XaiStudyError):
    pass


def _detectors_of(command: str, seen: dict):
    """(specs, device, batch_size) that the command handed to its run-layer function."""
    if command in ("detect", "evaluate-detector"):
        return {seen["role"]: str(seen["model"])}, seen["device"], seen["batch_size"]
    dets = seen["detectors"]
    return {a: str(s) for a, s in dets.specs.items()}, dets.device, dets.batch_size


def _spy(command: str, monkeypatch) -> dict:
    import xai_study.runs as runs
    import xai_study.runs.detect as detect
    import xai_study.runs.evaluate as evaluate
    import xai_study.study.build as build
    import xai_study.ui.app as app

    seen: dict = {}

    def record(*args, **kwargs):
        seen.update(kwargs)
        seen["args"] = args
        raise _Stop("stopped by the test")

    def record_detect(video, model, *args, **kwargs):
        seen["model"] = model
        return record(*args, **kwargs)

    def record_evaluate(model, *args, **kwargs):
        seen["model"] = model
        return record(*args, **kwargs)

    def record_serve(ctx, *args, **kwargs):
        seen["detectors"] = ctx.extra["demo_detectors"]
        seen["ctx"] = ctx
        return record(*args, **kwargs)

    target = {
        "detect": (detect, "detect_video", record_detect),
        "evaluate-detector": (detect, "evaluate_detector", record_evaluate),
        "explain": (runs, "analyse_video", record),
        "evaluate": (evaluate, "evaluate", record),
        "build-study": (build, "build_study", lambda **kw: record(detectors=kw["models"])),
        "serve": (app, "serve", record_serve),
    }[command]
    monkeypatch.setattr(target[0], target[1], target[2])
    return seen


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_hand_the_named_detector_device_and_batch_size_on(
    command, ckpts, tmp_path, short_face_video, monkeypatch, capsys
):
    seen = _spy(command, monkeypatch)
    argv = [command, *_required(command, tmp_path, short_face_video)]
    rc = main([*argv, "--model", f"plain={ckpts['plain']}", "--device", "cpu", "--batch-size", "3"])
    assert rc == 2 and "stopped by the test" in capsys.readouterr().err
    specs, device, batch_size = _detectors_of(command, seen)
    assert specs == {"plain": str(ckpts["plain"])}
    assert device == "cpu" and batch_size == 3
    if command not in ("detect", "evaluate-detector"):
        det = seen["detectors"].get("plain")
        assert det.input_size == 64 and det.batch_size == 3
        assert next(det.parameters()).device.type == "cpu"


@pytest.mark.parametrize(
    "command, old",
    [
        ("explain", ["--models", "plain={nope}"]),
        ("evaluate", ["--detector", "{nope}"]),
        ("serve", ["--models", "{folder}"]),
    ],
)
def test_deprecated_spellings_warn_and_still_work(command, old, tmp_path, short_face_video, capsys):
    """The old spelling is read (here: it names a missing file, so the command stops at
    it) after one warning line."""
    nope, folder = tmp_path / "nope.pt", tmp_path / "legacy"
    folder.mkdir()
    (folder / "plain.pt").write_bytes(b"not a checkpoint")  # what serve --models DIR reads
    old = [a.format(nope=nope, folder=folder) for a in old]
    if command == "serve":
        nope = folder / "plain.pt"
    argv = [command, *_required(command, tmp_path, short_face_video), "--device", "cpu", *old]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == (
        f"warning: {old[0]} is deprecated and will be removed; use --model ARCH=NAME|PATH "
        "(repeatable)"
    )
    assert len(lines) == 2 and lines[1].startswith("error: ") and str(nope) in lines[1]


def test_serve_models_folder_alias_names_the_files_there(ckpts, tmp_path, capsys):
    args = build_parser().parse_args(
        ["serve", "--study", str(DEMO_STUDY), "--db", "sqlite://", "--models", str(tmp_path)]
    )
    from xai_study.commands.study import make_context

    with pytest.raises(XaiStudyError, match="no plain.pt, bonettini.pt, ltpa.pt"):
        make_context(args)
    args.models = str(ckpts["plain"].parent)
    ctx, _ = make_context(args)
    assert ctx.extra["demo_detectors"].specs == {
        a: str(p) for a, p in ckpts.items()
    }  # plain.pt and bonettini.pt are there, ltpa.pt is not
    assert "--models is deprecated" in capsys.readouterr().err


# --- the detectors are really used -----------------------------------------------------
@pytest.fixture
def small_preset(monkeypatch):
    from xai_study.runs import presets

    monkeypatch.setitem(
        presets.PRESETS, "fast", {**presets.PRESETS["fast"], "frames": 3, "size": 64}
    )


def test_evaluate_uses_the_given_detectors(ckpts, tmp_path, short_face_video, small_preset):
    """Before: evaluate always explained the demo Bonettini. Now every --model is used:
    the rows name the 64 px checkpoints and carry their scores."""
    from xai_study.detectors import load_detector
    from xai_study.video import extract_face_clip

    labels = tmp_path / "labels.csv"
    labels.write_text(f"id,path,label\nf1,{short_face_video},fake\n")
    out = tmp_path / "out"
    argv = ["evaluate", "--data", str(labels), "--explainers", "gradcam,bonettini"]
    argv += ["--out", str(out), "--steps", "0", "--bootstrap", "20", "--quiet", "--device", "cpu"]
    argv += ["--model", f"plain={ckpts['plain']}", "--model", f"bonettini={ckpts['bonettini']}"]
    argv += ["--batch-size", "2"]
    assert main(argv) == 0
    with open(out / "per_video.csv", newline="") as fh:
        rows = {r["explainer"]: r for r in csv.DictReader(fh)}
    assert rows["gradcam"]["detector"] == "plain efficientnet_lite0 64px"
    assert rows["bonettini"]["detector"] == "bonettini efficientnet_lite0 64px"
    clip = extract_face_clip(short_face_video, num_frames=3, size=64, device="cpu")
    for name, arch in (("gradcam", "plain"), ("bonettini", "bonettini")):
        expected = load_detector(ckpts[arch]).video_score(clip.frames)
        assert float(rows[name]["score"]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    run = json.loads((out / "run.json").read_text())
    assert run["detector"] == str(ckpts["plain"])
    assert run["detectors"] == {"bonettini": str(ckpts["bonettini"])}


def test_serve_demo_is_built_with_the_given_model(ckpts, tmp_path, short_face_video, small_preset):
    """The /demo page's jobs get the DetectorSet of serve --model: its device, batch size
    and a cache identity of its own, and a job scores with that detector."""
    from xai_study.commands.study import make_context
    from xai_study.demo import DemoSettings, ResultCache, run_demo
    from xai_study.demo.jobs import demo_checkpoints_id
    from xai_study.detectors import load_detector
    from xai_study.video import extract_face_clip

    base = ["serve", "--study", str(DEMO_STUDY), "--db", "sqlite://", "--device", "cpu"]
    args = build_parser().parse_args([*base, "--model", str(ckpts["plain"]), "--batch-size", "2"])
    ctx, _ = make_context(args)
    dets = ctx.extra["demo_detectors"]
    assert dets.specs == {"plain": str(ckpts["plain"])} and dets.device == "cpu"
    assert dets.batch_size == 2 and dets.get("plain").batch_size == 2
    ident = ctx.extra["demo_detectors_id"]
    assert ident != demo_checkpoints_id() and "plain=" in ident
    plain_ctx, _ = make_context(build_parser().parse_args(base))
    assert plain_ctx.extra["demo_detectors"].specs == {}  # the demo checkpoints
    assert "demo_detectors_id" not in plain_ctx.extra

    settings = DemoSettings(explainers=("gradcam",), frames=3, detectors=ident)
    result = run_demo(short_face_video, settings, ResultCache(tmp_path / "cache"), detectors=dets)
    clip = extract_face_clip(short_face_video, num_frames=3, size=64, device="cpu")
    expected = load_detector(ckpts["plain"]).video_score(clip.frames)
    assert result.p_fake == pytest.approx(expected, rel=1e-4, abs=1e-6)


def _icpr_file(path: Path, attention: bool) -> Path:
    """An icpr2020dfdc EfficientNetB4 (or AutoAttB4) state dict with its exact key names
    and random weights."""
    ep = pytest.importorskip("efficientnet_pytorch")
    torch.manual_seed(0)
    net = ep.EfficientNet.from_name("efficientnet-b4")
    state = {f"efficientnet.{k}": v for k, v in net.state_dict().items() if "_fc." not in k}
    if attention:
        conv = torch.nn.Conv2d(56, 1, kernel_size=1)
        state |= {f"efficientnet.attconv.{k}": v for k, v in conv.state_dict().items()}
    head = torch.nn.Linear(1792, 1)
    state |= {f"classifier.{k}": v for k, v in head.state_dict().items()}
    torch.save(state, path)
    return path


def test_detect_takes_an_icpr_file(tmp_path, short_face_video, capsys):
    plain = _icpr_file(tmp_path / "B4.pth", attention=False)
    att = _icpr_file(tmp_path / "B4Att.pth", attention=True)
    argv = ["detect", str(short_face_video), "--frames", "2", "--device", "cpu", "--json"]
    assert main([*argv, "--model", f"plain={plain}", "--batch-size", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == "plain" and out["model"] == str(plain)
    assert len(out["frame_scores"]) == 2 and np.isfinite(out["p_fake"])
    assert main([*argv, "--model", f"bonettini={att}"]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == "bonettini"
    assert main([*argv, "--model", f"bonettini={plain}"]) == 2
    assert "that is a plain detector" in capsys.readouterr().err


def test_faces_takes_the_device_too(tmp_path, short_face_video, capsys):
    from xai_study.commands.faces import DEFAULT_BATCH_SIZE
    from xai_study.video.faces import DEFAULT_BATCH_SIZE as MTCNN_BATCH

    assert DEFAULT_BATCH_SIZE == MTCNN_BATCH
    argv = ["faces", str(short_face_video), "--out", str(tmp_path / "f"), "--frames", "2"]
    assert main([*argv, "--device", "cpu", "--batch-size", "1", "--quiet"]) == 0
    assert len(list((tmp_path / "f").glob("face_*.png"))) == 2
    if not torch.cuda.is_available():
        assert main([*argv, "--device", "cuda"]) == 2
        assert "no CUDA GPU is available" in capsys.readouterr().err


def test_the_face_detector_runs_on_the_device_asked_for(data_dir):
    from PIL import Image

    from xai_study.video.faces import detect_faces, get_mtcnn

    cpu = get_mtcnn("cpu")
    assert next(cpu.parameters()).device.type == "cpu"
    assert get_mtcnn("auto") is get_mtcnn(None)
    assert get_mtcnn(None) is get_mtcnn("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(XaiStudyError, match="unknown torch device"):
        get_mtcnn("gpu")
    img = np.asarray(Image.open(data_dir / "single_face.jpg").convert("RGB"))
    on_cpu = detect_faces(img, device="cpu")[0]
    assert len(on_cpu) == 1
    if torch.cuda.is_available():
        assert next(get_mtcnn("cuda").parameters()).device.type == "cuda"
        on_gpu = detect_faces(img, device="cuda")[0]
        assert len(on_gpu) == 1
        np.testing.assert_allclose(on_gpu[0].box, on_cpu[0].box, atol=2.0)
