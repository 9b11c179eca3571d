"""The detector contract (xai_study/detectors/contract.py): who implements it, and the one
implementation of each shared step (sigmoid, batched logits, aggregation, baselines,
map resizing). Also: the detectors package imports one way (no cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_study.detectors import create_detector, list_detectors, load_detector
from xai_study.detectors.baselines import (
    BASELINE_KINDS,
    explainer_blur_sigma,
    make_baseline,
    metric_blur_sigma,
)
from xai_study.detectors.contract import (
    AttentionDetector,
    FrameClassifier,
    VideoDetector,
    aggregate_logits,
    batched_logits,
    check_attention_detector,
    check_detector,
    contract_gaps,
    sigmoid,
    use_channels_last,
)
from xai_study.errors import XaiStudyError
from xai_study.explainers import create_explainer
from xai_study.explainers.toys import make_region_detector, textured_clip
from xai_study.maps import resize_maps
from xai_study.metrics.faithfulness import as_scorer

ROOT = Path(__file__).resolve().parents[1]
ATTENTION_ARCHS = {"bonettini", "ltpa"}
CROPS = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)


def _check_contract(det, arch: str, size: int, threshold: float = 0.5) -> None:
    """What every implementation must do, beyond having the members."""
    assert isinstance(det, VideoDetector), contract_gaps(det)
    assert contract_gaps(det) == []
    assert det.config["arch"] == arch
    assert det.input_size == size == det.config["input_size"]
    assert det.mean == tuple(det.config["mean"]) and det.std == tuple(det.config["std"])
    assert det.threshold == threshold
    assert isinstance(det.gradcam_layer, torch.nn.Module)
    assert det.batch_size >= 1
    x = det.preprocess(CROPS)
    assert x.shape == (3, 3, size, size) and x.dtype == torch.float32
    with torch.no_grad():
        forward = det(x)
    assert forward.shape == (3, 1)
    logits = det.frame_logits(CROPS)
    assert logits.shape == (3,)
    np.testing.assert_allclose(logits, forward.numpy().ravel(), rtol=1e-5, atol=1e-5)
    assert det.aggregate(logits) == pytest.approx(float(sigmoid(logits.mean())))
    assert det.video_score(CROPS) == pytest.approx(det.aggregate(logits))


@pytest.mark.parametrize("arch", list_detectors())
def test_every_registered_architecture_implements_the_contract(arch: str) -> None:
    det = create_detector(arch, input_size=64)
    _check_contract(det, arch, 64)
    # the attention explainers' maps exist exactly for the attention architectures
    if arch in ATTENTION_ARCHS:
        att = det.attention(det.preprocess(CROPS))
        maps = att if isinstance(att, list) else [att]
        assert len(maps) == (3 if arch == "ltpa" else 1)
        assert all(m.shape[:2] == (3, 1) for m in maps)
    else:
        with pytest.raises(XaiStudyError, match="no attention maps"):
            det.attention(det.preprocess(CROPS))


@pytest.mark.parametrize("arch", ["plain", "bonettini", "ltpa"])
def test_the_known_answer_toys_implement_the_contract(arch: str) -> None:
    det = make_region_detector(arch, input_size=32)
    _check_contract(det, arch, 32)
    assert isinstance(det, AttentionDetector)


@pytest.mark.parametrize("name", ["plain", "bonettini", "ltpa"])
def test_demo_checkpoints_implement_the_contract(name: str) -> None:
    det = load_detector(name)
    saved = (det.meta.get("threshold") or {}).get("p_fake", 0.5)
    _check_contract(det, name, 224, threshold=saved)
    assert det.meta and det.source and det.source.endswith(f"{name}.pt")


def test_an_icpr2020dfdc_checkpoint_loads_as_a_contract_detector(tmp_path) -> None:
    ep = pytest.importorskip("efficientnet_pytorch")
    torch.manual_seed(0)
    net = ep.EfficientNet.from_name("efficientnet-b0")
    state = {f"efficientnet.{k}": v for k, v in net.state_dict().items() if "_fc." not in k}
    state |= {"classifier.weight": torch.zeros(1, 1280), "classifier.bias": torch.zeros(1)}
    torch.save(state, tmp_path / "EfficientNetB0_DFDC.pth")
    det = load_detector(tmp_path / "EfficientNetB0_DFDC.pth")
    _check_contract(det, "plain", 224)
    assert det.meta["format"] == "icpr2020dfdc" and det.config["same_padding_size"] == 224
    assert det.frame_logits(CROPS) == pytest.approx([0.0] * 3)


class _Bare(torch.nn.Module):
    """preprocess + forward only: a frame classifier, not a detector."""

    def preprocess(self, frames):
        return torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2).float()

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None]


def test_objects_short_of_the_contract_are_a_one_line_error() -> None:
    bare = _Bare()
    assert isinstance(bare, FrameClassifier) and not isinstance(bare, VideoDetector)
    gaps = contract_gaps(bare)
    assert {"frame_logits", "video_score", "threshold", "config", "gradcam_layer"} <= set(gaps)
    with pytest.raises(XaiStudyError, match="does not implement the detector contract") as exc:
        check_detector(bare)
    assert "\n" not in str(exc.value) and "frame_logits" in str(exc.value)
    assert "attention" in contract_gaps(bare, AttentionDetector)
    with pytest.raises(XaiStudyError, match="detector contract"):
        check_attention_detector(bare)
    with pytest.raises(XaiStudyError, match="detector contract"):
        create_explainer("gradcam", bare)
    with pytest.raises(XaiStudyError, match="detector contract"):
        as_scorer(bare)
    # what batched_logits needs is only the frame-classifier part
    assert batched_logits(bare, CROPS, 2).shape == (3,)
    # a plain function of clips stays a valid scorer for the metrics
    assert as_scorer(np.mean) is np.mean


def test_batched_logits_runs_convolutional_detectors_channels_last() -> None:
    """The layout changes speed, not logits; the opt-out keeps the default layout."""
    torch.manual_seed(0)
    converted = create_detector("plain", input_size=32).eval()
    kept = create_detector("plain", input_size=32).eval()
    kept.load_state_dict(converted.state_dict())
    kept._xs_channels_last = False
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    got, want = batched_logits(converted, frames, 2), batched_logits(kept, frames, 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    conv = next(p for p in converted.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert next(p for p in kept.parameters() if p.dim() == 4).is_contiguous()
    assert not use_channels_last(kept)
    # gradients still flow through the converted model with an ordinary NCHW input
    x = converted.preprocess(frames[:2]).requires_grad_(True)
    converted(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_batched_logits_bfloat16_autocast_is_close_to_float32() -> None:
    """bfloat16 really runs (the logits change) and stays near float32; other names fail."""
    torch.manual_seed(0)
    det = create_detector("plain", input_size=32).eval()
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    full = batched_logits(det, frames, 2)
    half = batched_logits(det, frames, 2, precision="bfloat16")
    assert half.dtype == np.float32 and half.shape == (5,)
    assert not np.array_equal(full, half)
    # bfloat16 keeps 8 bits of mantissa: a few 1e-3 on logits of about 0.1
    np.testing.assert_allclose(half, full, rtol=0.05, atol=0.02)
    assert np.corrcoef(full, half)[0, 1] > 0.95
    with pytest.raises(ValueError, match="precision"):
        batched_logits(det, frames, 2, precision="float16")


@pytest.mark.parametrize(
    ("caps", "want"),
    [
        ({"avx512_bf16": True}, "bfloat16"),
        ({"amx_bf16": True, "avx512_bf16": False}, "bfloat16"),
        ({"avx512_bf16": False, "avx2": True}, "float32"),
        ({}, "float32"),
    ],
)
def test_auto_precision_follows_the_cpu(monkeypatch, caps, want) -> None:
    """``auto`` is bfloat16 only where the CPU computes it natively (emulated bfloat16
    is slower than float32); explicit choices are kept, unknown ones refused."""
    from xai_study.detectors.contract import native_bfloat16, resolve_precision

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    assert native_bfloat16("cpu") is (want == "bfloat16")
    assert resolve_precision("auto", "cpu") == want
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", "cpu")


def test_detectors_without_4d_weights_are_left_in_their_layout() -> None:
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 1))
    assert not use_channels_last(linear)
    got = batched_logits(linear, torch.zeros(2, 3, 4, 4), 1)
    assert got.shape == (2,)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7])
@pytest.mark.parametrize("given", ["frames", "tensor"])
def test_batched_logits_is_independent_of_the_batching(batch_size: int, given: str) -> None:
    det = make_region_detector(input_size=32)
    want = det.frame_logits(CROPS)
    inputs = CROPS if given == "frames" else det.preprocess(CROPS)
    got = batched_logits(det, inputs, batch_size)
    assert got.dtype == np.float32 and got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        batched_logits(det, inputs, 0)


@pytest.mark.parametrize(
    "x,want", [(0.0, 0.5), (2.0, 1 / (1 + np.exp(-2.0))), (-40.0, 1 / (1 + np.exp(40.0)))]
)
def test_sigmoid(x: float, want: float) -> None:
    assert float(sigmoid(x)) == want
    assert sigmoid(np.float32(x), dtype=np.float32).dtype == np.float32
    assert sigmoid([x, x]).dtype == np.float64


@pytest.mark.parametrize(
    "how,want",
    [
        ("mean_logit", 1 / (1 + np.exp(-2 / 3))),
        ("mean_prob", np.mean(1 / (1 + np.exp(-np.array([-1.0, 0.0, 3.0]))))),
        ("median", 0.5),
    ],
)
def test_aggregate_logits(how: str, want: float) -> None:
    assert aggregate_logits(np.array([-1.0, 0.0, 3.0], np.float32), how) == pytest.approx(want)


@pytest.mark.parametrize(
    "logits,how,match", [([], "mean_logit", "no frame"), ([1.0], "max", "max")]
)
def test_aggregate_logits_errors(logits, how: str, match: str) -> None:
    with pytest.raises(XaiStudyError, match=match):
        aggregate_logits(np.array(logits), how)


@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_make_baseline_kinds(kind: str) -> None:
    clip = textured_clip(2, 32)
    base = make_baseline(clip, kind, blur_sigma=2.0)
    assert base.shape == clip.shape and base.dtype == np.uint8
    expected = {
        "black": lambda: np.zeros_like(clip),
        "grey": lambda: np.full_like(clip, 128),
        "mean": lambda: np.broadcast_to(np.round(clip.reshape(-1, 3).mean(0)), clip.shape),
    }
    if kind in expected:
        np.testing.assert_array_equal(base, expected[kind]())
    else:  # blur keeps the mean colour and removes texture
        assert abs(float(base.mean()) - float(clip.mean())) < 2.0
        assert (
            np.abs(np.diff(base.astype(float), axis=2)).mean()
            < np.abs(np.diff(clip.astype(float), axis=2)).mean()
        )


def test_the_two_blur_sigmas_stay_what_each_caller_used() -> None:
    clip = np.zeros((1, 224, 160, 3), np.uint8)
    assert explainer_blur_sigma(clip) == 224 / 10.0  # SHAP-3D, LIME-3D, IG default
    assert metric_blur_sigma(clip) == 0.05 * 224  # deletion / insertion
    assert metric_blur_sigma(np.zeros((1, 8, 8, 3), np.uint8)) == 1.0


def test_make_baseline_rejects_kinds_outside_the_callers_choices() -> None:
    clip = textured_clip(1, 16)
    with pytest.raises(XaiStudyError, match="choose one of blur, mean, black"):
        make_baseline(clip, "grey", 1.0, choices=("blur", "mean", "black"))
    with pytest.raises(XaiStudyError, match="pink"):
        make_baseline(clip, "pink", 1.0)


@pytest.mark.parametrize("size", [(7, 7), (28, 28), (30, 20), (4, 9)])
def test_resize_engines_agree(size: tuple[int, int]) -> None:
    maps = np.random.default_rng(1).random((3, 7, 7))
    torch_maps = resize_maps(maps, size)
    cv_maps = resize_maps(maps, size, engine="opencv")
    assert torch_maps.shape == cv_maps.shape == (3, *size)
    assert torch_maps.dtype == np.float32 and cv_maps.dtype == np.float64
    np.testing.assert_allclose(torch_maps, cv_maps, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"engine": "pil"}, "engine"),
        ({"mode": "cubic"}, "mode"),
        ({"engine": "opencv", "mode": "nearest"}, "bilinearly"),
    ],
)
def test_resize_rejects_unknown_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resize_maps(np.zeros((1, 4, 4)), (8, 8), **kwargs)


def _imports(path: Path) -> set[str]:
    """Modules of xai_study.detectors that ``path`` imports at run time (top level or in
    functions; imports under ``if TYPE_CHECKING:`` are for the type checker only)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            return
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found.update(n for n in names if n.startswith("xai_study.detectors."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def test_the_detectors_package_imports_one_way() -> None:
    pkg = ROOT / "xai_study" / "detectors"
    modules = {f"xai_study.detectors.{p.stem}": p for p in pkg.glob("*.py") if p.stem != "__init__"}
    graph = {m: _imports(p) & set(modules) for m, p in modules.items()}
    assert "xai_study.detectors.icpr" not in graph["xai_study.detectors.models"]
    assert graph["xai_study.detectors.contract"] == set()  # the bottom layer

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, "import cycle: " + " -> ".join((*path, node))
        for dep in graph[node]:
            visit(dep, (*path, node))

    for module in graph:
        visit(module, ())
