"""The choice model: McFadden's conditional logit of the Q2 answers, with standard errors
clustered by participant.

Every Q2 answer is one choice set (a *group*): the animations shown in that section are
the alternatives, in the order of ``q2_order`` (position 1 = animation A), and the chosen
one(s) are the outcome. The utility of an alternative is

    explainer effect (relative to the first explainer of the analysis order)
    + display-position effect (relative to position A)
    + the shown animation's own metrics (V, tau, rho, mu, I; per standard deviation)

and P(chosen set = S) = exp(sum_{j in S} u_j) / sum_{|T| = |S|} exp(sum_{j in T} u_j), the
conditional likelihood of a group with |S| choices (one for single choice; a
multiple-choice answer naming two of four animations is compared with the six pairs).
This is the likelihood of ``statsmodels.discrete.conditional_models.ConditionalLogit``,
fitted here by Newton's method on arrays (fast for tens of thousands of answers; a test
checks coefficients and model-based standard errors against statsmodels).

Participants answer up to 20 sections each, so answers are not independent: the
covariance is the cluster-robust sandwich ``B M B`` with ``B`` the inverse of the
information and ``M = G/(G-1) sum_c s_c s_c'``, ``s_c`` the summed score contributions of
participant ``c``'s answers (G participants). Intervals and p-values of single terms
are normal (Wald z); the joint tests compare W/q with F(q, G - 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from xai_study.errors import StudyError
from xai_study.study.analysis.cleaning import clean_text, explainer_id, split_choices

MODEL_COLUMNS = ("term", "coef", "se", "z", "p_value", "ci_low", "ci_high", "odds_ratio")
#: Metrics of the shown animations the model can use (``I`` when the study has it).
MODEL_METRICS = ("V", "tau", "rho", "mu", "I")
_Z95 = 1.959963984540054


@dataclass
class ChoiceModel:
    """A fitted choice model: the coefficient table and its joint tests."""

    table: pd.DataFrame  # MODEL_COLUMNS, one row per term
    answers: int  # Q2 answers (choice sets) that carry information
    participants: int  # clusters
    joint: dict[str, dict[str, float]]  # explainer / position / metric: statistic, df, p_value
    notes: list[str] = field(default_factory=list)
    converged: bool = True
    se_model: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    log_likelihood: float = math.nan

    @property
    def fitted(self) -> bool:
        return bool(len(self.table)) and self.converged


def empty_model(note: str) -> ChoiceModel:
    nan = {"statistic": math.nan, "df": math.nan, "p_value": math.nan}
    return ChoiceModel(
        table=pd.DataFrame(columns=list(MODEL_COLUMNS)),
        answers=0,
        participants=0,
        joint={"explainer": dict(nan), "position": dict(nan), "metric": dict(nan)},
        notes=[note],
        converged=False,
    )


# --------------------------------------------------------------------------- data


def animation_metrics(study: Any) -> dict[str, dict[str, dict[str, float]]]:
    """``{section id: {explainer id: {metric: value}}}`` from a study's ``meta.metrics``
    (what ``build-study`` writes per section); empty when the study has none (or is not
    a :class:`~xai_study.study.spec.StudySpec`)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sec in getattr(study, "sections", None) or []:
        per = (getattr(sec, "meta", None) or {}).get("metrics") or {}
        if not isinstance(per, Mapping):
            continue
        values = {}
        for name, metrics in per.items():
            if isinstance(metrics, Mapping):
                values[explainer_id(name)] = {
                    str(k): _number(v) for k, v in metrics.items() if str(k) in MODEL_METRICS
                }
        if values:
            out[str(sec.id)] = values
    return out


def _number(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out


def choice_sets(
    responses: pd.DataFrame,
    names: Sequence[str],
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> pd.DataFrame:
    """The Q2 answers in long form: one row per answer x animation shown, columns
    ``answer`` (0..), ``participant_id``, ``section``, ``video_id``, ``screen``,
    ``familiarity`` (``unknown`` when missing), ``explainer``,
    ``position`` (1 = A; NA without ``q2_order``), ``chosen`` (0/1) and the metric columns
    found in ``metrics`` (``{section: {explainer id: {metric: value}}}``).

    ``responses`` is a prepared responses table (one row per participant x section);
    answers without a Q2 choice are skipped. Without ``q2_order`` the alternatives are
    ``names``. An answer naming an explainer that was not shown is a :class:`StudyError`.
    """
    has_order = "q2_order" in responses.columns
    orders = clean_text(responses["q2_order"]) if has_order else None
    metric_names = _metric_names(metrics)
    by_section = {
        str(sec): {explainer_id(name): values for name, values in per.items()}
        for sec, per in (metrics or {}).items()
    }
    rows: list[tuple] = []
    answer = 0
    for i, r in enumerate(responses.itertuples(index=False)):
        picked = split_choices(r.q2_choice)
        if not picked:
            continue
        order = split_choices(orders.iloc[i]) if orders is not None else []
        alternatives = order or list(names)
        missing = [p for p in picked if p not in alternatives]
        if missing:
            raise StudyError(
                f"participant {r.participant_id}, section {r.section}: chose {missing[0]!r}, "
                "which is not in the animations shown (q2_order)"
            )
        section_metrics = by_section.get(str(r.section), {})
        for pos, name in enumerate(alternatives, 1):
            values = section_metrics.get(explainer_id(name), {})
            rows.append(
                (
                    answer,
                    r.participant_id,
                    r.section,
                    r.video_id,
                    "unknown" if _missing(r.screen) else str(r.screen),
                    "unknown" if _missing(r.familiarity) else str(r.familiarity),
                    name,
                    pos if order else pd.NA,
                    int(name in picked),
                    *[values.get(m, math.nan) for m in metric_names],
                )
            )
        answer += 1
    columns = [
        "answer",
        "participant_id",
        "section",
        "video_id",
        "screen",
        "familiarity",
        "explainer",
        "position",
        "chosen",
        *metric_names,
    ]
    out = pd.DataFrame(rows, columns=columns)
    out["position"] = out["position"].astype("Int64")
    return out


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _metric_names(metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None) -> list[str]:
    found = {m for per in (metrics or {}).values() for v in per.values() for m in v}
    return [m for m in MODEL_METRICS if m in found]


# --------------------------------------------------------------------------- fitting


@dataclass
class _Pattern:
    """Groups with the same number of alternatives and of choices, as arrays."""

    rows: np.ndarray  # (G, K) row indices into the long table
    chosen: np.ndarray  # (G, K) 0/1
    subsets: np.ndarray  # (S, k) alternative indices of every possible chosen set
    groups: np.ndarray  # (G,) group numbers


def _patterns(group: np.ndarray, chosen: np.ndarray) -> list[_Pattern]:
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(group)])
    picks = np.add.reduceat(chosen, starts) if len(starts) else np.zeros(0, int)
    out = []
    for size, k in sorted(set(zip(sizes.tolist(), picks.tolist(), strict=True))):
        if k == 0 or k == size:  # nothing chosen, or everything: no information
            continue
        if math.comb(size, k) > 20000:
            raise StudyError(f"choice sets of {size} animations with {k} choices are too many")
        sel = np.flatnonzero((sizes == size) & (picks == k))
        rows = starts[sel][:, None] + np.arange(size)[None, :]
        subsets = np.array(list(combinations(range(size), k)), dtype=np.int64)
        out.append(_Pattern(rows, chosen[rows], subsets, sel))
    return out


def _evaluate(x: np.ndarray, patterns: list[_Pattern], beta: np.ndarray, n_groups: int):
    """Log-likelihood, per-group scores (n_groups x p) and the Hessian at ``beta``."""
    p = x.shape[1]
    ll = 0.0
    scores = np.zeros((n_groups, p))
    hess = np.zeros((p, p))
    for pat in patterns:
        xg = x[pat.rows]  # G, K, p
        xs = xg[:, pat.subsets, :].sum(axis=2)  # G, S, p
        xc = (xg * pat.chosen[:, :, None]).sum(axis=1)  # G, p
        eta = xs @ beta  # G, S
        top = eta.max(axis=1, keepdims=True)
        w = np.exp(eta - top)
        total = w.sum(axis=1, keepdims=True)
        prob = w / total
        ll += float((xc @ beta - (top[:, 0] + np.log(total[:, 0]))).sum())
        mean = np.einsum("gs,gsp->gp", prob, xs)
        scores[pat.groups] = xc - mean
        centred = xs - mean[:, None, :]
        hess -= np.einsum("gs,gsp,gsq->pq", prob, centred, centred)
    return ll, scores, hess


def conditional_logit(
    x: np.ndarray, chosen: np.ndarray, group: np.ndarray, *, max_iter: int = 100
) -> dict[str, Any]:
    """Fit a conditional logit by Newton's method with step halving.

    ``x``: (rows, p) alternative attributes; ``chosen``: 0/1 per row; ``group``: the
    choice set of each row, rows of a group contiguous. Returns ``params``, ``hessian``,
    ``scores`` (per group, in order of first appearance), ``log_likelihood``,
    ``converged`` and ``used`` (groups that carry information).
    """
    x = np.asarray(x, dtype=float)
    chosen = np.asarray(chosen, dtype=np.int64)
    group = np.asarray(group)
    codes = np.r_[0, np.cumsum(group[1:] != group[:-1])] if len(group) else np.zeros(0, int)
    n_groups = int(codes[-1]) + 1 if len(codes) else 0
    patterns = _patterns(codes, chosen)
    beta = np.zeros(x.shape[1])
    ll, scores, hess = _evaluate(x, patterns, beta, n_groups)
    converged = False
    for _ in range(max_iter):
        grad = scores.sum(axis=0)
        try:
            step = np.linalg.solve(-hess, grad)
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while True:
            trial = beta + t * step
            ll_new, s_new, h_new = _evaluate(x, patterns, trial, n_groups)
            if ll_new >= ll - 1e-12 or t < 1e-8:
                break
            t /= 2
        beta, ll_old, ll, scores, hess = trial, ll, ll_new, s_new, h_new
        if np.max(np.abs(t * step)) < 1e-9 or abs(ll - ll_old) < 1e-13:
            converged = True
            break
    used = np.zeros(n_groups, dtype=bool)
    for pat in patterns:
        used[pat.groups] = True
    return {
        "params": beta,
        "hessian": hess,
        "scores": scores,
        "log_likelihood": ll,
        "converged": converged,
        "used": used,
        "codes": codes,
    }


def clustered_covariance(hessian: np.ndarray, scores: np.ndarray, cluster: np.ndarray):
    """Cluster-robust sandwich ``B M B``: ``B = (-H)^-1``, ``M = G/(G-1) sum_c s_c s_c'``
    with ``s_c`` the summed score contributions (rows of ``scores``) of cluster ``c``."""
    bread = np.linalg.inv(-hessian)
    codes, _ = pd.factorize(np.asarray(cluster))  # in order of appearance, not of the ids
    g = int(codes.max()) + 1 if len(codes) else 0
    summed = np.zeros((g, scores.shape[1]))
    np.add.at(summed, codes, scores)
    meat = summed.T @ summed * (g / (g - 1) if g > 1 else math.nan)
    return bread @ meat @ bread, bread


def wald(
    params: np.ndarray, cov: np.ndarray, index: Sequence[int], clusters: int | None = None
) -> dict[str, float]:
    """Joint Wald test that the coefficients ``index`` are all zero.

    ``statistic`` is the Wald chi-square W with ``df`` = q terms. With ``clusters`` = G
    the p-value is that of W/q against F(q, G - 1), the usual small-sample reference for
    a cluster-robust covariance (chi-square(q) rejects too often with few participants:
    about 9 % instead of 5 % at 40 participants in our simulations); without it,
    chi-square(q).
    """
    from scipy.stats import chi2, f

    index = list(index)
    if not index:
        return {"statistic": math.nan, "df": math.nan, "p_value": math.nan}
    b = params[index]
    v = cov[np.ix_(index, index)]
    try:
        stat = float(b @ np.linalg.solve(v, b))
    except np.linalg.LinAlgError:
        return {"statistic": math.nan, "df": float(len(index)), "p_value": math.nan}
    q = len(index)
    if clusters is not None and clusters > 1:
        p = float(f.sf(stat / q, q, clusters - 1))
    else:
        p = float(chi2.sf(stat, q))
    return {"statistic": stat, "df": float(q), "p_value": p}


def _design(
    long: pd.DataFrame,
    names: Sequence[str],
    metric_names: Sequence[str],
    by: str | None = None,
):
    """Columns of the design matrix: (term, kind, values), dropping terms the data cannot
    identify (with a note). With ``by`` (``screen`` or ``familiarity``), every explainer
    term also gets an interaction with each non-reference level of ``by``."""
    notes: list[str] = []
    terms: list[tuple[str, str, np.ndarray]] = []
    shown = set(long["explainer"])
    chosen_names = set(long.loc[long["chosen"] == 1, "explainer"])
    present = [n for n in names if n in shown]
    for n in present[1:]:
        if n not in chosen_names:
            notes.append(f"explainer:{n} left out (never chosen: its effect is -infinity)")
            continue
        terms.append((f"explainer:{n}", "explainer", (long["explainer"] == n).to_numpy(float)))
    if long["position"].notna().all() and len(long):
        pos = long["position"].to_numpy(int)
        for k in range(2, int(pos.max()) + 1):
            if not ((pos == k) & (long["chosen"].to_numpy() == 1)).any():
                notes.append(f"position:{k} left out (never chosen)")
                continue
            terms.append((f"position:{k}", "position", (pos == k).astype(float)))
    elif len(long):
        notes.append("no position terms: q2_order (the display order) is missing")
    for m in metric_names:
        values = long[m].to_numpy(float)
        if np.isnan(values).any():
            notes.append(f"metric:{m} left out (missing for some animations shown)")
            continue
        sd = float(values.std())
        if not sd > 0:
            notes.append(f"metric:{m} left out (the same for every animation)")
            continue
        terms.append((f"metric:{m}", "metric", (values - values.mean()) / sd))
    if by is not None and len(long):
        from xai_study.study.analysis.cleaning import FAMILIARITY_ORDER, SCREEN_ORDER, order_levels

        order = SCREEN_ORDER if by == "screen" else FAMILIARITY_ORDER
        levels = order_levels(pd.unique(long[by]), order)
        base = [t for t in terms if t[1] == "explainer"]
        for level in levels[1:]:
            at = (long[by] == level).to_numpy(float)
            for term, _, values in base:
                terms.append((f"{term}*{by}:{level}", "moderator", values * at))
    # drop terms that do not vary within choice sets beyond the others (collinear):
    # greedy rank of the Gram matrix of the within-group demeaned columns
    group = long["answer"].to_numpy()
    kept: list[tuple[str, str, np.ndarray]] = []
    if terms:
        x = np.column_stack([t[2] for t in terms])
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        sizes = np.diff(np.r_[starts, len(group)])
        means = np.add.reduceat(x, starts, axis=0) / sizes[:, None]
        demeaned = x - np.repeat(means, sizes, axis=0)
        gram = demeaned.T @ demeaned
        scale = max(float(np.trace(gram)), 1e-300)
        index: list[int] = []
        for j, term in enumerate(terms):
            trial = [*index, j]
            sub = gram[np.ix_(trial, trial)]
            if np.linalg.eigvalsh(sub).min() > 1e-10 * scale:
                index.append(j)
                kept.append(term)
            else:
                notes.append(f"{term[0]} left out (collinear with the other terms)")
    return kept, notes


def coefficient_table(names, beta, se, alpha: float = 0.05) -> pd.DataFrame:
    """One row per term (:data:`MODEL_COLUMNS`): coefficient, SE, Wald z and p, the
    ``1 - alpha`` interval and the odds ratio (shared by the choice and accuracy models)."""
    from scipy.stats import norm

    beta, se = np.asarray(beta, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    q = float(norm.ppf(1 - alpha / 2))
    with np.errstate(over="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "term": list(names),
                "coef": beta,
                "se": se,
                "z": z,
                "p_value": 2 * norm.sf(np.abs(z)),
                "ci_low": beta - q * se,
                "ci_high": beta + q * se,
                "odds_ratio": np.exp(beta),
            },
            columns=list(MODEL_COLUMNS),
        )


def fit_choice_model(
    long: pd.DataFrame,
    names: Sequence[str],
    *,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    by: str | None = None,
) -> ChoiceModel:
    """Fit the conditional logit to :func:`choice_sets` output (see the module docstring).

    ``names`` is the analysis order: the first explainer shown is the reference.
    ``metrics`` names the metric columns of ``long`` to use (default: all found).
    Terms the data cannot identify are left out with a note; a model that cannot be
    fitted at all has an empty table and says why in ``notes``. ``by`` (``screen`` or
    ``familiarity``) adds explainer x level interactions (terms
    ``explainer:NAME*screen:small``) and their joint test ``moderator``: does the
    preference differ between the levels?
    """

    if long.empty:
        return empty_model("no Q2 answers")
    metric_names = [m for m in (MODEL_METRICS if metrics is None else metrics) if m in long]
    terms, notes = _design(long, names, metric_names, by)
    if not terms:
        model = empty_model("no estimable terms")
        model.notes = [*notes, "no estimable terms"]
        return model
    x = np.column_stack([t[2] for t in terms])
    fit = conditional_logit(x, long["chosen"].to_numpy(), long["answer"].to_numpy())
    used = fit["used"]
    first = long.drop_duplicates("answer")
    cluster = first["participant_id"].to_numpy()[used]
    scores = fit["scores"][used]
    n_clusters = len(set(cluster))
    if not fit["converged"] or n_clusters < 2:
        model = empty_model(
            "the choice model did not converge" if n_clusters >= 2 else "fewer than 2 participants"
        )
        model.notes = [*notes, *model.notes]
        return model
    try:
        cov, bread = clustered_covariance(fit["hessian"], scores, cluster)
    except np.linalg.LinAlgError:
        model = empty_model("the choice model's information matrix is singular")
        model.notes = [*notes, *model.notes]
        return model
    beta = fit["params"]
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    table = coefficient_table([t[0] for t in terms], beta, se, alpha)
    kinds = [t[1] for t in terms]
    joint = {
        kind: wald(beta, cov, [i for i, k in enumerate(kinds) if k == kind], n_clusters)
        for kind in ("explainer", "position", "metric", *(["moderator"] if by else []))
    }
    return ChoiceModel(
        table=table,
        answers=int(used.sum()),
        participants=n_clusters,
        joint=joint,
        notes=notes,
        converged=True,
        se_model=np.sqrt(np.clip(np.diag(bread), 0, None)),
        covariance=cov,
        log_likelihood=float(fit["log_likelihood"]),
    )


def choice_model(
    responses: pd.DataFrame,
    names: Sequence[str],
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    alpha: float = 0.05,
) -> ChoiceModel:
    """:func:`fit_choice_model` on a prepared responses table (see :func:`choice_sets`)."""
    long = choice_sets(responses, names, metrics)
    return fit_choice_model(long, names, alpha=alpha)
