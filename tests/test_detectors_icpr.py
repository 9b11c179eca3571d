"""icpr2020dfdc checkpoints: exact key names/shapes, numerically identical outputs.

The reference networks are rebuilt here with the ``efficientnet_pytorch`` package (a dev
dependency) exactly as polimi-ispl/icpr2020dfdc composes them (``EfficientNetB4``:
``efficientnet`` + ``classifier``; ``EfficientNetAutoAttB4``: ``attconv`` after block 9).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xai_study.detectors import load_detector
from xai_study.errors import CheckpointError

ep = pytest.importorskip("efficientnet_pytorch")


class RefB4(nn.Module):
    def __init__(self, att: bool):
        super().__init__()
        self.efficientnet = ep.EfficientNet.from_name("efficientnet-b4")
        del self.efficientnet._fc
        self.att = att
        if att:
            self.efficientnet.attconv = nn.Conv2d(56, 1, kernel_size=1)
        self.classifier = nn.Linear(1792, 1)

    def attention(self, x):
        e = self.efficientnet
        x = e._swish(e._bn0(e._conv_stem(x)))
        for idx, block in enumerate(e._blocks):
            x = block(x)
            if idx == 9:
                return torch.sigmoid(e.attconv(x))

    def forward(self, x):
        e = self.efficientnet
        x = e._swish(e._bn0(e._conv_stem(x)))
        for idx, block in enumerate(e._blocks):
            x = block(x)
            if self.att and idx == 9:
                x = x * torch.sigmoid(e.attconv(x))
        x = e._swish(e._bn1(e._conv_head(x)))
        return self.classifier(e._avg_pooling(x).flatten(1))


def _randomised(att: bool) -> RefB4:
    torch.manual_seed(0)
    ref = RefB4(att).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in ref.modules():  # non-trivial BN statistics so a wrong mapping shows
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("att,wrap", [(False, False), (True, True)])
def test_icpr_b4_matches_reference(att: bool, wrap: bool, tmp_path) -> None:
    ref = _randomised(att)
    state = ref.state_dict()
    assert "efficientnet._blocks.9._project_conv.weight" in state
    assert state["efficientnet._blocks.9._project_conv.weight"].shape[0] == 56
    if att:
        assert state["efficientnet.attconv.weight"].shape == (1, 56, 1, 1)
    path = tmp_path / "icpr.pth"
    torch.save({"net": state, "epoch": 3} if wrap else state, path)
    det = load_detector(path)
    assert det.config["arch"] == ("bonettini" if att else "plain")
    assert det.config["backbone"] == "tf_efficientnet_b4"
    assert det.config["input_size"] == 224
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        # every one of the 32 blocks (random weights shrink the signal by the end, so the
        # block-wise check is what proves the mapping, padding included)
        e = ref.efficientnet
        h = e._swish(e._bn0(e._conv_stem(x)))
        y = det.stem(x)
        flat = [b for stage in det.backbone.blocks for b in stage]
        assert len(flat) == len(e._blocks) == 32
        for idx, (rb, db) in enumerate(zip(e._blocks, flat, strict=True)):
            h, y = rb(h), db(y)
            if att and idx == 9:
                h = h * torch.sigmoid(e.attconv(h))
                y = y * torch.sigmoid(det.attconv(y))
            assert h.shape == y.shape
            np.testing.assert_allclose(y.numpy(), h.numpy(), atol=1e-5, err_msg=f"block {idx}")
        expected = ref(x)
        got = det(x)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
        if att:
            np.testing.assert_allclose(
                det.attention(x).numpy(), ref.attention(x).numpy(), atol=1e-5
            )
            assert det.attention(x).shape == (2, 1, 28, 28)


def test_icpr_bad_files(tmp_path) -> None:
    ref = _randomised(False)
    state = ref.state_dict()
    del state["classifier.weight"]
    torch.save(state, tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="classifier"):
        load_detector(tmp_path / "a.pth")
    state = ref.state_dict()
    state["efficientnet._blocks.3._bn1.weight"] = torch.zeros(5)
    torch.save(state, tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match="shape"):
        load_detector(tmp_path / "b.pth")
    torch.save({"feat_ext.efficientnet._conv_stem.weight": torch.zeros(1)}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="Siamese"):
        load_detector(tmp_path / "c.pth")


def test_static_padding_matters(tmp_path) -> None:
    """At 224 px the 380-px static padding of block 6 differs from dynamic 'same'
    padding: without it the block outputs would not match (the check above can fail)."""
    from xai_study.detectors import create_detector

    ref = _randomised(False)
    torch.save(ref.state_dict(), tmp_path / "r.pth")
    det = load_detector(tmp_path / "r.pth")
    plain = create_detector("plain", backbone="tf_efficientnet_b4", input_size=224)
    plain.load_state_dict(det.state_dict())
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = det.stem(x), plain.stem(x)
        for i in range(3):
            a, b = det.backbone.blocks[i](a), plain.backbone.blocks[i](b)
    assert float((a - b).abs().max()) > 1e-3
