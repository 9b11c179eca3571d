"""The analysis result (:class:`Analysis`) and the function computing it,
:func:`analyze`, from a responses and (optionally) a participants table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xai_study.errors import StudyError
from xai_study.study.analysis import resampling, stats
from xai_study.study.analysis.cleaning import (
    FAMILIARITY_ORDER,
    SCREEN_ORDER,
    canonical_order,
    clean_text,
    order_explainers,
    order_levels,
    prepare_participants,
    prepare_responses,
    speeder_flags,
    split_choices,
)
from xai_study.study.analysis.metrics import METRIC_NAMES, PAPER_METRICS
from xai_study.study.analysis.model import (
    MODEL_COLUMNS,
    ChoiceModel,
    choice_sets,
    fit_choice_model,
)
from xai_study.study.analysis.moderators import accuracy_model

ACCURACY_COLUMNS = (
    "group",
    "n",
    "correct",
    "dont_know",
    "accuracy",
    "ci_low",
    "ci_high",
    "accuracy_decided",
    "boot_low",
    "boot_high",
)
MODERATORS = ("screen", "familiarity")
CHOICE_COLUMNS = ("explainer", "count", "share", "ci_low", "ci_high", "boot_low", "boot_high")


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
    model: ChoiceModel  # the conditional-logit choice model (the main Q2 analysis)
    accuracy_model: pd.DataFrame  # Q1 correct ~ familiarity + screen, GEE by participant
    #: the choice model with explainer x screen / x familiarity terms ("moderator" test)
    model_by: dict[str, ChoiceModel]
    metrics: pd.DataFrame = field(repr=False)
    stats: pd.DataFrame = field(repr=False)  # the long table written to stats.csv

    def report(self, study: str | None = None):
        """The summary as a :class:`~xai_study.study.analysis.report.Report` (titled with
        the study's name when given)."""
        from xai_study.study.analysis.report import build_report

        return build_report(self, study)


def _explainer_names(
    chosen: pd.DataFrame, shown: list[str], explainers: Sequence[str] | None
) -> list[str]:
    found = list(chosen["choice"].unique())
    if explainers is None:
        return order_explainers([*found, *shown])
    names = [str(e) for e in explainers]
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise StudyError(
            f"q2_choice names explainer {unknown[0]!r}, not one of " + ", ".join(names)
        )
    return names


def _choice_table(counts: pd.Series, answers: int) -> pd.DataFrame:
    """Count, share and Wilson interval per explainer, out of the ``answers`` Q2 answers
    (with multiple choice an answer naming two explainers counts once for each, so the
    shares add up to more than 1)."""
    total = int(answers)
    rows = []
    for name, c in counts.items():
        low, high = stats.wilson_interval(int(c), total)
        share = int(c) / total if total else math.nan
        rows.append(
            {"explainer": name, "count": int(c), "share": share, "ci_low": low, "ci_high": high}
        )
    return pd.DataFrame(rows, columns=list(CHOICE_COLUMNS))


def _overview(
    everyone: pd.DataFrame, people: pd.DataFrame, df: pd.DataFrame, masks: dict[str, pd.Series]
) -> dict[str, float]:
    n_people = len(people)
    completed = int((people["status"] == "completed").sum()) if n_people else 0
    # screened out (a failed attention check ended their survey): not a drop-out
    screened = int((people["status"] == "screened_out").sum()) if n_people else 0
    n_people_eligible = n_people - screened
    return {
        "participants_total": float(len(everyone)),
        "withdrawn": float(int(masks["withdrawn"].sum())),
        "failed_attention_check": float(int(masks["failed"].sum())),
        "speeders": float(int((masks["speeders"] & ~masks["withdrawn"]).sum())),
        "excluded": float(int(masks["dropped"].sum())),
        "participants": float(n_people),
        "completed": float(completed),
        "screened_out": float(screened),
        "dropped_out": float(n_people_eligible - completed),
        "completion_rate": completed / n_people_eligible if n_people_eligible else math.nan,
        "dropout_rate": (n_people_eligible - completed) / n_people_eligible
        if n_people_eligible
        else math.nan,
        "answers": float(len(df)),
        "answers_q2": float(int(df["q2_choice"].notna().sum())),
        "sections_per_participant": float(people["answered"].mean()) if n_people else math.nan,
    }


def _reached(people: pd.DataFrame) -> pd.DataFrame:
    """Participants who answered at least k sections, k = 0 .. the most answered."""
    most = int(people["answered"].max()) if len(people) else 0
    ks = list(range(0, most + 1))
    return pd.DataFrame(
        {
            "sections_answered": ks,
            "participants": [int((people["answered"] >= k).sum()) for k in ks],
        }
    )


def _demographics(people: pd.DataFrame) -> pd.DataFrame:
    n_people = len(people)
    rows = []
    for var, order in (("screen", SCREEN_ORDER), ("familiarity", FAMILIARITY_ORDER)):
        vc = people[var].map(lambda v: "unknown" if pd.isna(v) else v).value_counts()
        for level in order_levels(vc.index, order):
            count = int(vc[level])
            share = count / n_people if n_people else math.nan
            rows.append({"variable": var, "level": level, "count": count, "share": share})
    return pd.DataFrame(rows, columns=["variable", "level", "count", "share"])


def _accuracy_rows(groups: Iterable[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Q1 accuracy per group; "I do not know" (``q1_correct`` missing) is not correct."""
    rows = []
    for key, part in groups:
        n = len(part)
        k = int((part["q1_correct"] == True).sum())  # noqa: E712 - nullable boolean
        unsure = int(part["q1_correct"].isna().sum())
        low, high = stats.wilson_interval(k, n)
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
    return pd.DataFrame(rows, columns=list(ACCURACY_COLUMNS))


def choice_indicator(answered: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per Q2 answer (index of ``answered``), one 0/1 column per explainer in
    ``names``: 1 where the answer names it."""
    out = pd.DataFrame(0, index=answered.index, columns=names, dtype="int64")
    position = {n: j for j, n in enumerate(names)}
    values = out.to_numpy(copy=True)
    for i, value in enumerate(answered["q2_choice"]):
        for name in split_choices(value):
            values[i, position[name]] = 1
    out.loc[:, :] = values
    return out


def _by_video(rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Video x explainer counts of the ``choice`` column."""
    return (
        rows.dropna(subset=["video_id"])
        .groupby(["video_id", "choice"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )


def _kappa(df: pd.DataFrame, names: list[str], person: np.ndarray) -> dict[str, float | str]:
    """Fleiss' kappa over videos, single-choice answers only, with a participant-clustered
    (delete-one-participant jackknife) interval."""
    one = df["q2_choice"].map(lambda v: len(split_choices(v)) == 1).astype(bool)
    single = df.loc[one & df["video_id"].notna()]
    single = single.assign(choice=single["q2_choice"].map(lambda v: split_choices(v)[0]))
    table = _by_video(single, names)
    kappa, method = stats.fleiss_kappa_table(table.to_numpy())
    video_code = pd.Index(table.index).get_indexer(single["video_id"])
    category = pd.Index(names).get_indexer(single["choice"])
    low, high, se = resampling.jackknife_kappa(person[single.index], video_code, category)
    return {
        "kappa": kappa,
        "subjects": float(int((table.sum(axis=1) >= 2).sum())),
        "method": method,
        "se_jackknife": se,
        "ci_low": low,
        "ci_high": high,
    }


def _video_dependence(
    chosen: pd.DataFrame,
    video_table: pd.DataFrame,
    person: np.ndarray,
    df: pd.DataFrame,
    permutations: int,
    seed: int,
) -> dict[str, float | str]:
    """The chi-square of video x explainer (with its expected-count check) and the
    within-participant permutation p-value of the same statistic."""
    out = dict(stats.independence(video_table.to_numpy()))
    out.update(resampling.expected_counts_check(video_table.to_numpy()))
    has_video = df["video_id"].notna().to_numpy()
    rows = np.flatnonzero(has_video)
    video_code = pd.Index(video_table.index).get_indexer(df["video_id"].iloc[rows])
    local = np.full(len(df), -1)
    local[rows] = np.arange(len(rows))
    picked = chosen[chosen["video_id"].notna()]
    _, p_perm = resampling.permutation_video_test(
        person[rows],
        video_code,
        local[picked.index.to_numpy()],
        pd.Index(video_table.columns).get_indexer(picked["choice"]),
        len(video_table.index),
        len(video_table.columns),
        permutations,
        seed,
    )
    out["p_permutation"] = p_perm
    out["permutations"] = float(permutations)
    return out


def _per_person(codes: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(participants, columns) sums of ``values`` (rows: answers of participant ``codes``)."""
    out = np.zeros((weights.shape[1], values.shape[1]))
    np.add.at(out, codes, values)
    return out


def _boot_accuracy(
    table: pd.DataFrame,
    q1: pd.DataFrame,
    groups: pd.Series,
    person: np.ndarray,
    weights: np.ndarray,
) -> pd.DataFrame:
    """``table`` with ``boot_low`` / ``boot_high``: participant-clustered bootstrap
    intervals of each group's accuracy (``groups``: the group of each row of ``q1``)."""
    labels = [str(g) for g in table["group"]]
    codes = pd.Index(labels).get_indexer(groups.astype(str))
    ok = codes >= 0
    onehot = np.zeros((len(q1), len(labels)))
    onehot[np.flatnonzero(ok), codes[ok]] = 1.0
    correct = (q1["q1_correct"] == True).fillna(False).to_numpy(bool)  # noqa: E712
    who = person[q1.index]
    low, high = resampling.bootstrap_ratio(
        _per_person(who, onehot * correct[:, None], weights),
        _per_person(who, onehot, weights),
        weights,
    )
    out = table.copy()
    out["boot_low"], out["boot_high"] = low, high
    return out


def analyze(
    responses: pd.DataFrame,
    participants: pd.DataFrame | None = None,
    *,
    explainers: Sequence[str] | None = None,
    metrics: pd.DataFrame | None = None,
    exclude_failed_checks: bool = False,
    exclude_speeders: bool = False,
    animation_metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    resamples: int = 1000,
    permutations: int = 999,
    seed: int = 0,
) -> Analysis:
    """Compute every statistic of the study (see the package docstring).

    ``explainers`` fixes the set and order of explainers (so that an explainer nobody
    chose still counts in the goodness-of-fit test); by default the names found in
    ``q2_choice`` and, when the table has it, ``q2_order`` (the animations shown), the
    paper's explainers first in the paper's order. ``metrics`` is a table indexed by
    explainer with columns among ``V, tau, rho, mu`` (default: the paper's table,
    :data:`~xai_study.study.analysis.metrics.PAPER_METRICS`).

    Participants whose status is ``withdrawn`` are left out of every statistic (their
    number is reported); with ``exclude_failed_checks`` so are those who failed an
    attention check (needs ``checks_passed`` / ``checks_total`` in ``participants``);
    with ``exclude_speeders`` so are the speeders (the ``speeder`` column of
    ``participants``, else the rule of :mod:`xai_study.study.speeders` on the answer
    times).

    ``animation_metrics`` (``{section: {explainer: {metric: value}}}``, from
    :func:`~xai_study.study.analysis.model.animation_metrics` of the study) adds the
    metrics of the animations each participant saw to the choice model.

    ``resamples`` participant-clustered bootstrap replicates give the ``boot_low`` /
    ``boot_high`` intervals of choice shares, Q1 accuracy and Fleiss' kappa;
    ``permutations`` within-participant shuffles of the videos give the permutation
    p-value of video dependence; both are seeded with ``seed`` (the same numbers on
    every run).
    """
    shown: list[str] = []
    if "q2_order" in responses.columns:
        for value in clean_text(responses["q2_order"]).dropna():
            shown.extend(split_choices(value))
    df = prepare_responses(responses)
    everyone, known = prepare_participants(participants, df)
    if participants is None or "speeder" not in participants.columns:
        # an imported table without the flag: the rule on the raw answer times
        everyone["speeder"] = speeder_flags(responses, everyone)
    metrics = PAPER_METRICS if metrics is None else metrics
    withdrawn = everyone["status"] == "withdrawn"
    failed = everyone["checks_total"].fillna(0) > everyone["checks_passed"].fillna(0)
    speeder = everyone["speeder"].astype(bool)
    dropped = (
        withdrawn
        | (failed if exclude_failed_checks else False)
        | (speeder if exclude_speeders else False)
    )
    people = everyone[~dropped].reset_index(drop=True)
    df = df[df["participant_id"].isin(set(people["participant_id"]))].reset_index(drop=True)
    df = canonical_order(df)  # participants by their answers, not their random ids
    person, _ = pd.factorize(df["participant_id"])
    weights = resampling.bootstrap_weights(int(person.max()) + 1 if len(df) else 0, resamples, seed)

    # Q2 choices, one row per chosen explainer
    chosen = df.assign(choice=df["q2_choice"].map(split_choices)).explode("choice")
    chosen = chosen.dropna(subset=["choice"])
    names = _explainer_names(chosen, shown, explainers)
    counts = chosen["choice"].value_counts().reindex(names, fill_value=0).astype("int64")
    answered = df[df["q2_choice"].map(lambda v: len(split_choices(v)) > 0).astype(bool)]
    indicator = choice_indicator(answered, names)
    choices = _choice_table(counts, len(answered))
    low, high = resampling.bootstrap_ratio(
        _per_person(person[answered.index], indicator.to_numpy(), weights),
        _per_person(person[answered.index], np.ones((len(answered), len(names))), weights),
        weights,
    )
    choices["boot_low"], choices["boot_high"] = low, high

    long = choice_sets(df, names, animation_metrics)  # the choice model's data

    # Q1 accuracy
    q1 = df[df["q1_answer"].notna() | df["q1_correct"].notna()]
    videos = sorted(q1["video_id"].dropna().unique(), key=str)
    fam = q1["familiarity"].map(lambda v: "unknown" if pd.isna(v) else v)
    levels = order_levels(fam.unique(), FAMILIARITY_ORDER)

    video_table = _by_video(chosen, names)
    video_table = video_table.reindex(sorted(video_table.index, key=str))
    video_table.index.name = "video_id"
    video_table.columns.name = "explainer"
    masks = {"withdrawn": withdrawn, "failed": failed, "speeders": speeder, "dropped": dropped}
    result = Analysis(
        explainers=names,
        participants=people,
        completion_known=known,
        overview=_overview(everyone, people, df, masks),
        reached=_reached(people),
        demographics=_demographics(people),
        accuracy_overall=_boot_accuracy(
            _accuracy_rows([("all", q1)]), q1, pd.Series("all", index=q1.index), person, weights
        ),
        accuracy_by_video=_boot_accuracy(
            _accuracy_rows((v, q1[q1["video_id"] == v]) for v in videos),
            q1,
            q1["video_id"],
            person,
            weights,
        ),
        accuracy_by_familiarity=_boot_accuracy(
            _accuracy_rows((lv, q1[fam == lv]) for lv in levels), q1, fam, person, weights
        ),
        choices=choices,
        video_table=video_table,
        tests={
            "chi2_gof": stats.goodness_of_fit(indicator.to_numpy()),
            "chi2_independence": _video_dependence(
                chosen, video_table, person, df, permutations, seed
            ),
            "fleiss_kappa": _kappa(df, names, person),
        },
        sign_tests=stats.pairwise_sign_tests(indicator, answered["participant_id"], names),
        correlations=stats.metric_correlations(choices, metrics, METRIC_NAMES),
        model=fit_choice_model(long, names),
        model_by={by: fit_choice_model(long, names, by=by) for by in MODERATORS},
        accuracy_model=accuracy_model(q1, person),
        metrics=metrics,
        stats=pd.DataFrame(),
    )
    result.stats = stats_table(result)
    return result


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
        for stat in CHOICE_COLUMNS[1:]:
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
    model = result.model
    rows.append(("choice_model", "answers", "", float(model.answers)))
    rows.append(("choice_model", "participants", "", float(model.participants)))
    for r in model.table.itertuples():
        for stat in MODEL_COLUMNS[1:]:
            rows.append(("choice_model", stat, r.term, float(getattr(r, stat))))
    for i, term in enumerate(model.table["term"]):
        se = float(model.se_model[i]) if i < len(model.se_model) else math.nan
        rows.append(("choice_model", "se_unclustered", term, se))
    for by, moderated in result.model_by.items():
        for r in moderated.table.itertuples():
            for stat in MODEL_COLUMNS[1:]:
                rows.append((f"choice_model_by_{by}", stat, r.term, float(getattr(r, stat))))
        for key, value in moderated.joint.get("moderator", {}).items():
            rows.append((f"choice_model_by_{by}_wald", "moderator", key, float(value)))
    for r in result.accuracy_model.itertuples():
        for stat in MODEL_COLUMNS[1:]:
            rows.append(("q1_accuracy_model", stat, r.term, float(getattr(r, stat))))
    for kind, values in model.joint.items():
        for key, value in values.items():
            rows.append(("choice_model_wald", kind, key, float(value)))
    out = pd.DataFrame(rows, columns=["group", "statistic", "key", "value"])
    return out.astype("object")


def load_database(db: Any, study: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``(responses, participants)`` tables of ``study`` in a study database."""
    return db.responses_frame(study), db.participants_frame(study)


def analyze_database(db: Any, study: str | None = None, **options: Any) -> Analysis:
    """:func:`analyze` on a study database (what the results page and ``analyze --db``
    show); ``options`` are those of :func:`analyze`."""
    responses, participants = load_database(db, study)
    return analyze(responses, participants, **options)
