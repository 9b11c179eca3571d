"""Simulated studies with known effects, and the power of the choice model's tests.

A simulated participant answers ``n_sections`` sections. In each, the ``K`` animations are
shown in a random order and the participant picks the one of highest utility

    u = explainer effect + participant's own taste + position effect + Gumbel noise,

so the choice probabilities follow the conditional logit exactly; the participant's taste
(normal, ``taste_sd`` per explainer, the same in all of their sections) makes a
participant's answers dependent, as they are in a real study. :func:`power` repeats
such studies and counts how often the choice model's clustered Wald tests reject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xai_study.errors import StudyError
from xai_study.study.analysis.model import clustered_covariance, conditional_logit, wald
from xai_study.study.schema import CHOICE_SEPARATOR, REQUIRED_RESPONSE_COLUMNS

POWER_COLUMNS = ("test", "power", "mc_se", "simulations")


def _check(
    n_participants: int,
    n_sections: int,
    explainer_effects: Mapping[str, float],
    position_effects: Sequence[float] | None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = [str(n) for n in explainer_effects]
    if len(names) < 2:
        raise StudyError("a simulated study needs at least 2 explainers")
    if n_participants < 2 or n_sections < 1:
        raise StudyError("a simulated study needs at least 2 participants and 1 section")
    effects = np.array([float(v) for v in explainer_effects.values()])
    pos = np.zeros(len(names)) if not position_effects else np.array(position_effects, float)
    if len(pos) != len(names):
        raise StudyError(
            f"{len(pos)} position effects for {len(names)} animations (give one per position, "
            "the first 0)"
        )
    if not (np.isfinite(effects).all() and np.isfinite(pos).all()):
        raise StudyError("effects must be finite numbers")
    return names, effects, pos - pos[0]


def _draw(
    rng: np.random.Generator,
    n_participants: int,
    n_sections: int,
    effects: np.ndarray,
    pos: np.ndarray,
    taste_sd: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Display orders (P, S, K: explainer index at each position) and the chosen
    position (P, S)."""
    k = len(effects)
    order = np.argsort(rng.random((n_participants, n_sections, k)), axis=2)
    taste = rng.normal(0.0, taste_sd, (n_participants, 1, k)) if taste_sd > 0 else 0.0
    util = np.broadcast_to(effects[None, None, :] + taste, (n_participants, n_sections, k))
    own = np.take_along_axis(util, order, axis=2)  # utility of the explainer at each position
    u = own + pos[None, None, :] + rng.gumbel(size=(n_participants, n_sections, k))
    return order, u.argmax(axis=2)


def simulate_responses(
    n_participants: int,
    n_sections: int,
    explainer_effects: Mapping[str, float],
    position_effects: Sequence[float] | None = None,
    *,
    taste_sd: float = 0.0,
    q1_accuracy: float = 0.85,
    seed: int | None = 0,
) -> pd.DataFrame:
    """A responses table (with ``q2_order``) of a simulated single-choice study.

    ``explainer_effects``: utility of each explainer (log odds relative to each other);
    ``position_effects``: utility of each display position A, B, ... (the first is the
    reference). Videos are the sections (``v01`` ...); Q1 is correct with probability
    ``q1_accuracy``; screen and familiarity are drawn uniformly.
    """
    names, effects, pos = _check(n_participants, n_sections, explainer_effects, position_effects)
    rng = np.random.default_rng(seed)
    order, pick = _draw(rng, n_participants, n_sections, effects, pos, taste_sd)
    correct = rng.random((n_participants, n_sections)) < q1_accuracy
    screens = rng.choice(["large", "small"], n_participants)
    fams = rng.choice(["yes", "heard of it", "no"], n_participants)
    rows = []
    for p in range(n_participants):
        for s in range(n_sections):
            shown = [names[j] for j in order[p, s]]
            rows.append(
                {
                    "participant_id": f"sim{p:04d}",
                    "section": f"s{s + 1:02d}",
                    "video_id": f"v{s + 1:02d}",
                    "q1_answer": "video1" if correct[p, s] else "video2",
                    "q1_correct": bool(correct[p, s]),
                    "q2_choice": shown[pick[p, s]],
                    "screen": screens[p],
                    "familiarity": fams[p],
                    "answered_at": "2026-01-01T00:00:00+00:00",
                    "q2_order": CHOICE_SEPARATOR.join(shown),
                }
            )
    return pd.DataFrame(rows, columns=[*REQUIRED_RESPONSE_COLUMNS, "q2_order"])


def _fit_arrays(order: np.ndarray, pick: np.ndarray):
    """The choice model (explainer and position terms) of a simulated study, from the
    arrays of :func:`_draw`: coefficients and their clustered covariance."""
    n_p, n_s, k = order.shape
    groups = n_p * n_s
    expl = order.reshape(groups, k)
    x = np.zeros((groups, k, 2 * (k - 1)))
    for j in range(1, k):
        x[:, :, j - 1] = expl == j
        x[:, j, k - 1 + j - 1] = 1.0
    chosen = np.zeros((groups, k), dtype=np.int64)
    chosen[np.arange(groups), pick.reshape(groups)] = 1
    group = np.repeat(np.arange(groups), k)
    fit = conditional_logit(x.reshape(groups * k, -1), chosen.reshape(-1), group)
    if not fit["converged"]:
        return None
    cluster = np.repeat(np.arange(n_p), n_s)
    try:
        cov, _ = clustered_covariance(fit["hessian"], fit["scores"], cluster)
    except np.linalg.LinAlgError:
        return None
    return fit["params"], cov


def power(
    n_participants: int,
    n_sections: int,
    explainer_effects: Mapping[str, float],
    position_effects: Sequence[float] | None = None,
    *,
    taste_sd: float = 0.0,
    simulations: int = 500,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Power of the choice model's tests for a study of ``n_participants`` x
    ``n_sections`` single-choice answers with the stated effects (see
    :func:`simulate_responses`), from ``simulations`` simulated studies.

    Rows (:data:`POWER_COLUMNS`): the joint clustered Wald tests ``explainers differ`` and
    ``position matters`` and the z-test of every term (``explainer:NAME`` relative to the
    first explainer, ``position:K`` relative to position 1), each with its Monte Carlo
    standard error. A simulated study whose model cannot be fitted (an explainer never
    chosen) counts as no rejection.
    """
    from scipy.stats import norm

    names, effects, pos = _check(n_participants, n_sections, explainer_effects, position_effects)
    if simulations < 1:
        raise StudyError("simulations must be at least 1")
    if not 0 < alpha < 1:
        raise StudyError("alpha must be between 0 and 1")
    rng = np.random.default_rng(seed)
    k = len(names)
    terms = [f"explainer:{n}" for n in names[1:]] + [f"position:{j}" for j in range(2, k + 1)]
    tests = ["explainers differ", "position matters", *terms]
    hits = np.zeros(len(tests))
    crit = norm.ppf(1 - alpha / 2)
    for _ in range(simulations):
        order, pick = _draw(rng, n_participants, n_sections, effects, pos, taste_sd)
        fitted = _fit_arrays(order, pick)
        if fitted is None:
            continue
        beta, cov = fitted
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        p_expl = wald(beta, cov, range(k - 1), n_participants)["p_value"]
        p_pos = wald(beta, cov, range(k - 1, 2 * (k - 1)), n_participants)["p_value"]
        hits[0] += p_expl < alpha
        hits[1] += p_pos < alpha
        hits[2:] += np.abs(beta / se) > crit
    share = hits / simulations
    return pd.DataFrame(
        {
            "test": tests,
            "power": share,
            "mc_se": np.sqrt(share * (1 - share) / simulations),
            "simulations": simulations,
        },
        columns=list(POWER_COLUMNS),
    )


def power_text(table: pd.DataFrame, alpha: float) -> str:
    """The power table as printed by ``xai-study power``."""
    width = max(len(t) for t in table["test"])
    lines = [f"{'test':<{width}}  power  (Monte Carlo SE; alpha={alpha:g})"]
    for r in table.itertuples():
        lines.append(f"{r.test:<{width}}  {r.power:5.1%}  (±{r.mc_se:.1%})")
    return "\n".join(lines)
