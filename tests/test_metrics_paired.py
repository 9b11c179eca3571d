"""Explainers against null explainers: paired differences, identity-clustered bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xai_study.metrics.paired import beats, cluster_bootstrap, paired_differences, paired_markdown


def test_cluster_bootstrap_resamples_clusters_not_values():
    # cluster a: three values of 1, cluster b: one value of 3. Resampling 2 clusters gives
    # means 1 (a, a: p = 1/4), 1.5 (a, b or b, a: p = 1/2) or 3 (b, b: p = 1/4), so the
    # 2.5 % and 97.5 % quantiles are exactly 1 and 3.
    mean, low, high = cluster_bootstrap(np.array([1, 1, 1, 3.0]), np.array(list("aaab")))
    assert mean == 1.5 and low == 1.0 and high == 3.0
    # resampling the four values instead would allow a mean of 2.5 (1, 3, 3, 3) ...
    _, vlow, vhigh = cluster_bootstrap(np.array([1, 1, 1, 3.0]), np.array(list("abcd")))
    assert vlow >= 1.0 and vhigh < 3.0  # ... and no all-3 resample at the 97.5 % quantile


def test_cluster_bootstrap_needs_two_clusters_and_skips_nan():
    mean, low, high = cluster_bootstrap(np.array([2.0, np.nan, 4.0]), np.array(list("aab")))
    assert mean == 3.0 and math.isfinite(low)
    mean, low, high = cluster_bootstrap(np.array([2.0, 4.0]), np.array(["a", "a"]))
    assert mean == 3.0 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in cluster_bootstrap(np.array([]), np.array([])))


def _rows(explainer, values, identities, label="fake"):
    return [
        {"video": f"v{i}", "identity": who, "label": label, "explainer": explainer, "mu": v}
        for i, (v, who) in enumerate(zip(values, identities, strict=True))
    ]


def test_paired_differences_known_answer():
    who = ["ann", "ann", "bob", ""]  # the last video has no identity: its own cluster
    per_video = pd.DataFrame(
        _rows("gradcam", [0.9, 0.8, 0.7, 0.6], who)
        + _rows("null_centre", [0.5, 0.5, 0.5, 0.5], who)
        + _rows("shap3d", [0.4, 0.4, np.nan, 0.4], who)
    )
    per_video["error"] = ""
    out = paired_differences(per_video, ["null_centre"], ["mu"], n_boot=500).set_index("explainer")
    g = out.loc["gradcam"]
    assert g["mean_diff"] == pytest.approx(0.25) and g["n_videos"] == 4
    assert g["n_identities"] == 3 and g["ci_low"] > 0 and beats(g) == "above"
    s = out.loc["shap3d"]
    assert s["mean_diff"] == pytest.approx(-0.1) and s["n_videos"] == 3
    assert s["ci_high"] == pytest.approx(-0.1) and beats(s) == "below"  # all diffs -0.1
    assert "null_centre" not in out.index  # a null is not compared with itself
    md = paired_markdown(out.reset_index())
    assert "| fake | mu | gradcam | null_centre | 4 | 3 | +0.250 [" in md


def test_failed_rows_and_missing_nulls_are_left_out():
    per_video = pd.DataFrame(
        _rows("gradcam", [0.9, 0.8], ["a", "b"]) + _rows("null_centre", [0.5, 0.5], ["a", "b"])
    )
    per_video["error"] = ["", "no face", "", ""]
    out = paired_differences(per_video, ["null_centre", "null_supervoxels"], ["mu"], n_boot=50)
    assert list(out["null"]) == ["null_centre"] and out["n_videos"].tolist() == [1]
    assert beats(out.iloc[0]) == "no interval"
