"""Known answers: a detector that only looks at one region, SHAP efficiency, supervoxels."""

from __future__ import annotations

import numpy as np
import pytest

from xai_study.explainers import create_explainer, explainer_class, list_explainers
from xai_study.explainers.supervoxels import CoalitionGame, supervoxels
from xai_study.explainers.toys import make_region_detector, region_mask, textured_clip

SIZE = 64
# Dense supervoxels so few of them straddle the region's border.
SETTINGS = {
    "shap3d": {"n_segments": 96, "compactness": 30.0, "nsamples": 250, "slic_scale": 1.0},
    "lime3d": {"n_segments": 96, "compactness": 30.0, "num_samples": 300, "slic_scale": 1.0},
    "integrated_gradients": {"n_steps": 16},
}


@pytest.mark.parametrize("name", [n for n in list_explainers() if not explainer_class(n).null])
def test_mass_concentrates_on_the_region_the_detector_uses(name):
    det = make_region_detector(explainer_class(name).requires or "plain", input_size=SIZE)
    clip = textured_clip(3, SIZE, seed=1)
    expl = create_explainer(name, det, **SETTINGS.get(name, {})).explain(clip)
    inside = region_mask(SIZE, det.region)  # 10.7 % of the crop, off-centre
    n = expl.normalised
    mass_in = n[:, inside].sum() / n.sum()
    ratio = n[:, inside].mean() / max(n[:, ~inside].mean(), 1e-12)
    assert mass_in > 0.5, f"{name}: only {mass_in:.2f} of the mass inside the region"
    assert ratio > 8, f"{name}: inside/outside mean ratio {ratio:.1f}"
    # the hottest pixel of every frame is inside the region or right at its border
    grown = region_mask(SIZE, _grow(det.region, 6 / SIZE))
    for t in range(len(n)):
        y, x = np.unravel_index(np.argmax(n[t]), n[t].shape)
        assert grown[y, x], f"{name}: frame {t} peaks at {(y, x)}"


def _grow(region, d):
    top, left, bottom, right = region
    return (top - d, left - d, bottom + d, right + d)


def test_shap_efficiency_on_the_toy():
    det = make_region_detector(input_size=SIZE)
    clip = textured_clip(4, SIZE, seed=2)
    expl = create_explainer("shap3d", det, **SETTINGS["shap3d"]).explain(clip)
    x = expl.extra
    gap = x["f_clip"] - x["f_baseline"]
    assert abs(gap) > 0.1
    assert abs(x["values"].sum() - gap) <= 0.01 * abs(gap)
    # f_clip is the mean frame logit; f_baseline the blurred clip's
    assert x["f_clip"] == pytest.approx(det.frame_logits(clip).mean(), rel=1e-6)
    # dummy players: supervoxels that never touch the region get (almost) nothing
    inside = region_mask(SIZE, det.region)
    touching = np.unique(x["segments"][:, inside])
    outside = np.setdiff1d(np.arange(len(x["values"])), touching)
    assert np.abs(x["values"][outside]).max() < 0.05 * np.abs(x["values"]).max()


def test_shap_efficiency_on_a_random_efficientnet(short_face_video):
    import torch

    from xai_study.detectors import create_detector
    from xai_study.video import extract_face_clip

    torch.manual_seed(1)
    det = create_detector("plain", input_size=64)
    clip = extract_face_clip(short_face_video, num_frames=3, size=96)
    expl = create_explainer("shap3d", det, n_segments=16, nsamples=48).explain(clip)
    x = expl.extra
    gap = x["f_clip"] - x["f_baseline"]
    assert abs(x["values"].sum() - gap) <= 0.01 * abs(gap) + 1e-9
    assert x["f_clip"] == pytest.approx(float(det.frame_logits(clip.frames).mean()), abs=1e-5)


@pytest.mark.skipif(
    not (
        __import__("pathlib").Path(__file__).resolve().parents[1] / "models" / "plain.pt"
    ).is_file(),
    reason="the demo plain checkpoint (models/plain.pt) is not in this checkout",
)
def test_shap_efficiency_on_the_demo_plain_detector(short_face_video):
    from xai_study.detectors import load_detector
    from xai_study.video import extract_face_clip

    det = load_detector("plain")
    clip = extract_face_clip(short_face_video, num_frames=3)
    expl = create_explainer("shap3d", det, n_segments=16, nsamples=40).explain(clip)
    x = expl.extra
    gap = x["f_clip"] - x["f_baseline"]
    assert abs(gap) > 1e-3
    assert abs(x["values"].sum() - gap) <= 0.01 * abs(gap)


# ------------------------------------------------------------------ supervoxels, game


def test_supervoxels_are_labelled_from_zero_and_span_frames():
    clip = textured_clip(8, 64, seed=4)
    seg = supervoxels(clip, n_segments=32, compactness=30.0, temporal_spacing=1.0, scale=1.0)
    assert seg.shape == (8, 64, 64) and seg.dtype == np.int32
    k = seg.max() + 1
    assert set(np.unique(seg)) == set(range(k)) and k >= 8
    spans = [len(np.unique(np.nonzero(seg == s)[0])) for s in range(k)]
    assert max(spans) > 1  # supervoxels, not per-frame superpixels
    short = supervoxels(clip, n_segments=32, compactness=30.0, temporal_spacing=64.0, scale=1.0)
    short_spans = [len(np.unique(np.nonzero(short == s)[0])) for s in range(short.max() + 1)]
    assert np.mean(short_spans) < np.mean(spans)  # temporal spacing shortens them


def test_supervoxels_downscaled_keep_the_crop_grid():
    clip = textured_clip(3, 64, seed=5)
    seg = supervoxels(clip, n_segments=16, compactness=30.0, scale=0.5)
    assert seg.shape == (3, 64, 64)
    assert set(np.unique(seg)) == set(range(seg.max() + 1))


def test_game_cache_is_exact_and_batches_are_bounded():
    det = make_region_detector(input_size=32)
    clip = textured_clip(4, 32, seed=6)
    seg = supervoxels(clip, n_segments=24, compactness=30.0, temporal_spacing=64.0, scale=1.0)
    base = np.zeros_like(clip)
    sizes = []
    original = det.preprocess

    def spy(frames):
        sizes.append(len(frames))
        return original(frames)

    det.preprocess = spy
    game = CoalitionGame(det, clip, seg, base, batch_size=5)
    rng = np.random.default_rng(0)
    k = game.n_segments
    z = np.vstack([np.eye(k), 1 - np.eye(k), rng.integers(0, 2, (20, k))])
    values = game(z)
    det.preprocess = original
    assert max(sizes) <= 5
    direct = [det.frame_logits(game.masked_clip(row)).mean() for row in z]
    np.testing.assert_allclose(values, direct, rtol=1e-5, atol=1e-6)
    stats = game.stats()
    # single supervoxels on/off only change the frames they live in: the cache saves work
    assert stats["frames_evaluated"] < stats["frames_without_cache"]
    # masked clips keep the coalition's pixels and show the baseline elsewhere
    row = np.zeros(k, dtype=bool)
    row[0] = True
    masked = game.masked_clip(row)
    np.testing.assert_array_equal(masked[seg == 0], clip[seg == 0])
    assert (masked[seg != 0] == 0).all()
    painted = game.paint(np.arange(k, dtype=np.float32))
    np.testing.assert_array_equal(painted, seg.astype(np.float32))


def test_gradcam_keeps_intensity_differences_between_frames():
    # pytorch-grad-cam rescales each frame to [0, 1]; our raw CAM must not, so a frame
    # with weaker evidence stays weaker after the clip-level normalisation.
    det = make_region_detector(input_size=SIZE)
    strong = textured_clip(1, SIZE, seed=3)[0].astype(np.float32)
    weak = 128 + (strong - 128) * 0.4  # same texture, 40 % of the contrast
    clip = np.stack([strong, weak]).astype(np.uint8)
    expl = create_explainer("gradcam", det).explain(clip)
    peak = expl.maps.reshape(2, -1).max(axis=1)
    assert peak[1] < 0.5 * peak[0]
    assert expl.normalised[0].max() == pytest.approx(1.0)
    assert expl.normalised[1].max() < 0.5
    from xai_study.maps import normalise

    np.testing.assert_allclose(expl.normalised, normalise(expl.maps), rtol=1e-6, atol=1e-7)


def test_game_input_size_evaluates_the_detector_at_that_size():
    import torch

    from xai_study.detectors import create_detector

    torch.manual_seed(2)
    det = create_detector("plain", input_size=64)
    clip = textured_clip(3, 64, seed=7)
    seg = supervoxels(clip, n_segments=12, compactness=30.0, temporal_spacing=64.0, scale=1.0)
    base = np.zeros_like(clip)
    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, (6, int(seg.max()) + 1))
    own = CoalitionGame(det, clip, seg, base)(z)
    small = CoalitionGame(det, clip, seg, base, input_size=32)(z)
    det.config["input_size"] = 32  # the detector itself at 32 px: the reference
    direct = [
        det.frame_logits(CoalitionGame(det, clip, seg, base).masked_clip(r)).mean() for r in z
    ]
    np.testing.assert_allclose(small, direct, rtol=1e-4, atol=1e-5)
    assert not np.allclose(small, own, atol=1e-4)  # the size did change what was asked


@pytest.mark.parametrize("bad", [1, 31, -5])
def test_supervoxel_input_size_below_32_is_refused(bad):
    from xai_study.errors import XaiStudyError

    det = make_region_detector(input_size=32)
    with pytest.raises(XaiStudyError, match="input_size"):
        create_explainer("shap3d", det, input_size=bad)


def test_game_precision_reaches_the_detector():
    """``precision="bfloat16"`` evaluates the masked frames under bfloat16 autocast: the
    game's values are those of batched_logits in bfloat16, near but not equal to float32."""
    import torch

    from xai_study.detectors import create_detector
    from xai_study.detectors.contract import batched_logits

    torch.manual_seed(0)
    det = create_detector("plain", input_size=32).eval()
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    seg = np.zeros((2, 32, 32), dtype=np.int32)
    seg[:, :, 16:] = 1
    base = np.zeros_like(clip)
    z = np.array([[1, 0], [0, 1], [1, 1]])
    full = CoalitionGame(det, clip, seg, base)(z)
    game = CoalitionGame(det, clip, seg, base, precision="bfloat16")
    half = game(z)
    masked = np.stack([game.masked_clip(row) for row in z]).reshape(-1, 32, 32, 3)
    want = batched_logits(det, masked, len(masked), precision="bfloat16").reshape(3, 2)
    np.testing.assert_allclose(half, want.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(half, full)
    np.testing.assert_allclose(half, full, rtol=0.05, atol=0.02)


def test_supervoxel_precision_must_be_known():
    from xai_study.errors import XaiStudyError

    det = make_region_detector(input_size=32)
    create_explainer("shap3d", det, precision="bfloat16")  # accepted
    create_explainer("shap3d", det, precision="auto")
    with pytest.raises(XaiStudyError, match="precision"):
        create_explainer("lime3d", det, precision="half")


@pytest.mark.parametrize("name", ["shap3d", "lime3d"])
def test_the_resolved_precision_is_reported(monkeypatch, name):
    """``precision="auto"`` shows in the convergence figure (summary.json, study
    metadata) as what actually ran."""
    import torch

    det = make_region_detector(input_size=32)
    clip = textured_clip(2, 32)
    for caps, want in (({"avx512_bf16": True}, "bfloat16"), ({}, "float32")):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        small = {"nsamples": 8} if name == "shap3d" else {"num_samples": 8}
        expl = create_explainer(name, det, n_segments=6, precision="auto", **small).explain(clip)
        assert expl.extra["convergence"]["precision"] == want
        assert expl.extra["precision"] == want
        assert expl.summary()["params"]["precision"] == "auto"
        # the verdict's score is the detector's own float32 one, whatever the game ran in
        assert expl.score == pytest.approx(det.video_score(clip), rel=1e-6)
