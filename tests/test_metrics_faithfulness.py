"""Deletion / insertion AUC and the model-randomisation sanity check, on known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xai_study.detectors.models import Detector
from xai_study.errors import XaiStudyError
from xai_study.metrics import (
    DeletionAUC,
    InsertionAUC,
    ModelParameterRandomisation,
    baseline_frames,
    detector_scorer,
    randomise_model,
    spearman,
)
from xai_study.metrics.sanity import parameterised_layers

# A 2-frame 10x10 white clip; the "detector" is the mean brightness of rows 0-1
# (20 % of the pixels), so P(fake) falls linearly while those pixels are deleted.
FRAMES = np.full((2, 10, 10, 3), 255, np.uint8)
PATCH = np.zeros((2, 10, 10))
PATCH[:, :2] = 1.0


def patch_scorer(batch):
    batch = np.asarray(batch, dtype=np.float64)
    return batch[:, :, :2].mean(axis=(1, 2, 3, 4)) / 255.0


def test_deletion_auc_known_answers():
    metric = DeletionAUC(steps=10, baseline="black")
    # the patch (40 of 200 pixels) goes first: scores 1, 0.5, 0, 0, ... -> AUC 0.1
    fractions, scores = metric.curve(FRAMES, PATCH, patch_scorer)
    assert np.allclose(fractions, np.linspace(0, 1, 11))
    assert np.allclose(scores, [1, 0.5] + [0] * 9)
    assert metric(FRAMES, PATCH, patch_scorer) == pytest.approx(0.1)
    # the patch goes last: 1 for eight steps, then 0.5, 0 -> AUC 0.9
    assert metric(FRAMES, 1 - PATCH, patch_scorer) == pytest.approx(0.9)


def test_insertion_auc_known_answers():
    metric = InsertionAUC(steps=10, baseline="black")
    assert metric(FRAMES, PATCH, patch_scorer) == pytest.approx(0.9)
    assert metric(FRAMES, 1 - PATCH, patch_scorer) == pytest.approx(0.1)
    assert InsertionAUC.higher_is_better and not DeletionAUC.higher_is_better


def test_batch_size_does_not_change_the_curve():
    maps = np.random.default_rng(0).random((2, 10, 10))
    frames = np.random.default_rng(1).integers(0, 256, (2, 10, 10, 3), dtype=np.uint8)
    a = DeletionAUC(steps=7, batch_size=1)(frames, maps, patch_scorer)
    b = DeletionAUC(steps=7, batch_size=8)(frames, maps, patch_scorer)
    assert a == b


def test_small_maps_are_resized_to_the_frames():
    small = np.zeros((2, 5, 5))
    small[:, 0] = 1.0  # top row of a 5x5 grid = top two rows of 10x10
    assert DeletionAUC(steps=10, baseline="black")(FRAMES, small, patch_scorer) < 0.2


def test_baselines():
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    assert baseline_frames(frames, "black").max() == 0
    assert (baseline_frames(frames, "grey") == 128).all()
    mean = baseline_frames(frames, "mean")
    assert np.allclose(mean[0, 0], frames.reshape(-1, 3).mean(0), atol=0.5)
    blur = baseline_frames(frames, "blur")
    assert blur.shape == frames.shape and blur.std() < frames.std() / 2
    with pytest.raises(XaiStudyError, match="baseline"):
        DeletionAUC(baseline="pink")


def test_frame_count_mismatch_is_a_user_error():
    with pytest.raises(XaiStudyError, match="frames"):
        DeletionAUC()(FRAMES, np.zeros((3, 10, 10)), patch_scorer)


class TinyDetector(Detector):
    """A small detector (the contract comes from :class:`Detector`): its own preprocess
    (no resizing, so 8- to 16-pixel clips work), a conv, batch norm, linear head."""

    arch = "tiny"

    def __init__(self):
        config = {"arch": "tiny", "backbone": "toy", "input_size": 12}
        super().__init__({**config, "mean": [0.5] * 3, "std": [0.25] * 3})
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, 1)
        self.eval()

    def preprocess(self, frames):
        x = torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        return (x - 0.5) / 0.25

    def features(self, x):
        return torch.relu(self.bn(self.conv(x)))

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))

    @property
    def gradcam_layer(self):
        return self.bn


def test_detector_scorer_is_sigmoid_of_mean_logit():
    det = TinyDetector()
    clips = np.random.default_rng(3).integers(0, 256, (3, 4, 12, 12, 3), dtype=np.uint8)
    got = detector_scorer(det, max_batch_frames=5)(clips)
    with torch.no_grad():
        want = [torch.sigmoid(det(det.preprocess(c)).mean()).item() for c in clips]
    assert np.allclose(got, want, atol=1e-6)
    # a Detector can be passed to the metric directly
    maps = np.random.default_rng(4).random((4, 12, 12))
    value = DeletionAUC(steps=4)(clips[0], maps, det)
    assert 0.0 <= value <= 1.0


# --- sanity: model-parameter randomisation --------------------------------------------

CLIP = np.random.default_rng(7).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)


def activation_map(det):
    """A model-dependent explanation: channel-summed first-layer activations."""
    with torch.no_grad():
        return det.features(det.preprocess(CLIP)).sum(dim=1).numpy()


def image_edges(det):
    """A model-independent 'explanation' (an edge detector): must fail the check."""
    grey = CLIP.mean(axis=-1)
    return np.abs(np.diff(grey, axis=2, append=grey[:, :, -1:]))


def test_randomisation_does_not_touch_the_original():
    det = TinyDetector()
    before = {k: v.clone() for k, v in det.state_dict().items()}
    clone = randomise_model(det, "all", seed=1)
    for k, v in det.state_dict().items():
        assert torch.equal(v, before[k])
    assert not torch.equal(clone.conv.weight, det.conv.weight)


def test_cascading_and_independent_layer_choice():
    det = TinyDetector()
    names = [n for n, _ in parameterised_layers(det)]
    assert names == ["conv", "bn", "head"]
    top1 = randomise_model(det, 1, "cascading", seed=1)
    assert torch.equal(top1.conv.weight, det.conv.weight)
    assert not torch.equal(top1.head.weight, det.head.weight)
    only_conv = randomise_model(det, 3, "independent", seed=1)
    assert not torch.equal(only_conv.conv.weight, det.conv.weight)
    assert torch.equal(only_conv.head.weight, det.head.weight)
    with pytest.raises(XaiStudyError):
        randomise_model(det, 4)


def test_model_independent_explainer_fails_sanity_check():
    metric = ModelParameterRandomisation(seed=1)
    assert metric(image_edges, TinyDetector()) == pytest.approx(1.0)


def test_model_dependent_explainer_changes_under_randomisation():
    det = TinyDetector()
    metric = ModelParameterRandomisation(seed=1)
    full = metric(activation_map, det)
    assert full < 0.9
    # randomising only the classifier head leaves the first-layer map untouched
    curve = metric.cascade(activation_map, det, stages=[1, 3])
    assert curve[0] == (1, pytest.approx(1.0))
    assert curve[1][1] == pytest.approx(full)
    assert ModelParameterRandomisation.higher_is_better is False


def test_spearman_edge_cases():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(XaiStudyError):
        spearman([1, 2], [1, 2, 3])


def test_known_endpoints_save_two_clips_and_change_nothing():
    maps = np.random.default_rng(0).random((2, 10, 10))
    frames = np.random.default_rng(1).integers(0, 256, (2, 10, 10, 3), dtype=np.uint8)
    seen = []

    def counting(batch):
        seen.append(len(batch))
        return patch_scorer(batch)

    for cls in (DeletionAUC, InsertionAUC):
        metric = cls(steps=6, baseline="blur", batch_size=3)
        full = metric(frames, maps, counting)
        assert sum(seen) == 7
        seen.clear()
        ends = metric.endpoints(frames, counting)
        assert sum(seen) == 2
        seen.clear()
        assert metric(frames, maps, counting, endpoints=ends) == pytest.approx(full)
        assert sum(seen) == 5
        seen.clear()


def test_detector_scorer_uses_the_detectors_aggregation():
    det = TinyDetector()
    det.aggregate = lambda logits: float(np.max(logits))  # e.g. a config'd aggregation
    clips = np.random.default_rng(3).integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    with torch.no_grad():
        want = [det(det.preprocess(c)).max().item() for c in clips]
    assert np.allclose(detector_scorer(det)(clips), want, atol=1e-6)


# ------------------------------------------------- execution order of the cascade


def hook_order(model):
    """Names of the parameter-owning modules in the order their forward hooks fire."""
    seen = []
    handles = [
        m.register_forward_hook(lambda *_, n=n: seen.append(n) if n not in seen else None)
        for n, m in model.named_modules()
        if list(m.parameters(recurse=False))
    ]
    with torch.no_grad():
        model(model.preprocess(np.full((1, 64, 64, 3), 100, np.uint8)))
    for h in handles:
        h.remove()
    return seen


@pytest.fixture(scope="module")
def real_detectors():
    from xai_study.detectors import create_detector

    torch.manual_seed(0)
    return {a: create_detector(a, input_size=64).eval() for a in ("plain", "bonettini", "ltpa")}


@pytest.mark.parametrize("arch", ["plain", "bonettini", "ltpa"])
def test_cascade_runs_from_the_output_in_execution_order(arch, real_detectors):
    det = real_detectors[arch]
    names = [n for n, _ in parameterised_layers(det)]
    assert names == hook_order(det)
    assert names[-1] == "classifier"  # randomised first
    registered = [n for n, m in det.named_modules() if list(m.parameters(recurse=False))]
    assert sorted(names) == sorted(registered)
    if arch == "bonettini":
        # registered last, but it runs mid-network: between stage 2 and stage 3
        assert registered[-1] == "attconv"
        i = names.index("attconv")
        assert names[i - 1].startswith("backbone.blocks.2.")
        assert names[i + 1].startswith("backbone.blocks.3.")
    if arch == "ltpa":  # the attention heads run after the trunk's last layer
        assert names.index("compat.0") > names.index("backbone.bn2")
    top1 = randomise_model(det, 1, "cascading", seed=1)
    changed = [
        k
        for k, v in top1.state_dict().items()
        if v.dtype.is_floating_point and not torch.equal(v, det.state_dict()[k])
    ]
    assert changed and all(k.startswith("classifier.") for k in changed), changed


# ------------------------------------------------- density ranking of painted totals


def test_deletion_ranks_painted_totals_by_density():
    # supervoxel 0 is the patch (40 px, total 1.0); supervoxel 1 the rest (160 px, total
    # 2.0). By total the rest goes first; by density (1/40 > 2/160) the patch does.
    segments = (1 - PATCH).astype(int)
    totals = np.where(segments == 0, 1.0, 2.0)
    metric = DeletionAUC(steps=10, baseline="black")
    assert metric(FRAMES, totals, patch_scorer) == pytest.approx(0.9)
    assert metric(FRAMES, totals, patch_scorer, segments=segments) == pytest.approx(0.1)
    insertion = InsertionAUC(steps=10, baseline="black")
    assert insertion(FRAMES, totals, patch_scorer, segments=segments) == pytest.approx(0.9)
    with pytest.raises(XaiStudyError):
        metric(FRAMES, totals, patch_scorer, segments=segments[:1])


def test_density_segments_follow_the_painting():
    from xai_study.explainers import create_explainer
    from xai_study.explainers.toys import make_region_detector, textured_clip
    from xai_study.metrics import density_segments

    det = make_region_detector(input_size=32)
    clip = textured_clip(2, 32, seed=1)
    kw = {"n_segments": 8, "compactness": 30.0, "slic_scale": 1.0}
    total = create_explainer("null_supervoxels", det, **kw).explain(clip)
    dense = create_explainer("null_supervoxels", det, paint="density", **kw).explain(clip)
    np.testing.assert_array_equal(density_segments(total), total.extra["segments"])
    assert density_segments(dense) is None
    assert density_segments(create_explainer("gradcam", det).explain(clip)) is None
