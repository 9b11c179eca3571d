"""``xai-study train --init``: warm start of a detector from another one's weights."""

from __future__ import annotations

import pytest
import torch

from xai_study.detectors import load_detector
from xai_study.detectors.checkpoint import save_checkpoint, warm_start
from xai_study.detectors.models import create_detector
from xai_study.errors import XaiStudyError


def test_bonettini_from_plain_is_plain_when_attention_is_open() -> None:
    """Everything but the attention conv comes from the plain detector: with the
    attention forced to 1 everywhere, the new model computes the plain model's logits."""
    torch.manual_seed(0)
    model = create_detector("bonettini", "efficientnet_lite0", 224, pretrained=False)
    info = warm_start(model, "plain")
    assert info["new"] == ["attconv"] and info["arch"] == "plain"
    assert info["copied"] == info["total"] - 2  # attconv weight and bias
    assert len(info["sha256"]) == 64
    with torch.no_grad():
        model.attconv.weight.zero_()
        model.attconv.bias.fill_(40.0)
    plain = load_detector("plain")
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), plain(x), atol=1e-5)
        # the fresh attention conv is not an open gate: the logits differ before forcing it
        fresh = create_detector("bonettini", "efficientnet_lite0", 224, pretrained=False)
        warm_start(fresh, "plain")
        assert not torch.allclose(fresh.eval()(x), plain(x), atol=1e-3)


def test_ltpa_from_plain_keeps_the_backbone_and_starts_its_head_fresh() -> None:
    model = create_detector("ltpa", "efficientnet_lite0", 224, pretrained=False)
    info = warm_start(model, "plain")
    # the plain classifier is Linear(1280, 1), LTPA's Linear(3 * 256, 1): not copied
    assert info["new"] == ["classifier", "compat", "global_proj", "project"]
    plain = load_detector("plain").state_dict()
    for k, v in model.state_dict().items():
        if k.startswith("backbone."):
            assert torch.equal(v, plain[k].to(v.dtype)), k


def test_init_errors(tmp_path) -> None:
    other = create_detector("plain", "efficientnet_b0", 224, pretrained=False)
    with pytest.raises(XaiStudyError, match="backbone is 'efficientnet_lite0'"):
        warm_start(other, "plain")
    lite = create_detector("plain", "efficientnet_lite0", 224, pretrained=False)
    odd = create_detector(
        "plain", "efficientnet_lite0", 224, pretrained=False, mean=[0.5] * 3, std=[0.5] * 3
    )
    save_checkpoint(odd, tmp_path / "odd.pt")
    with pytest.raises(XaiStudyError, match="its mean is"):
        warm_start(lite, tmp_path / "odd.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(XaiStudyError, match="not a readable PyTorch checkpoint"):
        warm_start(lite, tmp_path / "junk.pt")
    with pytest.raises(XaiStudyError, match="no such checkpoint"):
        warm_start(lite, tmp_path / "missing.pt")


def test_init_carries_the_static_same_padding_of_icpr_models(tmp_path) -> None:
    """icpr2020dfdc models run with "same" paddings fixed for 380 px
    (``same_padding_size``); a model warm-started from one takes them over, so its
    features are the source's (with the attention open), which they are not with timm's
    dynamic padding at this input size."""
    torch.manual_seed(0)
    src = create_detector(
        "plain", "tf_efficientnet_b0", 64, pretrained=False, same_padding_size=380
    )
    save_checkpoint(src, tmp_path / "sp.pt")
    src = load_detector(tmp_path / "sp.pt")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = src.features(x)
        warm = create_detector("bonettini", "tf_efficientnet_b0", 64, pretrained=False)
        warm_start(warm, tmp_path / "sp.pt")
        assert warm.config["same_padding_size"] == 380
        plain_copy = create_detector("bonettini", "tf_efficientnet_b0", 64, pretrained=False)
        plain_copy.load_state_dict(warm.state_dict())  # same weights, dynamic padding
        for m in (warm, plain_copy):
            m.attconv.weight.zero_()
            m.attconv.bias.fill_(40.0)
        assert torch.allclose(warm.eval().features(x), ref, rtol=1e-5, atol=0)
        assert not torch.allclose(plain_copy.eval().features(x), ref, rtol=1e-2, atol=0)
