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


def cluster_draws(
    clusters: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> tuple[np.ndarray, int, np.ndarray]:
    """The one resampling of clusters: ``(inverse, k, draws)`` with ``inverse`` the
    cluster index (0..k-1) of each value and ``draws`` ``(n_boot, k)`` cluster indices
    drawn with replacement (``numpy.random.default_rng(seed)``)."""
    names, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    k = len(names)
    rng = np.random.default_rng(seed)
    return inverse, k, rng.integers(0, k, size=(n_boot, k))


def percentile_interval(stats: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap statistics at ``level``."""
    alpha = (1 - level) / 2
    low, high = np.quantile(np.asarray(stats, dtype=np.float64), [alpha, 1 - alpha])
    return float(low), float(high)


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
    inverse, k, draws = cluster_draws(c, n_boot, seed)
    if k < 2:
        return mean, math.nan, math.nan
    sums = np.bincount(inverse, weights=x, minlength=k)
    counts = np.bincount(inverse, minlength=k).astype(np.float64)
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = percentile_interval(means, level)
    return mean, low, high


def cluster_bootstrap_auc(
    labels: np.ndarray,
    scores: np.ndarray,
    clusters: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | int]:
    """ROC AUC of ``scores`` for 0/1 ``labels`` and a percentile interval from resampling
    whole clusters (identities) with replacement, as :func:`cluster_bootstrap` does. A
    resample with only one class has no AUC and is dropped (``n_valid`` counts the
    others). ``low``/``high`` are NaN with fewer than 2 clusters or 2 valid resamples."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    c = np.asarray(clusters).reshape(-1)
    if not (y.size == s.size == c.size):
        raise ValueError(f"{y.size} labels, {s.size} scores and {c.size} clusters")
    out: dict[str, float | int] = {
        "auc": math.nan,
        "low": math.nan,
        "high": math.nan,
        "level": level,
        "n_boot": n_boot,
        "n_valid": 0,
        "n_clusters": int(len(np.unique(c))) if c.size else 0,
    }
    if not (y.size and 0 < y.sum() < y.size):
        return out
    out["auc"] = float(roc_auc_score(y, s))
    inverse, k, draws = cluster_draws(c, n_boot, seed)
    if k < 2:
        return out
    # A resample repeats whole clusters, so its AUC is the AUC with each value weighted by
    # how often its cluster was drawn: sum_ij w_i w_j [s_i > s_j] (ties 1/2) over fake i,
    # real j, divided by (sum w_fake)(sum w_real): exactly roc_auc_score of the resample.
    counts = np.zeros((len(draws), k))
    np.add.at(counts, (np.repeat(np.arange(len(draws)), k), draws.reshape(-1)), 1.0)
    weights = counts[:, inverse]
    pos, neg = y == 1, y == 0
    wp, wn = weights[:, pos], weights[:, neg]
    denom = wp.sum(axis=1) * wn.sum(axis=1)
    valid = denom > 0
    if pos.sum() * neg.sum() <= 20_000_000:
        sp, sn = s[pos][:, None], s[neg][None, :]
        wins = (sp > sn) + 0.5 * (sp == sn)
        num = np.einsum("bi,ij,bj->b", wp, wins, wn, optimize=True)
    else:  # too many pairs for the matrix: one weighted AUC per resample
        num = np.array([_weighted_auc_numerator(s, y, w) for w in weights])
    aucs = num[valid] / denom[valid]
    out["n_valid"] = int(valid.sum())
    if valid.sum() >= 2:
        out["low"], out["high"] = percentile_interval(aucs, level)
    return out


def _weighted_auc_numerator(s: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """``sum_ij w_i w_j [s_i > s_j]`` (ties 1/2) over fake i and real j, by sorting."""
    order = np.argsort(s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    _, start = np.unique(s, return_index=True)
    ends = np.append(start[1:], s.size)
    num, below = 0.0, 0.0  # ``below``: weight of real values under the current score
    for a, b in zip(start, ends, strict=True):
        wf = w[a:b][y[a:b] == 1].sum()
        wr = w[a:b][y[a:b] == 0].sum()
        num += wf * (below + 0.5 * wr)
        below += wr
    return float(num)


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
