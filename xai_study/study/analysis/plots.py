"""The study's plots (matplotlib figures, no pyplot state): Q2 choice shares, Q1
accuracy by familiarity and the preference per video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xai_study.study.analysis.tables import Analysis

PLOT_NAMES = ("choice_shares", "accuracy_by_familiarity", "preference_by_video")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _error_bars(value: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    """Matplotlib ``yerr`` of an interval around ``value``; at 0 or 1 the Wilson bound
    can miss the value by a rounding error (4e-19), which matplotlib refuses."""
    return np.clip(np.vstack([value - low, high - value]), 0.0, None)


def _interval(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The participant-bootstrap interval where there is one, else the Wilson one."""
    if {"boot_low", "boot_high"} <= set(table.columns):
        low = table["boot_low"].where(table["boot_low"].notna(), table["ci_low"])
        high = table["boot_high"].where(table["boot_high"].notna(), table["ci_high"])
        return low, high
    return table["ci_low"], table["ci_high"]


def plot_choice_shares(result: Analysis):
    """Bar chart of Q2 choice shares per explainer (share of answers) with 95 %
    participant-bootstrap intervals."""
    fig = _figure(6, 3.6)
    ax = fig.add_subplot()
    c = result.choices
    if len(c) and c["count"].sum() > 0:
        x = np.arange(len(c))
        err = _error_bars(c["share"], *_interval(c))
        bars = ax.bar(x, c["share"], yerr=err, capsize=4, color="#4C72B0")
        for bar, (share, count) in zip(bars, zip(c["share"], c["count"], strict=True), strict=True):
            ax.annotate(
                f"{share:.0%}\n({int(count)})",
                (bar.get_x() + bar.get_width() / 2, 0),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                color="white",
                fontsize=8,
            )
        ax.axhline(1 / len(c), color="grey", linestyle="--", linewidth=1, label="equal preference")
        ax.set_xticks(x, c["explainer"])
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no Q2 answers yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("share of Q2 answers")
    ax.set_title("Which animation best explains the detector?")
    ax.set_ylim(0, 1)
    return fig


def plot_accuracy_by_familiarity(result: Analysis):
    """Q1 accuracy per familiarity level (and overall) with 95 % participant-bootstrap
    intervals."""
    fig = _figure(6, 3.6)
    ax = fig.add_subplot()
    table = pd.concat([result.accuracy_by_familiarity, result.accuracy_overall], ignore_index=True)
    table = table[table["n"] > 0]
    if len(table):
        x = np.arange(len(table))
        err = _error_bars(table["accuracy"], *_interval(table))
        colors = ["#55A868"] * (len(table) - 1) + ["#8172B2"]
        ax.bar(x, table["accuracy"], yerr=err, capsize=4, color=colors)
        labels = [f"{g}\n(n={int(n)})" for g, n in zip(table["group"], table["n"], strict=True)]
        ax.set_xticks(x, labels)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance (2 videos)")
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no Q1 answers yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Q1 accuracy (fake found)")
    ax.set_xlabel("familiarity with deepfakes")
    ax.set_title("Which video contains a fake face?")
    return fig


def plot_preference_by_video(result: Analysis):
    """Heat map of the Q2 choice share of each explainer per video (rows sum to 1)."""
    table = result.video_table
    height = 1.6 + 0.28 * max(len(table), 1)
    fig = _figure(6, min(height, 14))
    ax = fig.add_subplot()
    if table.size and table.to_numpy().sum() > 0:
        totals = table.sum(axis=1).replace(0, np.nan)
        shares = table.div(totals, axis=0).fillna(0.0)
        image = ax.imshow(shares.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(np.arange(table.shape[1]), list(table.columns))
        ax.set_yticks(np.arange(table.shape[0]), [str(v) for v in table.index])
        if table.shape[0] <= 40:
            for (i, j), value in np.ndenumerate(table.to_numpy()):
                ax.text(
                    j,
                    i,
                    str(int(value)),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shares.iat[i, j] < 0.6 else "black",
                )
        fig.colorbar(image, ax=ax, label="share of the video's choices")
    else:
        ax.text(0.5, 0.5, "no Q2 answers yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title("Preferred explanation per video (counts)")
    return fig


def figures(result: Analysis) -> dict:
    """The three plots as matplotlib figures, keyed by :data:`PLOT_NAMES`."""
    plots = (plot_choice_shares, plot_accuracy_by_familiarity, plot_preference_by_video)
    return {name: plot(result) for name, plot in zip(PLOT_NAMES, plots, strict=True)}


def save_plots(result: Analysis, out_dir: str | Path) -> list[Path]:
    """Write the plots as ``<name>.png`` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures(result).items():
        path = out_dir / f"{name}.png"
        fig.savefig(path)
        paths.append(path)
    return paths
