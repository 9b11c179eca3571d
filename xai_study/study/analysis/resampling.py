"""Resampling that respects the study's clustering: a participant gives many answers.

- :func:`bootstrap_ratio`: participant-clustered bootstrap percentile intervals of ratios
  such as choice shares and Q1 accuracy (whole participants are resampled with
  replacement, all of their answers with them);
- :func:`jackknife_kappa`: a delete-one-participant jackknife interval of Fleiss' kappa
  over videos (a participant bootstrap would let a participant agree with their copy);
- :func:`permutation_video_test`: a within-participant permutation test of "does the
  preference depend on the video?": each participant's videos are shuffled among their
  own answers, which keeps every participant's choices (their taste) and the number of
  answers per video, and breaks only the link between video and choice.

Everything is seeded (``seed``), so the results page and ``analyze`` give the same numbers.
Participants are indexed in the order of :func:`~.cleaning.canonical_order` (by their
answers, not their random ids).
"""

from __future__ import annotations

import math

import numpy as np

_CHUNK = 64  # replicates per vectorised block (memory: chunk x answers)


def bootstrap_weights(n_participants: int, resamples: int, seed: int | None) -> np.ndarray:
    """(resamples, n_participants) counts: how often each participant is drawn."""
    rng = np.random.default_rng(seed)
    if n_participants == 0 or resamples <= 0:
        return np.zeros((max(resamples, 0), n_participants))
    p = np.full(n_participants, 1.0 / n_participants)
    return rng.multinomial(n_participants, p, size=resamples).astype(float)


def bootstrap_ratio(
    numerator: np.ndarray, denominator: np.ndarray, weights: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of ``sum numerator / sum denominator`` per column.

    ``numerator``, ``denominator``: (participants, columns) per-participant totals
    (e.g. answers naming an explainer, and answers); ``weights`` from
    :func:`bootstrap_weights`. Replicates whose denominator is 0 are skipped; a column
    with no usable replicate gives NaN.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    cols = num.shape[1] if num.ndim == 2 else 0
    if weights.size == 0 or num.size == 0:
        return np.full(cols, math.nan), np.full(cols, math.nan)
    top, bottom = weights @ num, weights @ den
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bottom > 0, top / bottom, np.nan)
    low = np.full(cols, math.nan)
    high = np.full(cols, math.nan)
    for j in range(cols):
        values = ratio[:, j][~np.isnan(ratio[:, j])]
        if len(values):
            low[j], high[j] = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return low, high


def kappa_of_tables(tables: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of each (videos x categories) table in ``tables`` (..., V, K),
    varying numbers of ratings allowed (subjects with fewer than 2 are left out); the
    same formula as :func:`~.stats.fleiss_kappa_table`."""
    t = np.asarray(tables, dtype=float)
    n_i = t.sum(axis=-1)
    keep = n_i >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        p_i = np.where(keep, ((t**2).sum(axis=-1) - n_i) / (n_i * (n_i - 1)), 0.0)
        p_bar = p_i.sum(axis=-1) / keep.sum(axis=-1)
        kept = t * keep[..., None]
        p_j = kept.sum(axis=-2) / kept.sum(axis=(-2, -1))[..., None]
        p_e = (p_j**2).sum(axis=-1)
        return np.where(p_e < 1, (p_bar - p_e) / (1 - p_e), np.nan)


def jackknife_kappa(
    participant: np.ndarray, video: np.ndarray, category: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Participant-clustered interval of Fleiss' kappa of single-choice answers
    (``participant``, ``video``, ``category``: integer codes per answer): the
    delete-one-participant jackknife standard error and a normal interval.

    A bootstrap over participants does not work for kappa: a participant drawn twice
    agrees perfectly with their own copy, which inflates the agreement (on the paper's
    counts the bootstrap interval does not even contain the estimate). Leaving one
    participant out at a time keeps the raters distinct. Returns (low, high, se).
    """
    from scipy.stats import norm

    nan = (math.nan, math.nan, math.nan)
    if len(video) == 0:
        return nan
    codes, _ = np.unique(participant, return_inverse=True)
    n_p = len(codes)
    if n_p < 3:
        return nan
    n_v, n_k = int(video.max()) + 1, int(category.max()) + 1
    full = np.zeros((n_v, n_k))
    np.add.at(full, (video, category), 1.0)
    own = np.zeros((n_p, n_v, n_k))
    np.add.at(own, (np.unique(participant, return_inverse=True)[1], video, category), 1.0)
    kappas = kappa_of_tables(full[None] - own)
    kappas = kappas[~np.isnan(kappas)]
    m = len(kappas)
    if m < 3:
        return nan
    se = math.sqrt((m - 1) / m * float(((kappas - kappas.mean()) ** 2).sum()))
    centre = float(kappa_of_tables(full))
    q = float(norm.ppf(1 - alpha / 2))
    return (centre - q * se, centre + q * se, se)


def chi_square_statistic(table: np.ndarray) -> float:
    """Pearson's chi-square of independence of a table, empty rows and columns dropped
    (NaN below 2 x 2)."""
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return math.nan
    expected = t.sum(axis=1, keepdims=True) * t.sum(axis=0, keepdims=True) / t.sum()
    return float(((t - expected) ** 2 / expected).sum())


def expected_counts_check(table: np.ndarray) -> dict[str, float]:
    """Cochran's rule for the chi-square approximation: no expected count below 1 and at
    most 20 % below 5. Returns ``min_expected``, ``share_expected_below_5`` and
    ``expected_ok`` (1 or 0)."""
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0] if t.size else t
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 2:
        return {"min_expected": math.nan, "share_expected_below_5": math.nan, "expected_ok": 0.0}
    expected = t.sum(axis=1, keepdims=True) * t.sum(axis=0, keepdims=True) / t.sum()
    low = float((expected < 5).mean())
    ok = float(expected.min() >= 1 and low <= 0.2)
    return {"min_expected": float(expected.min()), "share_expected_below_5": low, "expected_ok": ok}


def permutation_video_test(
    participant: np.ndarray,
    video: np.ndarray,
    choice_answer: np.ndarray,
    choice_category: np.ndarray,
    n_videos: int,
    n_categories: int,
    permutations: int,
    seed: int | None,
) -> tuple[float, float]:
    """Within-participant permutation test of video x explainer independence.

    ``participant``, ``video``: integer codes per answer, answers of a participant
    contiguous; ``choice_answer``, ``choice_category``: one entry per chosen explainer
    (the answer it belongs to, the explainer code). The statistic is the chi-square of
    the video x explainer table of choices. Returns ``(statistic, p_value)`` with
    ``p = (1 + #{permuted >= observed}) / (1 + permutations)``.
    """
    cells = n_videos * n_categories

    def stat(videos: np.ndarray) -> float:
        table = np.bincount(
            videos[choice_answer] * n_categories + choice_category, minlength=cells
        ).reshape(n_videos, n_categories)
        return chi_square_statistic(table)

    observed = stat(video)
    if math.isnan(observed) or permutations <= 0:
        return (observed, math.nan)
    rng = np.random.default_rng(seed)
    participant = np.asarray(participant, dtype=float)
    exceed = 0
    for start in range(0, permutations, _CHUNK):
        size = min(_CHUNK, permutations - start)
        # sorting by participant + a uniform in [0, 1) shuffles within participants only
        keys = participant[None, :] + rng.random((size, len(participant)))
        order = np.argsort(keys, axis=1, kind="stable")
        for row in order:
            value = stat(video[row])
            exceed += bool(value >= observed - 1e-9 * max(1.0, abs(observed)))
    return (observed, (1 + exceed) / (1 + permutations))
