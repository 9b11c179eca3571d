"""Explainers against null explainers: paired differences with identity-clustered
bootstrap intervals.

A metric value means little on its own: a centred Gaussian that looks at nothing scores a
high mass accuracy on centred face crops, and random values painted on SHAP's supervoxels
inherit the supervoxels' smoothness. So each explainer is compared with each *null*
explainer (``null: True`` in the registry: a centre prior, random values on the same
supervoxels, Grad-CAM of a randomised model) on the same videos: per video the difference
``explainer - null``, then the mean difference and a 95 % percentile bootstrap interval.

The bootstrap resamples **identities** (the person shown, ``source_identity`` of the
labels file), not videos: several videos of one person are not independent evidence.
Videos without an identity count as their own cluster.
"""

from __future__ import annotations

import math

import numpy as np

PAIRED_COLUMNS = [
    "explainer",
    "null",
    "group",
    "metric",
    "n_videos",
    "n_identities",
    "mean_diff",
    "ci_low",
    "ci_high",
]


def cluster_bootstrap(
    values: np.ndarray,
    clusters: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and a percentile interval from
    resampling whole clusters with replacement (each resample's mean is over all values
    of the drawn clusters). Fewer than 2 clusters: no interval (NaN)."""
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    x, c = x[ok], np.asarray(clusters)[ok]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    names, inverse = np.unique(c, return_inverse=True)
    k = len(names)
    if k < 2:
        return mean, math.nan, math.nan
    sums = np.bincount(inverse, weights=x, minlength=k)
    counts = np.bincount(inverse, minlength=k).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(n_boot, k))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return mean, float(low), float(high)


def paired_differences(
    per_video,
    nulls: list[str],
    metrics: list[str],
    n_boot: int = 2000,
    seed: int = 0,
):
    """Long table (:data:`PAIRED_COLUMNS`) of every non-null explainer minus every null in
    ``nulls``, per group (fake / real) and metric, over the videos both explained."""
    import pandas as pd

    df = per_video
    if "error" in df.columns:
        df = df[df["error"].isna() | (df["error"].astype(str) == "")]
    if "identity" in df.columns:
        ident = df["identity"].astype(str).where(df["identity"].notna(), "")
    else:
        ident = pd.Series("", index=df.index)
    df = df.assign(_cluster=np.where(ident == "", "video:" + df["video"].astype(str), ident))
    present = [n for n in nulls if n in set(df["explainer"])]
    others = [e for e in dict.fromkeys(df["explainer"]) if e not in nulls]
    rows = []
    for group in ("fake", "real"):
        sub = df[df["label"] == group]
        for metric in [m for m in metrics if m in df.columns]:
            wide = sub.pivot_table(
                index=["video", "_cluster"], columns="explainer", values=metric, aggfunc="first"
            )
            for null in present:
                for explainer in others:
                    if null not in wide or explainer not in wide:
                        continue
                    diff = (wide[explainer] - wide[null]).astype(float)
                    diff = diff[np.isfinite(diff.to_numpy())]
                    if diff.empty:
                        continue
                    clusters = diff.index.get_level_values("_cluster").to_numpy()
                    mean, low, high = cluster_bootstrap(diff.to_numpy(), clusters, n_boot, seed)
                    rows.append(
                        {
                            "explainer": explainer,
                            "null": null,
                            "group": group,
                            "metric": metric,
                            "n_videos": int(len(diff)),
                            "n_identities": int(len(set(clusters))),
                            "mean_diff": mean,
                            "ci_low": low,
                            "ci_high": high,
                        }
                    )
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def beats(row) -> str:
    """The verdict of one paired row: ``above`` / ``below`` the null when the interval
    excludes 0, else ``not distinguishable``; ``no interval`` with fewer than 2 identities."""
    if row is None or not math.isfinite(row["ci_low"]):
        return "no interval"
    if row["ci_low"] > 0:
        return "above"
    if row["ci_high"] < 0:
        return "below"
    return "not distinguishable"


def paired_markdown(paired, labels: dict[str, str] | None = None) -> str:
    """The paired table as Markdown (fake videos first)."""
    if paired is None or paired.empty:
        return ""
    labels = labels or {}
    lines = [
        "## Against the null explainers",
        "",
        "Per video: explainer − null on the same clip; mean [95 % interval, bootstrap over "
        "identities]; verdict from the interval (above / below the null, or not "
        "distinguishable). Localisation beats a map that looks at nothing only when it is "
        "above `null_centre`.",
        "",
        "| group | metric | explainer | null | videos | identities | difference | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in paired.sort_values(["group", "metric", "explainer", "null"]).itertuples():
        row = r._asdict()
        cell = f"{row['mean_diff']:+.3f}"
        if math.isfinite(row["ci_low"]):
            cell += f" [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
        metric = labels.get(row["metric"], row["metric"])
        lines.append(
            f"| {row['group']} | {metric} | {row['explainer']} | {row['null']} | "
            f"{row['n_videos']} | {row['n_identities']} | {cell} | {beats(row)} |"
        )
    lines.append("")
    return "\n".join(lines)
