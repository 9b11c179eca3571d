"""Summaries of per-video metric values: means with 95 % bootstrap intervals.

Pure numerics over a :class:`pandas.DataFrame` with one row per video × explainer (the
``per_video.csv`` of ``xai-study evaluate``). Each explainer × group (fake / real videos)
× metric gets ``n`` (videos with a defined value), the mean, and a percentile bootstrap
95 % interval of the mean (``n_boot`` resamples of the videos, seeded). Localisation
metrics are also summarised as the paired excess over their chance level (the mask's
area share of each video): an interval entirely above 0 means the explainer points at
the manipulated region more than chance.
"""

from __future__ import annotations

import math

import numpy as np

from xai_study.metrics.faithfulness import DeletionAUC, InsertionAUC
from xai_study.metrics.localisation import PointingGame, RelevanceMassAccuracy
from xai_study.metrics.paper import PAPER_METRICS, PAPER_RESULTS
from xai_study.metrics.sanity import ModelParameterRandomisation

#: Metric columns in table order, with their classes (for direction and naming).
METRIC_CLASSES = {
    cls.name: cls
    for cls in (
        *PAPER_METRICS,
        RelevanceMassAccuracy,
        PointingGame,
        DeletionAUC,
        InsertionAUC,
        ModelParameterRandomisation,
    )
}
METRIC_COLUMNS = list(METRIC_CLASSES)
LOCALISATION = ("mass_accuracy", "pointing_game")
MIN_N_VERDICT = 5  # fewest videos for an above/below-chance verdict
LABELS = {
    "V": "V",
    "tau": "τ",
    "rho": "ρ",
    "mu": "μ",
    "I": "I",
    "mass_accuracy": "mass acc.",
    "pointing_game": "pointing",
    "deletion_auc": "deletion AUC",
    "insertion_auc": "insertion AUC",
    "randomisation_spearman": "rand. Spearman",
}


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """``(mean, low, high)`` of the non-NaN ``values``: percentile bootstrap of the mean.

    Empty input gives three NaNs; a single value gives ``(v, nan, nan)``; constant values
    give a zero-width interval.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return mean, float(low), float(high)


def summarise(per_video, n_boot: int = 2000, seed: int = 0):
    """Long table: explainer, group, metric, n, mean, ci_low, ci_high, chance, direction.

    ``per_video`` needs columns ``explainer``, ``label`` (fake/real) and the metric
    columns present in :data:`METRIC_COLUMNS`; rows with a non-empty ``error`` are
    ignored. Localisation rows also get ``metric + "_excess"`` rows: the per-video
    difference ``score - chance``.
    """
    import pandas as pd

    df = per_video
    if "error" in df.columns:
        df = df[df["error"].isna() | (df["error"].astype(str) == "")]
    rows = []
    for explainer in dict.fromkeys(df["explainer"]):
        for group in ("fake", "real"):
            sub = df[(df["explainer"] == explainer) & (df["label"] == group)]
            if sub.empty:
                continue
            for metric in METRIC_COLUMNS:
                if metric not in sub.columns:
                    continue
                values = pd.to_numeric(sub[metric], errors="coerce").to_numpy(float)
                if not np.isfinite(values).any():
                    continue
                mean, low, high = bootstrap_ci(values, n_boot, seed)
                hib = METRIC_CLASSES[metric].higher_is_better
                row = {
                    "explainer": explainer,
                    "group": group,
                    "metric": metric,
                    "n": int(np.isfinite(values).sum()),
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "chance": math.nan,
                    "higher_is_better": "" if hib is None else hib,
                }
                chance_col = f"{metric}_chance"
                if metric in LOCALISATION and chance_col in sub.columns:
                    chance = pd.to_numeric(sub[chance_col], errors="coerce").to_numpy(float)
                    ok = np.isfinite(values) & np.isfinite(chance)
                    row["chance"] = float(chance[ok].mean()) if ok.any() else math.nan
                    rows.append(row)
                    ex_mean, ex_low, ex_high = bootstrap_ci(values[ok] - chance[ok], n_boot, seed)
                    rows.append(
                        {
                            **row,
                            "metric": f"{metric}_excess",
                            "n": int(ok.sum()),
                            "mean": ex_mean,
                            "ci_low": ex_low,
                            "ci_high": ex_high,
                            "chance": 0.0,
                        }
                    )
                    continue
                rows.append(row)
    columns = ["explainer", "group", "metric", "n", "mean", "ci_low", "ci_high", "chance"]
    return pd.DataFrame(rows, columns=[*columns, "higher_is_better"])


def _cell(row) -> str:
    if row is None or not math.isfinite(row["mean"]):
        return "–"
    if math.isfinite(row["ci_low"]):
        return f"{row['mean']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    return f"{row['mean']:.3f}"


def _arrow(metric: str) -> str:
    hib = METRIC_CLASSES[metric].higher_is_better
    return "" if hib is None else (" ↑" if hib else " ↓")


def verdict(excess_row) -> str:
    """Whether the localisation excess over chance is significant (95 % CI excludes 0)."""
    if excess_row is None or not math.isfinite(excess_row["ci_low"]):
        return "n too small"
    if excess_row["n"] < MIN_N_VERDICT:  # a bootstrap of a handful of values means little
        return f"n < {MIN_N_VERDICT}: no verdict"
    if excess_row["ci_low"] > 0:
        return "above chance"
    if excess_row["ci_high"] < 0:
        return "below chance"
    return "not distinguishable from chance"


def summary_markdown(summary, per_video=None, title: str = "Explanation metrics") -> str:
    """The summary as Markdown: one table per group, plus a localisation table for fakes."""
    lines = [f"# {title}", ""]
    lookup = {(r.explainer, r.group, r.metric): r._asdict() for r in summary.itertuples()}
    explainers = list(dict.fromkeys(summary["explainer"]))
    if per_video is not None:
        ok = per_video
        if "error" in ok.columns:
            bad = ok[~(ok["error"].isna() | (ok["error"].astype(str) == ""))]
            if len(bad):
                lines.append(
                    f"{len(bad)} video × explainer row(s) failed and are excluded "
                    "(see the `error` column of per_video.csv)."
                )
                lines.append("")
        good = per_video
        if "error" in good.columns:
            good = good[good["error"].isna() | (good["error"].astype(str) == "")]
        videos = good.drop_duplicates("video")
        counts = videos["label"].value_counts()
        failed = set(per_video["video"]) - set(good["video"])
        lines.append(
            f"Videos: {int(counts.get('fake', 0))} fake, {int(counts.get('real', 0))} real"
            + (f" ({len(failed)} more failed entirely)" if failed else "")
            + ". Cells: mean [95 % bootstrap interval]; n = videos with a defined value; "
            "↑/↓ = higher/lower is better."
        )
        lines.append("")
    for group in ("fake", "real"):
        metrics = [m for m in METRIC_COLUMNS if any((e, group, m) in lookup for e in explainers)]
        if not metrics:
            continue
        lines.append(f"## {group.capitalize()} videos")
        lines.append("")
        header = ["explainer", "n"] + [f"{LABELS[m]}{_arrow(m)}" for m in metrics]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for e in explainers:
            ns = [lookup[(e, group, m)]["n"] for m in metrics if (e, group, m) in lookup]
            if not ns:
                continue
            cells = [e, str(max(ns))] + [_cell(lookup.get((e, group, m))) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    paper = [e for e in explainers if e in PAPER_RESULTS and (e, "fake", "tau") in lookup]
    if paper:
        lines.append("## Fake videos next to the paper")
        lines.append("")
        lines.append(
            "Paper: Pino, Carman & Bestagini (2021), means over 58 fake DFDC videos with "
            "EfficientNet-B4 detectors; here: the means above (other data and detectors, "
            "so compare orderings rather than values)."
        )
        lines.append("")
        shown = [m for m in ("V", "tau", "rho", "mu", "I") if (paper[0], "fake", m) in lookup]
        pairs = "".join(f" {LABELS[m]} paper | {LABELS[m]} here |" for m in shown)
        lines.append("| explainer |" + pairs)
        lines.append("|" + "---|" * (1 + 2 * len(shown)))
        for e in paper:
            cells = [e]
            for m in shown:
                row = lookup.get((e, "fake", m))
                here = (
                    "–" if row is None or not math.isfinite(row["mean"]) else f"{row['mean']:.4f}"
                )
                cells += [f"{PAPER_RESULTS[e][m]:.4f}", here]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    loc_rows = [e for e in explainers if (e, "fake", "mass_accuracy") in lookup]
    if loc_rows:
        lines.append("## Localisation on fake videos (ground-truth masks)")
        lines.append("")
        lines.append(
            "Chance = the mask's area share (what a uniform map or a random point scores). "
            "Excess = score − chance per video."
        )
        lines.append("")
        header = [
            "explainer",
            "n",
            "mass acc.",
            "chance",
            "excess",
            "mass acc. verdict",
            "pointing",
            "chance",
            "excess",
            "pointing verdict",
        ]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for e in loc_rows:
            cells = [e, str(lookup[(e, "fake", "mass_accuracy")]["n"])]
            for m in LOCALISATION:
                row = lookup.get((e, "fake", m))
                ex = lookup.get((e, "fake", f"{m}_excess"))
                chance = "–" if row is None else f"{row['chance']:.3f}"
                cells += [_cell(row), chance, _cell(ex), verdict(ex)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def summary_plot(summary, path, title: str = "Explanation metrics") -> None:
    """Bar chart (mean ± 95 % CI) per metric: explainers × fake/real; chance as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRIC_COLUMNS if m in set(summary["metric"])]
    explainers = list(dict.fromkeys(summary["explainer"]))
    cols = min(4, max(1, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    colours = {"fake": "#d62728", "real": "#1f77b4"}
    x = np.arange(len(explainers))
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        for k, group in enumerate(("fake", "real")):
            sub = summary[(summary["metric"] == metric) & (summary["group"] == group)]
            if sub.empty:
                continue
            sub = sub.set_index("explainer").reindex(explainers)
            means = sub["mean"].to_numpy(float)
            low = np.nan_to_num(means - sub["ci_low"].to_numpy(float))
            high = np.nan_to_num(sub["ci_high"].to_numpy(float) - means)
            ax.bar(
                x + (k - 0.5) * 0.38,
                means,
                width=0.38,
                yerr=[low, high],
                color=colours[group],
                alpha=0.8,
                capsize=3,
                label=group,
            )
            if metric in LOCALISATION and group == "fake":
                chance = sub["chance"].to_numpy(float)
                for i, c in enumerate(chance):
                    if math.isfinite(c):
                        ax.hlines(c, i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1)
        ax.set_title(f"{LABELS[metric]}{_arrow(metric)}", fontsize=10)
        ax.set_xticks(x, explainers, rotation=30, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.axhline(0, color="grey", lw=0.5)
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if any(m in LOCALISATION for m in metrics):
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="k", ls="--", lw=1))
        labels.append("chance (mask area)")
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(f"{title} (mean, 95 % bootstrap CI)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.92, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
