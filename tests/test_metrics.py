"""Known-answer and property tests of the map metrics (design §2) and localisation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xai_study.maps import normalise
from xai_study.metrics import (
    ALL_METRICS,
    Centredness,
    Intensity,
    InterFrameConsistency,
    IntraFrameConsistency,
    PointingGame,
    RelevanceMassAccuracy,
    Variance,
    localisation_metrics,
    paper_metrics,
    prepare_mask,
    to_json_value,
)
from xai_study.metrics.paper import shift_step


def gaussian_blob(h=64, w=64, cy=None, cx=None, sigma=None):
    y, x = np.mgrid[:h, :w]
    cy = h / 2 if cy is None else cy
    cx = w / 2 if cx is None else cx
    sigma = h / 5 if sigma is None else sigma
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))


# --- brute-force reference implementations, written from design §2 with loops --------


def ref_rho(n):
    t_, h, w = n.shape
    dy, dx = round(0.1 * h + 1e-9), round(0.1 * w + 1e-9)
    values = []
    for t in range(t_):
        x = n[t] - n[t].mean()

        def a(u, v, x=x):
            total = 0.0
            for yy in range(h):
                for xx in range(w):
                    if 0 <= yy + u < h and 0 <= xx + v < w:
                        total += x[yy, xx] * x[yy + u, xx + v]
            return total

        a0 = a(0, 0)
        if np.ptp(n[t]) == 0:
            continue
        values.append(
            np.mean([a(dy * sy, dx * sx) for sy, sx in [(0, 1), (1, 0), (1, 1), (1, -1)]]) / a0
        )
    return float(np.mean(values)) if values else math.nan


def ref_tau(n):
    values = []
    for t in range(n.shape[0] - 1):
        if np.ptp(n[t]) == 0 or np.ptp(n[t + 1]) == 0:
            continue
        values.append(np.corrcoef(n[t].ravel(), n[t + 1].ravel())[0, 1])
    return float(np.mean(values)) if values else math.nan


def ref_mu(n):
    h, w = n.shape[1:]
    values = []
    for frame in n:
        total = frame.sum()
        if total == 0:
            continue
        values.append(frame[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2].sum() / total)
    return float(np.mean(values)) if values else math.nan


def same(a, b, tol=1e-9):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


# --- known answers -------------------------------------------------------------------


def test_uniform_frames_give_mu_quarter():
    maps = np.stack([np.full((224, 224), v) for v in (0.5, 1.0, 2.0, 3.0)])
    # clip min-max maps the dimmest frame to zeros (skipped); the others stay uniform
    assert Centredness()(maps) == pytest.approx(0.25)
    assert Centredness()(np.full((3, 40, 40), 7.0) + np.arange(3)[:, None, None]) == 0.25


def test_identical_frames_give_tau_one():
    frame = np.random.default_rng(1).random((32, 32))
    assert InterFrameConsistency()(np.stack([frame] * 5)) == pytest.approx(1.0)


def test_inverted_frames_give_tau_minus_one():
    frame = np.random.default_rng(2).random((16, 16))
    assert InterFrameConsistency()(np.stack([frame, 1 - frame])) == pytest.approx(-1.0)


def test_constant_clip_gives_zero_variance_and_nan_rest():
    out = paper_metrics(np.full((6, 24, 24), 3.5))
    assert out["V"] == 0.0 and out["I"] == 0.0
    assert math.isnan(out["tau"]) and math.isnan(out["rho"]) and math.isnan(out["mu"])
    assert json.dumps({k: to_json_value(v) for k, v in out.items()}) == (
        '{"V": 0.0, "tau": null, "rho": null, "mu": null, "I": 0.0}'
    )


@pytest.mark.parametrize(
    ("case", "maps", "signed", "expected"),
    [
        # frame 0 all 1, frame 1 all 0 after min-max: mean of the frame means = 0.5
        (
            "bright_and_dark_frame",
            np.stack([np.full((4, 4), 3.0), np.full((4, 4), 1.0)]),
            False,
            0.5,
        ),
        # one pixel of 16 at the maximum, the rest at the minimum: 1/16
        ("single_peak", np.pad(np.ones((1, 1, 1)), ((0, 0), (0, 3), (0, 3))), False, 1 / 16),
        # values 0, 1, 2, 3 -> 0, 1/3, 2/3, 1: mean 0.5
        ("ramp", np.arange(4.0).reshape(1, 2, 2), False, 0.5),
        # signed: negatives become 0 first, so [-2, -1, 0, 2] -> [0, 0, 0, 1]: 1/4
        ("signed_drops_negatives", np.array([[[-2.0, -1.0], [0.0, 2.0]]]), True, 0.25),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_intensity_known_answers(case, maps, signed, expected):
    assert Intensity()(maps, signed=signed) == pytest.approx(expected), case
    assert paper_metrics(maps, signed=signed)["I"] == pytest.approx(expected), case


def test_intensity_is_the_fifth_paper_metric_with_the_papers_values():
    from xai_study.metrics.paper import PAPER_RESULTS

    assert list(paper_metrics(np.random.default_rng(0).random((2, 8, 8)))) == [
        "V",
        "tau",
        "rho",
        "mu",
        "I",
    ]
    assert {e: r["I"] for e, r in PAPER_RESULTS.items()} == {
        "bonettini": 0.4821,
        "gradcam": 0.0689,
        "ltpa": 0.0616,
        "shap3d": 0.0563,
    }


def test_single_bright_pixel_has_rho_about_zero():
    maps = np.zeros((2, 64, 64))
    maps[:, 20, 30] = 1.0
    assert abs(IntraFrameConsistency()(maps)) < 0.01


def test_broad_smooth_blob_has_high_rho_and_noise_none():
    blob = gaussian_blob(100, 100, sigma=20)[None]
    # the border-truncated sums cap a Gaussian near 0.76 (cf. the paper's GradCAM 0.749)
    assert IntraFrameConsistency()(blob) > 0.7
    noise = np.random.default_rng(0).random((3, 100, 100))
    assert abs(IntraFrameConsistency()(noise)) < 0.02
    # smoother blobs are more intra-frame consistent than sharp ones
    sharp = gaussian_blob(100, 100, sigma=3)[None]
    assert IntraFrameConsistency()(sharp) < IntraFrameConsistency()(blob)


def test_variance_known_value():
    # half the pixels 0, half 1 -> variance 0.25 in every frame
    frame = np.zeros((10, 10))
    frame[:5] = 1
    assert Variance()(np.stack([frame, frame.T])) == pytest.approx(0.25)


def test_centred_blob_beats_corner_blob_on_mu():
    centre = gaussian_blob(64, 64, sigma=5)[None]
    corner = gaussian_blob(64, 64, cy=5, cx=5, sigma=5)[None]
    assert Centredness()(centre) > 0.95
    assert Centredness()(corner) < 0.05


def test_signed_maps_drop_negative_evidence():
    signed = np.zeros((1, 20, 20))
    signed[0, 8:12, 8:12] = 1.0
    signed[0, :2, :2] = -5.0
    # as a signed map the corners are clipped to 0: all evidence is central
    assert Centredness()(signed, signed=True) == pytest.approx(1.0)
    # read as unsigned, the negative corner becomes the minimum and mass spreads out
    assert Centredness()(signed, signed=False) < 0.5


def test_shift_step_rounds_ten_percent():
    assert shift_step(224, 224) == (22, 22)
    assert shift_step(25, 15) == (3, 2)


def test_matches_bruteforce_reference():
    rng = np.random.default_rng(5)
    for shape in [(3, 12, 17), (2, 20, 9), (4, 10, 10)]:
        maps = rng.random(shape) ** 3
        maps[1] = 0.4  # a constant frame in the middle: skipped by tau and rho
        n = normalise(maps)
        out = paper_metrics(maps)
        assert same(out["rho"], ref_rho(n))
        assert same(out["tau"], ref_tau(n))
        assert same(out["mu"], ref_mu(n))
        assert same(out["V"], float(np.mean([f.var() for f in n])))


def test_metric_classes_carry_metadata():
    for cls in ALL_METRICS:
        assert cls.name and cls.reference and cls.__doc__
        assert cls.higher_is_better in (True, False, None)
    assert IntraFrameConsistency.higher_is_better is True
    assert Variance.higher_is_better is None


def test_bad_maps_are_rejected():
    with pytest.raises(ValueError):
        paper_metrics(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError):
        paper_metrics(np.array([[[np.nan, 1.0]]]))


# --- localisation --------------------------------------------------------------------


def square_mask(t=3, h=40, w=40, box=(10, 30, 5, 25)):
    mask = np.zeros((t, h, w), bool)
    mask[:, box[0] : box[1], box[2] : box[3]] = True
    return mask


def test_map_equal_to_mask_gives_mass_accuracy_one():
    mask = square_mask()
    out = localisation_metrics(mask.astype(float), mask)
    assert out["mass_accuracy"] == 1.0
    assert out["pointing_game"] == 1.0
    assert out["mass_accuracy_chance"] == pytest.approx(400 / 1600)
    assert out["pointing_game_chance"] == pytest.approx(400 / 1600)


def test_uniform_map_mass_accuracy_equals_chance():
    mask = square_mask()
    maps = np.ones((3, 40, 40))
    maps[0] = 0.5  # clip normalisation makes this frame zeros: skipped
    metric = RelevanceMassAccuracy()
    assert metric(maps, mask) == pytest.approx(0.25)
    assert metric.chance(maps, mask) == pytest.approx(0.25)


def test_map_outside_mask_scores_zero():
    mask = square_mask()
    maps = (~mask).astype(float)
    assert RelevanceMassAccuracy()(maps, mask) == 0.0
    assert PointingGame()(maps, mask) == 0.0


def test_pointing_game_counts_frames_and_ties():
    mask = square_mask(t=4)
    maps = np.zeros((4, 40, 40))
    maps[0, 15, 10] = 1  # inside
    maps[1, 0, 0] = 1  # outside
    maps[2, 15, 10] = maps[2, 0, 0] = 1  # tie: half inside
    maps[3, 20, 20] = 1  # inside
    assert PointingGame()(maps, mask) == pytest.approx((1 + 0 + 0.5 + 1) / 4)


def test_empty_mask_frames_are_skipped_and_all_empty_is_nan():
    mask = square_mask()
    mask[1] = False
    maps = mask.astype(float)
    maps[1] = np.random.default_rng(0).random((40, 40))
    assert RelevanceMassAccuracy()(maps, mask) == 1.0
    assert math.isnan(RelevanceMassAccuracy()(maps, np.zeros_like(mask)))
    assert math.isnan(PointingGame().chance(maps, np.zeros_like(mask)))


def test_soft_and_resized_masks():
    soft = np.zeros((2, 20, 20))
    soft[:, 5:15, 5:15] = 0.8
    soft[:, 4, 5:15] = 0.3  # below the 0.5 threshold
    g = prepare_mask(soft, (2, 40, 40))
    assert g.shape == (2, 40, 40) and g.sum() == 2 * 20 * 20
    g255 = prepare_mask((soft * 255).astype(np.uint8), (2, 20, 20))
    assert g255.sum() == 2 * 100
    maps = np.zeros((2, 40, 40))
    maps[:, 10:30, 10:30] = 1
    assert RelevanceMassAccuracy()(maps, soft) == 1.0


def test_mask_frame_count_mismatch_is_a_user_error():
    from xai_study.errors import XaiStudyError

    with pytest.raises(XaiStudyError, match="frames"):
        RelevanceMassAccuracy()(np.ones((3, 8, 8)), np.ones((2, 8, 8)))


# --- properties ----------------------------------------------------------------------

map_arrays = arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(4, 16), st.integers(4, 16)),
    # multiples of 1/64 in [-10, 10]: exact in float64, so adding an offset loses nothing
    elements=st.integers(-640, 640).map(lambda v: v / 64),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(map_arrays, st.booleans())
def test_paper_metrics_stay_in_range(maps, signed):
    out = paper_metrics(maps, signed=signed)
    for cls in (Variance, InterFrameConsistency, IntraFrameConsistency, Centredness, Intensity):
        value = out[cls.name]
        lo, hi = cls.value_range
        assert math.isnan(value) or lo - 1e-9 <= value <= hi + 1e-9


@SETTINGS
@given(map_arrays, st.floats(0.01, 1000), st.floats(-50, 50), st.booleans())
def test_paper_metrics_invariant_to_positive_scaling(maps, scale, offset, signed):
    a = paper_metrics(maps, signed=signed)
    b = paper_metrics(maps * scale, signed=signed)
    for key in a:
        assert same(a[key], b[key], tol=1e-6), key
    if not signed:  # min-max also removes an offset for unsigned maps
        c = paper_metrics(maps + offset)
        for key in a:
            assert same(a[key], c[key], tol=1e-6), key


@SETTINGS
@given(
    map_arrays,
    st.integers(0, 3),
    st.integers(0, 3),
    st.floats(0.01, 1000),
)
def test_localisation_in_range_and_scale_invariant(maps, y0, x0, scale):
    t, h, w = maps.shape
    mask = np.zeros((t, h, w), bool)
    mask[:, y0 : y0 + h // 2, x0 : x0 + w // 2] = True
    a = localisation_metrics(maps, mask)
    b = localisation_metrics(maps * scale, mask)
    for key, value in a.items():
        assert math.isnan(value) or -1e-9 <= value <= 1 + 1e-9
        assert same(value, b[key], tol=1e-6), key
