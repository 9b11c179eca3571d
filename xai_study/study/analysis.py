"""Statistics of a user study: participants, Q1 accuracy, Q2 explainer preference.

Pure pandas / scipy / statsmodels (no gradio): the admin results page, ``xai-study
analyze --db`` and ``xai-study analyze --responses responses.csv`` all call
:func:`analyze` on the same tables, so they report the same numbers.

Input is a *responses* table, one row per participant x section, with the columns
:data:`RESPONSE_COLUMNS` (``q2_choice`` is the explainer name; several names separated
by ``;`` when the study allows multiple choice), and optionally a *participants* table
(``participant_id`` plus, when known, ``status``, ``screen``, ``familiarity``).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xai_study.errors import StudyError

RESPONSE_COLUMNS = (
    "participant_id",
    "section",
    "video_id",
    "q1_answer",
    "q1_correct",
    "q2_choice",
    "screen",
    "familiarity",
    "answered_at",
)

#: Separator between explainer names in ``q2_choice`` when Q2 allows several answers.
CHOICE_SEPARATOR = ";"

#: The paper's Q2 counts (Pino et al. 2021, 67 participants x 20 sections).
PAPER_COUNTS = {"GradCAM": 165, "SHAP": 221, "LTPA": 137, "Bonettini": 185}

#: The paper's objective metrics, mean over 58 fake videos (design.md section 1).
PAPER_METRICS = pd.DataFrame(
    {
        "V": [0.0951, 0.0135, 0.0108, 0.0302],
        "tau": [0.7390, 0.8756, 0.7991, 0.4496],
        "rho": [0.1262, 0.7489, 0.3333, 0.2326],
        "mu": [0.5286, 0.8666, 0.6386, 0.7348],
    },
    index=pd.Index(["Bonettini", "GradCAM", "LTPA", "SHAP"], name="explainer"),
)
METRIC_NAMES = ("V", "tau", "rho", "mu")
ACCURACY_COLUMNS = (
    "group",
    "n",
    "correct",
    "dont_know",
    "accuracy",
    "ci_low",
    "ci_high",
    "accuracy_decided",
)
_METRIC_ALIASES = {
    "v": "V",
    "variance": "V",
    "tau": "tau",
    "τ": "tau",
    "interframe": "tau",
    "interframeconsistency": "tau",
    "rho": "rho",
    "ρ": "rho",
    "intraframe": "rho",
    "intraframeconsistency": "rho",
    "mu": "mu",
    "μ": "mu",
    "centredness": "mu",
    "centeredness": "mu",
}

#: Display order of the paper's explainers (others follow alphabetically).
_CANONICAL_ORDER = ("gradcam", "shap", "ltpa", "bonettini")
_FAMILIARITY_ORDER = ("yes", "heard", "heard of it", "no")
_SCREEN_ORDER = ("large", "small")
_COMPLETED = {"completed", "complete", "done", "finished"}
_TRUE = {"true", "1", "yes", "y", "t", "correct"}
_FALSE = {"false", "0", "no", "n", "f", "incorrect", "wrong"}


def explainer_key(name: object) -> str:
    """Case- and punctuation-insensitive key: ``Grad-CAM`` and ``gradcam`` match."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _order(values: Iterable[str], preferred: Sequence[str] = _CANONICAL_ORDER) -> list[str]:
    values = list(dict.fromkeys(values))
    rank = {k: i for i, k in enumerate(preferred)}

    def sort_key(v: str) -> tuple[int, str]:
        k = explainer_key(v) if preferred is _CANONICAL_ORDER else str(v).lower()
        return (rank.get(k, len(rank)), str(v))

    return sorted(values, key=sort_key)


# --------------------------------------------------------------------------- input


def _to_bool(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return pd.NA
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer | float | np.floating):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in {"", "nan", "none", "null", "<na>"}:
        return pd.NA
    raise StudyError(f"q1_correct must be true/false, got {value!r}")


def _clean_text(series: pd.Series) -> pd.Series:
    """Strings with surrounding blanks removed; empty / missing cells become NA."""
    out = series.astype("object").map(
        lambda v: (
            pd.NA
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
            else str(v).strip()
        )
    )
    return out.map(lambda v: pd.NA if v is pd.NA or v == "" else v).astype("object")


def _section_text(value: object) -> object:
    """Section ids are text; a whole float read from a CSV (``3.0``) becomes ``3``."""
    if isinstance(value, float | np.floating) and not math.isnan(value) and value == int(value):
        return str(int(value))
    return value


def prepare_responses(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise a responses table (from the database or a CSV file).

    Raises :class:`StudyError` naming the missing columns. Returns a copy with
    ``participant_id``, ``video_id``, ``q1_answer``, ``q2_choice``, ``screen``,
    ``familiarity``, ``section`` as text (NA when empty), ``q1_correct`` as a nullable
    boolean (NA for "I do not know"); ``answered_at`` is passed through.
    """
    if not isinstance(frame, pd.DataFrame):
        raise StudyError("responses must be a table")
    missing = [c for c in RESPONSE_COLUMNS if c not in frame.columns]
    if missing:
        raise StudyError(
            "responses table lacks column(s) "
            + ", ".join(missing)
            + " (needs "
            + ", ".join(RESPONSE_COLUMNS)
            + ")"
        )
    df = frame.loc[:, list(RESPONSE_COLUMNS)].copy()
    for col in (
        "participant_id",
        "video_id",
        "q1_answer",
        "q2_choice",
        "screen",
        "familiarity",
        "answered_at",
    ):
        df[col] = _clean_text(df[col])
    if df["participant_id"].isna().any():
        raise StudyError("responses table has rows without participant_id")
    df["section"] = _clean_text(df["section"].map(_section_text))
    if df["section"].isna().any():
        raise StudyError("responses table has rows without section")
    df["q1_correct"] = df["q1_correct"].map(_to_bool).astype("boolean")
    df["familiarity"] = (
        df["familiarity"].map(lambda v: v if v is pd.NA else str(v).lower()).astype("object")
    )
    df["screen"] = df["screen"].map(lambda v: v if v is pd.NA else str(v).lower()).astype("object")
    dup = df.duplicated(["participant_id", "section"])
    if dup.any():
        row = df.loc[dup].iloc[0]
        raise StudyError(
            f"participant {row['participant_id']} answered section {row['section']} twice"
        )
    return df.sort_values(["participant_id", "section"], kind="stable").reset_index(drop=True)


def prepare_participants(
    frame: pd.DataFrame | None, responses: pd.DataFrame
) -> tuple[pd.DataFrame, bool]:
    """One row per participant: ``participant_id, status, screen, familiarity, answered``.

    Without a participants table, participants are those with at least one answer and
    completion is inferred (answered as many sections as the most diligent one); the
    second return value says whether completion was known (``True``) or inferred.
    """
    answered = responses.groupby("participant_id").size().rename("answered")
    first = responses.groupby("participant_id")[["screen", "familiarity"]].first()
    if frame is None:
        out = pd.DataFrame({"participant_id": answered.index.astype(str)})
        out["answered"] = answered.to_numpy()
        most = int(out["answered"].max()) if len(out) else 0
        out["status"] = np.where(out["answered"] >= most, "completed", "incomplete")
        out["screen"] = first["screen"].reindex(out["participant_id"]).to_numpy()
        out["familiarity"] = first["familiarity"].reindex(out["participant_id"]).to_numpy()
        out["checks_passed"] = np.nan
        out["checks_total"] = np.nan
        return out, False
    if "participant_id" not in frame.columns:
        raise StudyError("participants table lacks column participant_id")
    out = pd.DataFrame({"participant_id": _clean_text(frame["participant_id"])})
    if out["participant_id"].isna().any():
        raise StudyError("participants table has rows without participant_id")
    out = out.drop_duplicates("participant_id").reset_index(drop=True)
    index = (
        frame.assign(participant_id=_clean_text(frame["participant_id"]))
        .drop_duplicates("participant_id")
        .set_index("participant_id")
    )
    for col in ("screen", "familiarity"):
        own = (
            _clean_text(index[col]).reindex(out["participant_id"])
            if col in index.columns
            else pd.Series(pd.NA, index=out["participant_id"], dtype="object")
        )
        fallback = first[col].reindex(out["participant_id"])
        merged = own.where(own.notna(), fallback)
        out[col] = merged.map(lambda v: pd.NA if pd.isna(v) else str(v).lower()).to_numpy()
        out[col] = out[col].astype("object")
    out["answered"] = answered.reindex(out["participant_id"]).fillna(0).astype("int64").to_numpy()
    for col in ("checks_passed", "checks_total"):
        values = (
            pd.to_numeric(index[col], errors="coerce").reindex(out["participant_id"])
            if col in index.columns
            else pd.Series(np.nan, index=out["participant_id"])
        )
        out[col] = values.astype(float).to_numpy()
    known = "status" in index.columns
    if known:
        status = _clean_text(index["status"]).reindex(out["participant_id"])
        out["status"] = status.map(lambda v: "unknown" if v is pd.NA else str(v).lower()).to_numpy()
    else:
        most = int(out["answered"].max()) if len(out) else 0
        out["status"] = np.where((out["answered"] >= most) & (most > 0), "completed", "incomplete")
    stray = sorted(set(responses["participant_id"]) - set(out["participant_id"]))
    if stray:
        raise StudyError(
            f"responses name participant {stray[0]} who is not in the participants table"
        )
    return out, known


# --------------------------------------------------------------------------- helpers


def wilson_interval(count: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for ``count`` successes out of ``n`` (NaN, NaN when n=0)."""
    if n <= 0:
        return (math.nan, math.nan)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(count, n, alpha=alpha, method="wilson")
    return (float(low), float(high))


def split_choices(value: object) -> list[str]:
    """Explainer names of one Q2 answer (``"SHAP;LTPA"`` -> ``["SHAP", "LTPA"]``)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return []
    names = [p.strip() for p in str(value).split(CHOICE_SEPARATOR) if p.strip()]
    return list(dict.fromkeys(names))  # a name given twice counts once


def sign_test(n_a: int, n_b: int) -> float:
    """Two-sided sign test: exact binomial test of ``n_a`` out of ``n_a + n_b`` vs 1/2."""
    from scipy.stats import binomtest

    if n_a + n_b == 0:
        return math.nan
    return float(binomtest(int(n_a), int(n_a + n_b), 0.5).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests(method="holm")``); NaN kept."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return [float(v) for v in out]


def fleiss_kappa_table(table: np.ndarray) -> tuple[float, str]:
    """Fleiss' kappa of a subjects x categories count table.

    With the same number of ratings per subject this is statsmodels' ``fleiss_kappa``;
    otherwise the usual extension to a varying number of raters is used (agreement
    ``P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))`` per subject, category shares
    pooled over all ratings). Subjects with fewer than 2 ratings are left out.
    Returns (kappa, method).
    """
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.size == 0:
        return (math.nan, "none")
    n_i = table.sum(axis=1)
    table = table[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if len(table) < 1:
        return (math.nan, "none")
    if np.all(n_i == n_i[0]):
        from statsmodels.stats.inter_rater import fleiss_kappa

        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            value = float(fleiss_kappa(table, method="fleiss"))
        return (value, "fleiss")
    p_i = ((table**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = table.sum(axis=0) / table.sum()
    p_e = float((p_j**2).sum())
    if p_e >= 1.0:
        return (math.nan, "fleiss-unbalanced")
    return ((p_bar - p_e) / (1 - p_e), "fleiss-unbalanced")


# --------------------------------------------------------------------------- metrics


def _metric_name(name: object) -> str | None:
    """``V``, ``tau``, ``rho`` or ``mu`` for a metric name or alias (``τ``, ``Variance``)."""
    text = str(name).strip().lower()
    return _METRIC_ALIASES.get(text) or _METRIC_ALIASES.get(explainer_key(text))


def load_metrics(path: str | Path) -> pd.DataFrame:
    """Objective metrics per explainer from an ``xai-study evaluate`` ``summary.csv``.

    Accepts a wide table (an ``explainer`` column and metric columns ``V, tau, rho, mu``,
    optionally suffixed ``_mean``) or a long one (``explainer, metric, mean|value``; with
    a ``group`` column, as ``evaluate`` writes, only the ``fake`` rows are used).
    Returns a table indexed by explainer with the columns found among V, tau, rho, mu.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"metrics file not found: {path}")
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StudyError(f"cannot read metrics file {path}: {exc}") from None
    return metrics_table(raw, source=str(path))


def metrics_table(raw: pd.DataFrame, source: str = "metrics") -> pd.DataFrame:
    """Normalise a wide or long metrics table (see :func:`load_metrics`)."""
    cols = {explainer_key(c): c for c in raw.columns}
    name_col = next((cols[k] for k in ("explainer", "name", "method") if k in cols), None)
    if name_col is None:
        raise StudyError(f"{source}: needs an 'explainer' column")
    if "metric" in cols and any(k in cols for k in ("mean", "value")):
        value_col = cols.get("mean", cols.get("value"))
        if "group" in cols:  # evaluate's summary: the paper's metrics are over fake videos
            groups = raw[cols["group"]].astype(str).str.lower()
            if (groups == "fake").any():
                raw = raw[groups == "fake"]
        long = raw[[name_col, cols["metric"], value_col]].copy()
        long.columns = ["explainer", "metric", "value"]
        long["metric"] = long["metric"].map(_metric_name)
        long = long.dropna(subset=["metric"])
        wide = long.pivot_table(index="explainer", columns="metric", values="value", aggfunc="mean")
    else:
        picked = {}
        for col in raw.columns:
            key = str(col).strip().lower()
            for suffix in ("_mean", " mean", "mean"):
                if key.endswith(suffix) and key != suffix:
                    key = key[: -len(suffix)]
                    break
            metric = _metric_name(key)
            if metric and metric not in picked:
                picked[metric] = col
        if not picked:
            raise StudyError(f"{source}: no metric columns among V, tau, rho, mu")
        wide = raw.groupby(name_col)[list(picked.values())].mean()
        wide.columns = list(picked.keys())
        wide.index.name = "explainer"
    wide = wide[[m for m in METRIC_NAMES if m in wide.columns]].astype(float)
    if wide.empty:
        raise StudyError(f"{source}: no metric values found")
    wide.index = wide.index.astype(str)
    return wide


# --------------------------------------------------------------------------- result


@dataclass
class Analysis:
    """Everything the results page, ``analyze`` and the plots need."""

    explainers: list[str]
    participants: pd.DataFrame
    completion_known: bool
    overview: dict[str, float]
    reached: pd.DataFrame  # section_count, participants (drop-out curve)
    demographics: pd.DataFrame  # variable, level, count, share
    accuracy_overall: pd.DataFrame  # group, n, correct, accuracy, ci_low, ci_high
    accuracy_by_video: pd.DataFrame
    accuracy_by_familiarity: pd.DataFrame
    choices: pd.DataFrame  # explainer, count, share, ci_low, ci_high
    video_table: pd.DataFrame  # video x explainer counts
    tests: dict[str, dict[str, float | str]]
    sign_tests: pd.DataFrame  # explainer_a, explainer_b, level, n_a, n_b, p_value, p_holm
    correlations: pd.DataFrame  # metric, spearman_rho, p_value, n
    metrics: pd.DataFrame = field(repr=False)
    stats: pd.DataFrame = field(repr=False)  # the long table written to stats.csv

    def summary_lines(self) -> list[str]:
        """A short human-readable summary (printed by ``xai-study analyze``)."""
        o = self.overview
        lines = [
            f"participants: {int(o['participants'])} ({int(o['completed'])} completed, "
            f"{int(o['dropped_out'])} not completed), answers: {int(o['answers'])}",
        ]
        acc = self.accuracy_overall.iloc[0]
        if acc["n"] > 0:
            lines.append(
                f"Q1 accuracy: {acc['accuracy']:.1%} of {int(acc['n'])} "
                f"(95% CI {acc['ci_low']:.1%}-{acc['ci_high']:.1%})"
            )
        if len(self.choices):
            parts = [
                f"{r.explainer} {int(r.count)} ({r.share:.0%})" for r in self.choices.itertuples()
            ]
            lines.append("Q2 choices: " + ", ".join(parts))
        gof = self.tests.get("chi2_gof", {})
        if not math.isnan(float(gof.get("p_value", math.nan))):
            lines.append(
                f"equal preference: chi2={gof['statistic']:.2f}, df={int(gof['df'])}, "
                f"p={gof['p_value']:.3g}"
            )
        ans = self.sign_tests[self.sign_tests["level"] == "answer"]
        for r in ans.itertuples():
            lines.append(
                f"sign test {r.explainer_a} vs {r.explainer_b}: {int(r.n_a)}:{int(r.n_b)}, "
                f"p={r.p_value:.3g}, Holm p={r.p_holm:.3g}"
            )
        return lines


def analyze(
    responses: pd.DataFrame,
    participants: pd.DataFrame | None = None,
    *,
    explainers: Sequence[str] | None = None,
    metrics: pd.DataFrame | None = None,
    exclude_failed_checks: bool = False,
) -> Analysis:
    """Compute every statistic of the study (see the module docstring).

    ``explainers`` fixes the set and order of explainers (so that an explainer nobody
    chose still counts in the goodness-of-fit test); by default the names found in
    ``q2_choice`` and, when the table has it, ``q2_order`` (the animations shown). ``metrics`` is a table indexed by explainer with columns among
    ``V, tau, rho, mu`` (default: the paper's table, :data:`PAPER_METRICS`).

    Participants whose status is ``withdrawn`` are left out of every statistic (their
    number is reported); with ``exclude_failed_checks`` so are those who failed an
    attention check (needs ``checks_passed`` / ``checks_total`` in ``participants``).
    """
    shown: list[str] = []
    if "q2_order" in responses.columns:
        for value in _clean_text(responses["q2_order"]).dropna():
            shown.extend(split_choices(value))
    df = prepare_responses(responses)
    everyone, known = prepare_participants(participants, df)
    metrics = PAPER_METRICS if metrics is None else metrics
    withdrawn = everyone["status"] == "withdrawn"
    failed = everyone["checks_total"].fillna(0) > everyone["checks_passed"].fillna(0)
    dropped = withdrawn | (failed if exclude_failed_checks else False)
    people = everyone[~dropped].reset_index(drop=True)
    df = df[df["participant_id"].isin(set(people["participant_id"]))].reset_index(drop=True)

    # Q2 choices, one row per chosen explainer
    chosen = df.assign(choice=df["q2_choice"].map(split_choices)).explode("choice")
    chosen = chosen.dropna(subset=["choice"])
    found = list(chosen["choice"].unique())
    if explainers is None:
        found = list(dict.fromkeys([*found, *shown]))
        names = _order(found)
    else:
        names = [str(e) for e in explainers]
        unknown = sorted(set(found) - set(names))
        if unknown:
            raise StudyError(
                f"q2_choice names explainer {unknown[0]!r}, not one of " + ", ".join(names)
            )
    counts = chosen["choice"].value_counts().reindex(names, fill_value=0).astype("int64")
    total_choices = int(counts.sum())
    choice_rows = []
    for name in names:
        c = int(counts[name])
        low, high = wilson_interval(c, total_choices)
        choice_rows.append(
            {
                "explainer": name,
                "count": c,
                "share": c / total_choices if total_choices else math.nan,
                "ci_low": low,
                "ci_high": high,
            }
        )
    choices = pd.DataFrame(
        choice_rows, columns=["explainer", "count", "share", "ci_low", "ci_high"]
    )

    # participants, completion, drop-out
    n_people = len(people)
    completed = int((people["status"] == "completed").sum()) if n_people else 0
    overview = {
        "participants_total": float(len(everyone)),
        "withdrawn": float(int(withdrawn.sum())),
        "failed_attention_check": float(int(failed.sum())),
        "excluded": float(int(dropped.sum())),
        "participants": float(n_people),
        "completed": float(completed),
        "dropped_out": float(n_people - completed),
        "completion_rate": completed / n_people if n_people else math.nan,
        "dropout_rate": (n_people - completed) / n_people if n_people else math.nan,
        "answers": float(len(df)),
        "answers_q2": float(int(df["q2_choice"].notna().sum())),
        "sections_per_participant": float(people["answered"].mean()) if n_people else math.nan,
    }
    most = int(people["answered"].max()) if n_people else 0
    reached = pd.DataFrame(
        {
            "sections_answered": list(range(0, most + 1)),
            "participants": [int((people["answered"] >= k).sum()) for k in range(0, most + 1)],
        }
    )

    # demographics
    demo_rows = []
    for var, order in (("screen", _SCREEN_ORDER), ("familiarity", _FAMILIARITY_ORDER)):
        values = people[var].map(lambda v: "unknown" if pd.isna(v) else v)
        vc = values.value_counts()
        for level in _order(vc.index, order):
            demo_rows.append(
                {
                    "variable": var,
                    "level": level,
                    "count": int(vc[level]),
                    "share": int(vc[level]) / n_people if n_people else math.nan,
                }
            )
    demographics = pd.DataFrame(demo_rows, columns=["variable", "level", "count", "share"])

    # Q1 accuracy: "I do not know" (q1_correct missing) counts as not correct
    q1 = df[df["q1_answer"].notna() | df["q1_correct"].notna()]

    def accuracy_rows(groups: Iterable[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
        rows = []
        for key, part in groups:
            n = len(part)
            k = int((part["q1_correct"] == True).sum())  # noqa: E712 - nullable boolean
            unsure = int(part["q1_correct"].isna().sum())
            low, high = wilson_interval(k, n)
            rows.append(
                {
                    "group": str(key),
                    "n": n,
                    "correct": k,
                    "dont_know": unsure,
                    "accuracy": k / n if n else math.nan,
                    "ci_low": low,
                    "ci_high": high,
                    "accuracy_decided": k / (n - unsure) if n > unsure else math.nan,
                }
            )
        return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)

    accuracy_overall = accuracy_rows([("all", q1)])
    videos = sorted(q1["video_id"].dropna().unique(), key=str)
    accuracy_by_video = accuracy_rows((v, q1[q1["video_id"] == v]) for v in videos)
    fam = q1["familiarity"].map(lambda v: "unknown" if pd.isna(v) else v)
    accuracy_by_familiarity = accuracy_rows(
        (level, q1[fam == level]) for level in _order(fam.unique(), _FAMILIARITY_ORDER)
    )

    # tests on Q2
    tests: dict[str, dict[str, float | str]] = {}
    tests["chi2_gof"] = _goodness_of_fit(counts.to_numpy())
    video_table = (
        chosen.dropna(subset=["video_id"])
        .groupby(["video_id", "choice"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )
    video_table = video_table.reindex(sorted(video_table.index, key=str))
    video_table.index.name = "video_id"
    video_table.columns.name = "explainer"
    tests["chi2_independence"] = _independence(video_table.to_numpy())
    single = df.loc[df["q2_choice"].map(lambda v: len(split_choices(v)) == 1).astype(bool)]
    single = single.assign(choice=single["q2_choice"].map(lambda v: split_choices(v)[0]))
    kappa_table = (
        single.dropna(subset=["video_id"])
        .groupby(["video_id", "choice"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )
    kappa, method = fleiss_kappa_table(kappa_table.to_numpy())
    tests["fleiss_kappa"] = {
        "kappa": kappa,
        "subjects": float(int((kappa_table.sum(axis=1) >= 2).sum())),
        "method": method,
    }
    sign_tests = _sign_tests(chosen, names)
    correlations = _correlations(choices, metrics)

    result = Analysis(
        explainers=names,
        participants=people,
        completion_known=known,
        overview=overview,
        reached=reached,
        demographics=demographics,
        accuracy_overall=accuracy_overall,
        accuracy_by_video=accuracy_by_video,
        accuracy_by_familiarity=accuracy_by_familiarity,
        choices=choices,
        video_table=video_table,
        tests=tests,
        sign_tests=sign_tests,
        correlations=correlations,
        metrics=metrics,
        stats=pd.DataFrame(),
    )
    result.stats = stats_table(result)
    return result


def load_database(db: Any, study: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``(responses, participants)`` tables of ``study`` in a study database."""
    return db.responses_frame(study), db.participants_frame(study)


def analyze_database(db: Any, study: str | None = None, **options: Any) -> Analysis:
    """:func:`analyze` on a study database (what the results page and ``analyze --db``
    show); ``options`` are those of :func:`analyze`."""
    responses, participants = load_database(db, study)
    return analyze(responses, participants, **options)


def _goodness_of_fit(counts: np.ndarray) -> dict[str, float | str]:
    from scipy.stats import chisquare

    nan = {"statistic": math.nan, "df": math.nan, "p_value": math.nan}
    if len(counts) < 2 or counts.sum() == 0:
        return nan
    stat, p = chisquare(counts)
    return {"statistic": float(stat), "df": float(len(counts) - 1), "p_value": float(p)}


def _independence(table: np.ndarray) -> dict[str, float | str]:
    from scipy.stats import chi2_contingency

    nan = {"statistic": math.nan, "df": math.nan, "p_value": math.nan, "cramers_v": math.nan}
    if table.size == 0:
        return nan
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return nan
    res = chi2_contingency(table, correction=False)
    n = table.sum()
    v = math.sqrt(res.statistic / (n * (min(table.shape) - 1)))
    return {
        "statistic": float(res.statistic),
        "df": float(res.dof),
        "p_value": float(res.pvalue),
        "cramers_v": float(v),
    }


def _sign_tests(chosen: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    per_person = (
        chosen.groupby(["participant_id", "choice"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )
    totals = chosen["choice"].value_counts()
    rows = []
    for level in ("answer", "participant"):
        level_rows = []
        for a, b in combinations(names, 2):
            if level == "answer":
                n_a, n_b = int(totals.get(a, 0)), int(totals.get(b, 0))
            else:
                n_a = int((per_person[a] > per_person[b]).sum())
                n_b = int((per_person[b] > per_person[a]).sum())
            level_rows.append(
                {
                    "explainer_a": a,
                    "explainer_b": b,
                    "level": level,
                    "n_a": n_a,
                    "n_b": n_b,
                    "p_value": sign_test(n_a, n_b),
                }
            )
        adjusted = holm([r["p_value"] for r in level_rows])
        for r, p in zip(level_rows, adjusted, strict=True):
            r["p_holm"] = p
        rows.extend(level_rows)
    return pd.DataFrame(
        rows, columns=["explainer_a", "explainer_b", "level", "n_a", "n_b", "p_value", "p_holm"]
    )


def _correlations(choices: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    from scipy.stats import spearmanr

    by_key = {explainer_key(i): i for i in metrics.index}
    rows = []
    for metric in [m for m in METRIC_NAMES if m in metrics.columns]:
        pairs = [
            (float(r.share), float(metrics.loc[by_key[explainer_key(r.explainer)], metric]))
            for r in choices.itertuples()
            if explainer_key(r.explainer) in by_key
            and not math.isnan(float(r.share))
            and not math.isnan(float(metrics.loc[by_key[explainer_key(r.explainer)], metric]))
        ]
        rho = p = math.nan
        if len(pairs) >= 3:
            x, y = zip(*pairs, strict=True)
            if len(set(x)) > 1 and len(set(y)) > 1:
                res = spearmanr(x, y)
                rho, p = float(res.statistic), float(res.pvalue)
        rows.append({"metric": metric, "spearman_rho": rho, "p_value": p, "n": len(pairs)})
    return pd.DataFrame(rows, columns=["metric", "spearman_rho", "p_value", "n"])


def stats_table(result: Analysis) -> pd.DataFrame:
    """Every statistic as one long table ``group, statistic, key, value`` (stats.csv)."""
    rows: list[tuple[str, str, str, object]] = []
    for name, value in result.overview.items():
        rows.append(("participants", name, "", value))
    rows.append(("participants", "completion_known", "", float(result.completion_known)))
    for r in result.reached.itertuples():
        rows.append(("dropout", "reached", str(r.sections_answered), float(r.participants)))
    for r in result.demographics.itertuples():
        rows.append(("demographics", f"{r.variable}_count", r.level, float(r.count)))
        rows.append(("demographics", f"{r.variable}_share", r.level, r.share))
    for group, table in (
        ("q1_accuracy", result.accuracy_overall),
        ("q1_accuracy_by_video", result.accuracy_by_video),
        ("q1_accuracy_by_familiarity", result.accuracy_by_familiarity),
    ):
        for r in table.itertuples():
            for stat in ACCURACY_COLUMNS[1:]:
                rows.append((group, stat, r.group, float(getattr(r, stat))))
    for r in result.choices.itertuples():
        for stat in ("count", "share", "ci_low", "ci_high"):
            rows.append(("q2_choices", stat, r.explainer, float(getattr(r, stat))))
    for test, values in result.tests.items():
        for key, value in values.items():
            rows.append(("q2_tests", test, key, value if isinstance(value, str) else float(value)))
    for video, counts in result.video_table.iterrows():
        for name, c in counts.items():
            rows.append(("q2_by_video", str(name), str(video), float(c)))
    for r in result.sign_tests.itertuples():
        key = f"{r.explainer_a} vs {r.explainer_b}"
        for stat in ("n_a", "n_b", "p_value", "p_holm"):
            rows.append((f"sign_test_{r.level}", stat, key, float(getattr(r, stat))))
    for r in result.correlations.itertuples():
        for stat in ("spearman_rho", "p_value", "n"):
            rows.append(("preference_vs_metric", stat, r.metric, float(getattr(r, stat))))
    out = pd.DataFrame(rows, columns=["group", "statistic", "key", "value"])
    return out.astype("object")


def paper_responses(counts: dict[str, int] | None = None) -> pd.DataFrame:
    """A responses table with the given Q2 totals (default: the paper's), for checks.

    Answers are dealt round-robin over participants and 20 sections, so each explainer
    gets exactly its count; Q1 is correct in 85 % of the rows, as in the paper.
    """
    counts = dict(PAPER_COUNTS if counts is None else counts)
    choices = [name for name, c in counts.items() for _ in range(c)]
    rng = np.random.default_rng(0)
    rng.shuffle(choices)
    sections = 20
    rows = []
    for i, choice in enumerate(choices):
        pid, sec = divmod(i, sections)
        rows.append(
            {
                "participant_id": f"p{pid:03d}",
                "section": sec + 1,
                "video_id": f"video_{sec + 1:02d}",
                "q1_answer": "video1",
                "q1_correct": (i % 20) < 17,
                "q2_choice": choice,
                "screen": "large" if pid % 7 < 3 else "small",
                "familiarity": ("yes", "heard", "no")[pid % 3],
                "answered_at": f"2021-05-01T10:{pid % 60:02d}:{sec:02d}+00:00",
            }
        )
    return pd.DataFrame(rows, columns=list(RESPONSE_COLUMNS))


# --------------------------------------------------------------------------- plots

PLOT_NAMES = ("choice_shares", "accuracy_by_familiarity", "preference_by_video")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_choice_shares(result: Analysis):
    """Bar chart of Q2 choice shares per explainer with 95 % Wilson intervals."""
    fig = _figure(6, 3.6)
    ax = fig.add_subplot()
    c = result.choices
    if len(c) and c["count"].sum() > 0:
        x = np.arange(len(c))
        err = np.vstack([c["share"] - c["ci_low"], c["ci_high"] - c["share"]])
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
    ax.set_ylabel("share of Q2 choices")
    ax.set_title("Which animation best explains the detector?")
    ax.set_ylim(0, 1)
    return fig


def plot_accuracy_by_familiarity(result: Analysis):
    """Q1 accuracy per familiarity level (and overall) with 95 % Wilson intervals."""
    fig = _figure(6, 3.6)
    ax = fig.add_subplot()
    table = pd.concat([result.accuracy_by_familiarity, result.accuracy_overall], ignore_index=True)
    table = table[table["n"] > 0]
    if len(table):
        x = np.arange(len(table))
        err = np.vstack([table["accuracy"] - table["ci_low"], table["ci_high"] - table["accuracy"]])
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
    return {
        "choice_shares": plot_choice_shares(result),
        "accuracy_by_familiarity": plot_accuracy_by_familiarity(result),
        "preference_by_video": plot_preference_by_video(result),
    }


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
