"""Calibrated P(fake): known-answer fits, ECE / Brier, checkpoint storage, old checkpoints,
``xai-study calibrate`` / ``convert``, identity-clustered AUC intervals."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from xai_study.cli import main
from xai_study.detectors import create_detector, load_detector, save_checkpoint
from xai_study.detectors.calibration import (
    Calibration,
    brier_score,
    calibration_of,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    nll,
)
from xai_study.detectors.checkpoint import read_checkpoint
from xai_study.detectors.contract import aggregate_logits, sigmoid, video_logit
from xai_study.errors import CheckpointError, XaiStudyError
from xai_study.metrics.paired import cluster_bootstrap_auc
from xai_study.runs.analysis import score_clip


def _draw(n: int, scale: float, bias: float, seed: int = 0):
    """Raw logits and labels drawn from P(fake) = sigmoid(scale * z + bias)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 4.0, n)
    y = (rng.random(n) < sigmoid(scale * z + bias)).astype(int)
    return z, y


@pytest.mark.parametrize("temperature", [0.5, 2.5, 8.0])
def test_temperature_fit_recovers_the_temperature_that_made_the_labels(temperature) -> None:
    z, y = _draw(40_000, 1 / temperature, 0.0)
    cal, at_bound = fit_temperature(z, y)
    assert not at_bound and cal.method == "temperature" and cal.bias == 0.0
    assert cal.temperature == pytest.approx(temperature, rel=0.05)
    # the fit is the likelihood's minimum: nudging T either way is worse
    for t in (cal.temperature * 0.99, cal.temperature * 1.01):
        assert nll(z / t, y, logits=True) > nll(cal.logit(z), y, logits=True)


def test_platt_fit_recovers_scale_and_bias() -> None:
    z, y = _draw(40_000, 0.4, -0.7, seed=1)
    cal, at_bound = fit_platt(z, y)
    assert not at_bound
    assert cal.scale == pytest.approx(0.4, rel=0.05)
    assert cal.bias == pytest.approx(-0.7, abs=0.06)


def test_separable_labels_push_the_temperature_to_its_bound() -> None:
    cal, at_bound = fit_temperature([-3.0, -1.0, 1.0, 2.0], [0, 0, 1, 1])
    assert at_bound and cal.temperature < 1e-2


def test_fits_reject_bad_input() -> None:
    with pytest.raises(XaiStudyError, match="real and fake"):
        fit_temperature([1.0, 2.0], [1, 1])
    with pytest.raises(XaiStudyError, match="0 \\(real\\) or 1"):
        fit_platt([1.0, 2.0], [0, 2])
    with pytest.raises(XaiStudyError, match="finite"):
        fit_temperature([1.0, np.inf], [0, 1])


def test_ece_and_brier_known_answers() -> None:
    p, y = [0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1]
    # bin [0.1, 0.2): 2 videos, fraction fake 0.5 vs mean P 0.1; bin [0.9, 1]: 1.0 vs 0.9
    assert expected_calibration_error(p, y, bins=10) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert expected_calibration_error(p, y, bins=1) == pytest.approx(abs(0.75 - 0.5))
    assert brier_score(p, y) == pytest.approx((0.01 + 0.81 + 0.01 + 0.01) / 4)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0  # 1.0 is in the last bin
    assert nll([0.5, 0.5], [0, 1]) == pytest.approx(math.log(2))
    with pytest.raises(XaiStudyError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [1])
    with pytest.raises(XaiStudyError, match="as many"):
        brier_score([0.5], [1, 0])


def test_calibration_maps_and_identity() -> None:
    logits = np.array([-2.0, 0.5, 3.0, 9.0])
    ident = Calibration()
    for how in ("mean_logit", "mean_prob", "median"):
        assert ident.video_p(logits, how) == aggregate_logits(logits, how)  # bit-identical
        assert float(sigmoid(video_logit(logits, how))) == pytest.approx(
            aggregate_logits(logits, how), rel=1e-12
        )
    np.testing.assert_array_equal(ident.frame_p(logits), sigmoid(logits))
    cal = Calibration("temperature", scale=0.25)
    assert cal.temperature == 4.0
    assert cal.video_p(logits) == pytest.approx(float(sigmoid(logits.mean() / 4)))
    np.testing.assert_allclose(cal.frame_p(logits), sigmoid(logits / 4))
    assert cal.video_p([0.0, 0.0]) == 0.5  # temperature keeps 0.5
    platt = Calibration("platt", scale=0.5, bias=-1.0)
    for p in (1e-6, 0.3, 0.5, 0.9253, 1 - 2e-4):
        assert platt.raw_from_p(platt.p_from_raw(p)) == pytest.approx(p, rel=1e-9)


def test_a_re_expressed_threshold_makes_the_same_decisions() -> None:
    rng = np.random.default_rng(3)
    raw_t = 1 - 2e-4  # the attention detectors' thresholds sit this close to 1
    for cal in (Calibration("temperature", 0.3), Calibration("platt", 2.0, -0.5)):
        z = rng.normal(8.0, 2.0, (500, 5))
        raw = np.array([aggregate_logits(row) for row in z])
        after = np.array([cal.video_p(row) for row in z])
        t = cal.p_from_raw(raw_t)
        np.testing.assert_array_equal(raw >= raw_t, after >= t)


def test_stored_calibrations_round_trip_and_bad_ones_are_one_line_errors(tmp_path) -> None:
    torch.manual_seed(0)
    det = create_detector("plain", "efficientnet_lite0", 32, pretrained=False)
    entry = Calibration("temperature", scale=0.5).to_meta() | {"fitted_on": {"split": "val"}}
    path = save_checkpoint(det, tmp_path / "c.pt", meta={"calibration": entry})
    back = load_detector(path)
    assert calibration_of(back) == Calibration("temperature", scale=0.5)
    assert back.meta["calibration"]["fitted_on"] == {"split": "val"}
    for bad, match in [
        ({"method": "isotonic"}, "unknown calibration method"),
        ({"method": "platt", "scale": -1.0, "bias": 0.0}, "scale > 0"),
        ({"method": "temperature", "scale": 2.0, "bias": 1.0}, "no bias"),
        ({"method": "platt", "scale": "x"}, "not numbers"),
        ("T=2", "must be a dictionary"),
    ]:
        save_checkpoint(det, tmp_path / "bad.pt", meta={"calibration": bad})
        with pytest.raises(CheckpointError, match=match) as info:
            load_detector(tmp_path / "bad.pt")
        assert "\n" not in str(info.value)


def test_old_checkpoints_without_calibration_keep_their_scores(tmp_path) -> None:
    torch.manual_seed(0)
    det = create_detector("plain", "efficientnet_lite0", 32, pretrained=False)
    path = save_checkpoint(det, tmp_path / "old.pt", meta={"threshold": {"p_fake": 0.6}})
    old = load_detector(path)
    assert calibration_of(old).identity and old.threshold == 0.6
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    v = score_clip(old, frames)
    logits = old.frame_logits(frames)
    assert v.p_fake == v.p_fake_raw == old.aggregate(logits)
    np.testing.assert_array_equal(v.frame_scores, sigmoid(v.frame_logits))
    # the same weights with a temperature: calibrated scores, raw ones kept beside them
    obj = read_checkpoint(path)
    obj["meta"]["calibration"] = Calibration("temperature", scale=0.5).to_meta()
    torch.save(obj, tmp_path / "new.pt")
    c = score_clip(load_detector(tmp_path / "new.pt"), frames)
    assert c.p_fake_raw == v.p_fake
    assert c.p_fake == pytest.approx(float(sigmoid(logits.astype(np.float64).mean() / 2)))


# ------------------------------------------------------------------ calibrate command


@pytest.fixture
def scored_split(tmp_path, monkeypatch):
    """A labels file of 16 val videos (4 identities) with known video logits: the face
    crops and the detector's logits are patched in, so no face detection runs."""
    rng = np.random.default_rng(5)
    rows, logits = [], {}
    for k in range(16):
        label = "fake" if k % 2 else "real"
        vid = f"{label}{k}"
        (tmp_path / f"{vid}.mp4").write_bytes(b"")
        z = rng.normal(3.0 if label == "fake" else -3.0, 5.0)
        logits[vid] = z + rng.normal(0, 0.5, 4)  # 4 frames per video
        rows.append(
            {"video_id": vid, "path": f"{vid}.mp4", "label": label, "split": "val",
             "source_identity": f"id{k % 4}"}
        )  # fmt: skip
    with (tmp_path / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    order: list[str] = []

    def fake_faces(path, num_frames, size, margin, cache_dir, device=None):
        order.append(path.stem)
        return np.zeros((4, size, size, 3), np.uint8)

    def fake_scores(detector, faceset, progress=True, desc=""):
        return np.concatenate([logits[it.video_id] for it in faceset.items]).astype(np.float32)

    monkeypatch.setattr("xai_study.detectors.data.load_faces", fake_faces)
    monkeypatch.setattr("xai_study.detectors.evaluate.score_faceset", fake_scores)
    torch.manual_seed(0)
    det = create_detector("plain", "efficientnet_lite0", 32, pretrained=False)
    ckpt = save_checkpoint(det, tmp_path / "m.pt", meta={"threshold": {"p_fake": 0.8}})
    z = np.array([logits[r["video_id"]].astype(np.float32).astype(np.float64).mean()
                  for r in rows])  # fmt: skip
    y = np.array([r["label"] == "fake" for r in rows], dtype=int)
    return tmp_path / "labels.csv", ckpt, z, y


def test_calibrate_stores_the_fit_and_re_expresses_the_threshold(scored_split, capsys) -> None:
    labels, ckpt, z, y = scored_split
    args = ["calibrate", "--checkpoint", str(ckpt), "--data", str(labels), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "temperature T =" in out and "decisions changed on this split: 0" in out
    meta = read_checkpoint(ckpt)["meta"]
    expected, _ = fit_temperature(z, y)
    assert meta["calibration"]["scale"] == pytest.approx(expected.scale, rel=1e-6)
    assert meta["calibration"]["fitted_on"]["n_identities"] == 4
    fit = meta["calibration"]["fit"]
    assert fit["calibrated"]["nll"] < fit["raw"]["nll"]
    assert meta["threshold"]["p_fake_raw"] == 0.8
    t = meta["threshold"]["p_fake"]
    assert t == pytest.approx(float(sigmoid(math.log(0.8 / 0.2) * expected.scale)))
    assert load_detector(ckpt).threshold == t
    # refitting starts from the raw logits: the same temperature and threshold
    assert main([*args, "--split", "validation"]) == 0
    again = read_checkpoint(ckpt)["meta"]
    assert again["calibration"]["scale"] == pytest.approx(expected.scale, rel=1e-9)
    assert again["threshold"]["p_fake"] == pytest.approx(t, rel=1e-12)
    # Platt: two parameters, and the stored threshold follows; --out writes the fit
    fit_dir = labels.parent / "fit"
    assert main([*args, "--method", "platt", "--out", str(fit_dir)]) == 0
    with (fit_dir / "per_video.csv").open() as fh:
        fitted = list(csv.DictReader(fh))
    assert [float(r["video_logit"]) for r in fitted] == pytest.approx(z, abs=1e-5)
    assert (fit_dir / "calibration.json").exists()
    platt = Calibration.from_meta(read_checkpoint(ckpt)["meta"]["calibration"])
    assert platt.method == "platt"
    assert read_checkpoint(ckpt)["meta"]["threshold"]["p_fake"] == pytest.approx(
        platt.p_from_raw(0.8)
    )


def test_calibrate_errors_are_one_line(scored_split, tmp_path, capsys) -> None:
    labels, ckpt, _, _ = scored_split
    assert main(["calibrate", "--checkpoint", str(ckpt), "--data", str(labels),
                 "--split", "test"]) == 2  # fmt: skip
    assert "test" in capsys.readouterr().err
    assert main(["calibrate", "--checkpoint", str(tmp_path / "none.pt"), "--data",
                 str(labels)]) == 2  # fmt: skip
    assert "no such checkpoint" in capsys.readouterr().err


def test_evaluate_detector_reports_calibration_and_identity_intervals(scored_split) -> None:
    from xai_study.runs.detect import evaluate_detector

    labels, ckpt, z, y = scored_split
    before = evaluate_detector(str(ckpt), str(labels), split="val", progress=False).metrics
    assert before["calibration"]["method"] == "identity"
    cal = before["calibration"]["video"]
    assert cal["raw"] == cal["calibrated"]
    assert cal["raw"]["brier"] == pytest.approx(brier_score(sigmoid(z), y))
    ci = before["auc_interval"]["video"]
    assert ci["n_clusters"] == 4 and ci["low"] <= before["video"]["auc"] <= ci["high"]
    assert main(["calibrate", "--checkpoint", str(ckpt), "--data", str(labels), "--quiet"]) == 0
    after = evaluate_detector(str(ckpt), str(labels), split="val", progress=False).metrics
    assert after["video"]["auc"] == before["video"]["auc"]  # an increasing map
    assert after["auc_interval"] == before["auc_interval"]
    got = after["calibration"]["video"]
    assert got["raw"] == cal["raw"]
    assert got["calibrated"]["nll"] < got["raw"]["nll"]
    assert after["at_threshold"]["video_balanced_accuracy"] == pytest.approx(
        before["at_threshold"]["video_balanced_accuracy"]
    )


# ----------------------------------------------------------------- identity bootstrap


def test_identity_bootstrap_auc_resamples_identities() -> None:
    y = np.array([0, 1] * 6)
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4, 0.05, 0.95, 0.15, 0.85])
    by_person = np.repeat(["a", "b", "c", "d", "e", "f"], 2)
    r = cluster_bootstrap_auc(y, s, by_person, n_boot=500)
    assert r["n_clusters"] == 6 and r["n_valid"] == 500
    assert r["low"] <= r["auc"] <= r["high"] <= 1.0
    assert r == cluster_bootstrap_auc(y, s, by_person, n_boot=500)  # seeded
    # one person holds all the errors: the interval reaches AUC 1 (that person left out)
    assert r["high"] == 1.0
    # pseudo-replication: copying every video of every person changes neither the AUC nor
    # the identity interval, while resampling the copies as independent videos narrows it
    y2, s2, p2 = np.repeat(y, 3), np.repeat(s, 3), np.repeat(by_person, 3)
    copied = cluster_bootstrap_auc(y2, s2, p2, n_boot=500)
    assert (copied["auc"], copied["low"], copied["high"]) == pytest.approx(
        (r["auc"], r["low"], r["high"])
    )
    videos = cluster_bootstrap_auc(y2, s2, np.arange(y2.size), n_boot=500)
    assert videos["high"] - videos["low"] < copied["high"] - copied["low"]
    # people with one class only: resamples without both classes are dropped and counted
    split = cluster_bootstrap_auc(y, s, np.where(y == 1, "fakes", "reals"), n_boot=200)
    assert split["n_valid"] < 200
    assert split["low"] == pytest.approx(r["auc"]) and split["high"] == pytest.approx(r["auc"])
    # one person: an AUC but no interval
    one = cluster_bootstrap_auc(y, s, np.repeat("a", 12))
    assert one["auc"] == r["auc"] and math.isnan(one["low"]) and math.isnan(one["high"])
    assert math.isnan(cluster_bootstrap_auc([1, 1], [0.2, 0.3], ["a", "b"])["auc"])


# ----------------------------------------------------------------------- convert


def test_convert_writes_a_project_checkpoint_from_an_icpr_file(tmp_path, capsys) -> None:
    ep = pytest.importorskip("efficientnet_pytorch")
    torch.manual_seed(0)
    net = ep.EfficientNet.from_name("efficientnet-b0")  # random weights, icpr key names
    state = {f"efficientnet.{k}": v for k, v in net.state_dict().items() if "_fc." not in k}
    state |= {
        "classifier.weight": torch.randn(1, 1280) * 0.05,
        "classifier.bias": torch.tensor([0.3]),
    }
    src = tmp_path / "EfficientNetB0_DFDC.pth"
    torch.save({"net": state, "epoch": 2}, src)
    out = tmp_path / "b0.pt"
    assert main(["convert", str(src), "--out", str(out)]) == 0
    assert "plain" in capsys.readouterr().out
    obj = read_checkpoint(out)
    assert obj["format"] == "xai-study-detector"
    assert obj["meta"]["converted_from"]["file"] == src.name
    icpr, project = load_detector(src), load_detector(out)
    assert project.config == icpr.config and project.config["same_padding_size"] == 224
    frames = np.random.default_rng(1).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(project.frame_logits(frames), icpr.frame_logits(frames))
    # a threshold and a calibration can now be stored on it
    obj["meta"]["threshold"] = {"p_fake": 0.7}
    obj["meta"]["calibration"] = Calibration("temperature", 0.5).to_meta()
    torch.save(obj, out)
    assert load_detector(out).threshold == 0.7
    assert calibration_of(load_detector(out)).temperature == 2.0
    # errors: an existing output, a file that is not icpr, calibrating the icpr file
    assert main(["convert", str(src), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["convert", str(out), "--out", str(tmp_path / "x.pt")]) == 2
    assert "not an icpr2020dfdc state dict" in capsys.readouterr().err
    assert main(["calibrate", "--checkpoint", str(src), "--data", "x.csv"]) == 2
    assert "xai-study convert" in capsys.readouterr().err


def test_identity_bootstrap_auc_equals_explicit_resamples() -> None:
    from sklearn.metrics import roc_auc_score

    from xai_study.metrics.paired import _weighted_auc_numerator, cluster_draws

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.normal(y, 1.0), 1)  # ties on purpose
    c = rng.integers(0, 5, 60)
    r = cluster_bootstrap_auc(y, s, c, n_boot=50, level=0.5)
    inverse, k, draws = cluster_draws(c, 50, 0)
    aucs = []
    for draw in draws:
        idx = np.concatenate([np.flatnonzero(inverse == j) for j in draw])
        if 0 < y[idx].sum() < idx.size:
            aucs.append(roc_auc_score(y[idx], s[idx]))
    assert r["n_valid"] == len(aucs)
    assert (r["low"], r["high"]) == pytest.approx(tuple(np.quantile(aucs, [0.25, 0.75])))
    w = rng.integers(0, 3, 60).astype(float)
    pos, neg = y == 1, y == 0
    wins = (s[pos][:, None] > s[neg]) + 0.5 * (s[pos][:, None] == s[neg])
    assert _weighted_auc_numerator(s, y, w) == pytest.approx(w[pos] @ wins @ w[neg])
