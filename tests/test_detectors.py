"""Detector architectures, ImageNet initialisation and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai_study.detectors import (
    aggregate_logits,
    create_detector,
    list_detectors,
    load_detector,
    save_checkpoint,
)
from xai_study.errors import CheckpointError, XaiStudyError

SIZE = 96


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, SIZE, SIZE, generator=g)


@pytest.mark.parametrize("arch", ["plain", "bonettini", "ltpa", "xception", "mesoinception4"])
def test_forward_shape_and_video_api(arch: str, batch: torch.Tensor) -> None:
    torch.manual_seed(0)
    det = create_detector(arch, input_size=SIZE)
    assert det.config["arch"] == arch and det.config["input_size"] == SIZE
    with torch.no_grad():
        out = det(batch)
    assert out.shape == (2, 1)
    assert torch.isfinite(out).all()
    frames = np.random.default_rng(0).integers(0, 256, (3, 120, 100, 3), dtype=np.uint8)
    x = det.preprocess(frames)
    assert x.shape == (3, 3, SIZE, SIZE)
    logits = det.frame_logits(frames)
    assert logits.shape == (3,) and logits.dtype == np.float32
    # frame_logits is the forward pass on preprocessed frames
    with torch.no_grad():
        np.testing.assert_allclose(logits, det(x).reshape(-1).numpy(), rtol=1e-5, atol=1e-5)
    p = det.video_score(frames)
    assert p == pytest.approx(1 / (1 + np.exp(-logits.mean())), rel=1e-6)
    assert isinstance(det.gradcam_layer, torch.nn.Module)
    assert det.gradcam_layer in set(det.modules())


def test_list_detectors() -> None:
    assert set(list_detectors()) >= {"plain", "bonettini", "ltpa", "xception", "mesoinception4"}


def test_bonettini_attention_multiplies_stride8_features(batch: torch.Tensor) -> None:
    torch.manual_seed(0)
    det = create_detector("bonettini", input_size=SIZE)
    with torch.no_grad():
        att = det.attention(batch)
        assert att.shape == (2, 1, SIZE // 8, SIZE // 8)
        assert float(att.min()) >= 0 and float(att.max()) <= 1
        # forward by hand: stem, blocks 0..2, x * sigmoid(attconv(x)), rest, head, pool
        bb = det.backbone
        x = bb.bn1(bb.conv_stem(batch))
        for i in range(3):
            x = bb.blocks[i](x)
        np.testing.assert_allclose(torch.sigmoid(det.attconv(x)).numpy(), att.numpy(), atol=1e-6)
        x = x * att
        for i in range(3, 7):
            x = bb.blocks[i](x)
        ref = det.classifier(bb.bn2(bb.conv_head(x)).mean((2, 3)))
        np.testing.assert_allclose(det(batch).numpy(), ref.numpy(), atol=1e-5)
        # switching the attention off (all ones) changes the output: it is really used
        torch.nn.init.zeros_(det.attconv.weight)
        torch.nn.init.constant_(det.attconv.bias, 20.0)
        x1 = det(batch)
    assert not torch.allclose(x1, ref)


def test_ltpa_attention_maps_are_spatial_softmax(batch: torch.Tensor) -> None:
    torch.manual_seed(0)
    det = create_detector("ltpa", input_size=SIZE)
    with torch.no_grad():
        maps = det.attention(batch)
    assert [tuple(m.shape) for m in maps] == [
        (2, 1, SIZE // 8, SIZE // 8),
        (2, 1, SIZE // 16, SIZE // 16),
        (2, 1, SIZE // 32, SIZE // 32),
    ]
    for m in maps:
        assert float(m.min()) >= 0
        np.testing.assert_allclose(m.sum(dim=(2, 3)).numpy(), 1.0, atol=1e-5)


def test_aggregations() -> None:
    logits = np.array([-2.0, 0.0, 4.0])
    sig = 1 / (1 + np.exp(-logits))
    assert aggregate_logits(logits, "mean_logit") == pytest.approx(1 / (1 + np.exp(-2 / 3)))
    assert aggregate_logits(logits, "mean_prob") == pytest.approx(sig.mean())
    assert aggregate_logits(logits, "median") == pytest.approx(0.5)
    with pytest.raises(XaiStudyError):
        aggregate_logits(logits, "max")


def test_bad_arguments() -> None:
    with pytest.raises(XaiStudyError, match="unknown detector"):
        create_detector("resnet")
    with pytest.raises(XaiStudyError, match="backbone"):
        create_detector("plain", backbone="resnet50")
    with pytest.raises(XaiStudyError, match="ImageNet"):
        create_detector("plain", backbone="efficientnet_b0", pretrained=True)
    det = create_detector("mesoinception4", input_size=64)
    with pytest.raises(XaiStudyError, match="T, H, W, 3"):
        det.preprocess(np.zeros((2, 64, 64), dtype=np.uint8))
    with pytest.raises(XaiStudyError, match="attention"):
        det.attention(torch.zeros(1, 3, 64, 64))


def test_imagenet_lite0_weights_classify_photos() -> None:
    """The registry package's 296 tensors map onto timm efficientnet_lite0 correctly."""
    import torch.nn.functional as F
    from skimage import data

    from xai_study.detectors.pretrained import lite0_imagenet_classifier

    net = lite0_imagenet_classifier()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for img, cls in [(data.chelsea(), 285), (data.coffee(), 967)]:
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
        with torch.no_grad():
            assert int(net((x - mean) / std).argmax()) == cls
    # the detector's backbone gets exactly the same weights
    det = create_detector("plain", pretrained=True)
    np.testing.assert_array_equal(
        det.backbone.conv_stem.weight.detach().numpy(), net.conv_stem.weight.detach().numpy()
    )
    assert det.config["pretrained"] == "imagenet"


@pytest.mark.parametrize("arch", ["plain", "bonettini", "ltpa"])
def test_checkpoint_round_trip(arch: str, tmp_path, batch: torch.Tensor) -> None:
    torch.manual_seed(1)
    det = create_detector(arch, input_size=SIZE, aggregation="median")
    path = save_checkpoint(det, tmp_path / "m.pt", meta={"command": "xai-study train", "auc": 0.5})
    back = load_detector(path)
    assert back.config == det.config
    assert back.meta == {"command": "xai-study train", "auc": 0.5}
    with torch.no_grad():
        np.testing.assert_allclose(back(batch).numpy(), det(batch).numpy(), atol=1e-6)
    half = save_checkpoint(det, tmp_path / "h.pt", half=True)
    assert half.stat().st_size < path.stat().st_size * 0.6
    with torch.no_grad():
        np.testing.assert_allclose(
            load_detector(half)(batch).numpy(), det(batch).numpy(), atol=0.05
        )


def test_bad_checkpoints_give_clear_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_detector(tmp_path / "missing.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_detector(empty)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_detector(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not an xai-study detector checkpoint"):
        load_detector(other)
    det = create_detector("plain", input_size=SIZE)
    good = save_checkpoint(det, tmp_path / "good.pt")
    obj = torch.load(good, weights_only=True)
    obj["config"]["arch"] = "bonettini"  # weights of plain, config says bonettini
    torch.save(obj, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_detector(tmp_path / "mismatch.pt")
    obj = torch.load(good, weights_only=True)
    obj["state_dict"]["classifier.weight"] = torch.zeros(1, 7)
    torch.save(obj, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="shape"):
        load_detector(tmp_path / "shape.pt")
    obj = torch.load(good, weights_only=True)
    del obj["config"]["input_size"]
    torch.save(obj, tmp_path / "noconf.pt")
    with pytest.raises(CheckpointError, match="input_size"):
        load_detector(tmp_path / "noconf.pt")


@pytest.mark.parametrize("arch", ["plain", "bonettini", "ltpa"])
@pytest.mark.parametrize("k", [0, 2, 3])
def test_forward_from_trunk_equals_forward(arch: str, k: int, batch: torch.Tensor) -> None:
    torch.manual_seed(0)
    det = create_detector(arch, input_size=SIZE)
    with torch.no_grad():
        np.testing.assert_allclose(
            det.forward_from(det.trunk(batch, k), k).numpy(), det(batch).numpy(), atol=1e-5
        )


def test_binary_metrics_known_answers() -> None:
    from xai_study.detectors.evaluate import binary_metrics

    # 4 real, 4 fake; at threshold 0.7 one real (0.7) is called fake and one fake (0.3)
    # real: FPR = FNR = 0.25, so the equal error rate is exactly 0.25
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.6, 0.7, 0.3, 0.8, 0.9, 0.95])
    m = binary_metrics(y, s)
    assert m["eer"] == pytest.approx(0.25)
    assert m["auc"] == pytest.approx(14 / 16)  # the fake 0.3 ranks below two reals
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 0.75) / 2)  # at 0.5: 2 FP, 1 FN
    assert m["accuracy"] == pytest.approx(5 / 8)
    perfect = binary_metrics(y, np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]))
    assert perfect["eer"] == 0 and perfect["auc"] == 1
    one_class = binary_metrics(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    assert one_class["auc"] is None and one_class["eer"] is None


def test_choose_threshold_known_answers() -> None:
    from xai_study.detectors.evaluate import choose_threshold

    # separable: halfway in logit space between the highest real and the lowest fake
    t = choose_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert t["p_fake"] == pytest.approx(0.5) and t["balanced_accuracy"] == 1.0
    t = choose_threshold([0, 0, 1, 1], [0.9, 0.95, 0.99, 0.999])
    z = (np.log(0.95 / 0.05) + np.log(0.99 / 0.01)) / 2
    assert t["p_fake"] == pytest.approx(1 / (1 + np.exp(-z))) and t["balanced_accuracy"] == 1.0
    # overlapping: the best balanced accuracy is 0.75, reached between 0.1|0.5 and
    # between 0.6|0.9; of the two the middle (lower) one is taken
    t = choose_threshold([0, 1, 0, 1], [0.1, 0.5, 0.6, 0.9])
    assert t["balanced_accuracy"] == 0.75
    assert 0.1 < t["p_fake"] < 0.5
    with pytest.raises(ValueError, match="real and fake"):
        choose_threshold([1, 1], [0.2, 0.3])
    # saturated thresholds stay readable
    from xai_study.detectors.evaluate import format_p

    assert [format_p(p) for p in (0.5, 0.92528, 1 - 2.2e-9)] == ["0.5", "0.9253", "1 - 2.2e-09"]


def test_detector_threshold_comes_from_the_checkpoint(tmp_path) -> None:
    det = create_detector("plain", "efficientnet_lite0", 64, pretrained=False)
    assert det.threshold == 0.5
    save_checkpoint(det, tmp_path / "t.pt", meta={"threshold": {"p_fake": 0.97}})
    assert load_detector(tmp_path / "t.pt").threshold == 0.97
