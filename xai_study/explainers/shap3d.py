"""SHAP-3D: Shapley values of 3D supervoxels of the clip (Pino et al. 2021).

The players are SLIC supervoxels of the ``(T, H, W, 3)`` clip (segments extend over
several frames). A coalition keeps its supervoxels and replaces every other one by the
baseline clip (blurred by default); the game's value is the detector's video-level logit
(mean frame logit) of that masked clip. Each pixel of the map carries its supervoxel's
value (signed; ``paint="density"`` divides it by the supervoxel's size).

**Per-frame games** (``method="frames"``, the default). The value is the mean over
frames of per-frame logits, and frame ``t``'s logit depends only on the supervoxels
present in frame ``t``. By linearity and the null-player axiom the clip's Shapley values
are therefore the mean over frames of the Shapley values of the per-frame games, each
over only that frame's supervoxels (about 13 in the ``fast`` preset), and a coalition of
a per-frame game costs one frame evaluation instead of ``T``:

- a frame whose ``K`` players have ``2^K - 2 <= nsamples`` is **enumerated exactly**
  (all ``2^K`` coalitions, the Shapley formula);
- any other frame gets Kernel SHAP (``shap.KernelExplainer``, ``l1_reg=False``; its
  sampler draws coalitions in complementary pairs) with ``nsamples`` coalitions, spent
  as two independent halves of ``nsamples // 2`` with their own random streams. Each
  half gets at least ``4 K`` coalitions: a complementary pair adds one direction to
  Kernel SHAP's regression, so fewer than ``2 K`` make it singular and fewer than
  about ``4 K`` ill-conditioned (``frame_evaluations`` reports what was spent). The values are the mean of
  the halves; the halves' disagreement is the convergence figure
  (:mod:`xai_study.explainers.convergence`) in ``extra["convergence"]``.

``method="clip"`` is the original estimator, kept for comparison: Kernel SHAP over all
supervoxels of the whole-clip game with ``nsamples`` coalitions (also as two halves,
each at least ``2 K + 2``), each coalition costing up to ``T`` frame evaluations (fewer
with the per-frame cache).

Efficiency (the values summing to ``f(clip) - f(baseline)``) holds for both methods at
any budget, by construction: it says nothing about convergence.
"""

from __future__ import annotations

import logging
from math import factorial

import numpy as np

from xai_study.explainers.base import check_choice, check_positive_int, register
from xai_study.explainers.convergence import exact_figure, split_half_figure
from xai_study.explainers.supervoxels import SUPERVOXEL_DEFAULTS, SupervoxelExplainer

METHODS = ("frames", "clip")


def exact_shapley(values: np.ndarray, k: int) -> np.ndarray:
    """Shapley values of a ``k``-player game given on all ``2^k`` coalitions.

    ``values[m]`` is the value of the coalition whose members are the set bits of ``m``
    (player ``j`` is bit ``j``). ``phi_j = sum_{S not containing j} |S|! (k-|S|-1)! / k!
    (v(S + j) - v(S))``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (2**k,):
        raise ValueError(f"expected {2**k} coalition values, got {values.shape}")
    idx = np.arange(2**k)
    size = _popcount(idx, k)
    weight = np.array([factorial(s) * factorial(k - s - 1) / factorial(k) for s in range(k)])
    phi = np.empty(k)
    for j in range(k):
        without = idx[((idx >> j) & 1) == 0]
        phi[j] = np.sum(weight[size[without]] * (values[without | (1 << j)] - values[without]))
    return phi


def all_coalitions(k: int) -> np.ndarray:
    """``(2^k, k)`` bool: row ``m`` has the set bits of ``m`` (player ``j`` = bit ``j``)."""
    idx = np.arange(2**k)
    return ((idx[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)


def _popcount(idx: np.ndarray, k: int) -> np.ndarray:
    return ((idx[:, None] >> np.arange(max(k, 1))[None, :]) & 1).sum(axis=1)


def _stream_seed(seed: int, *parts: int) -> int:
    """An independent 32-bit seed for one (frame, half) random stream."""
    return int(np.random.SeedSequence([int(seed) % 2**32, *parts]).generate_state(1)[0])


def kernel_shap(fn, k: int, nsamples: int | str, seed: int) -> np.ndarray:
    """Kernel SHAP (the ``shap`` package) of a ``k``-player game ``fn((n, k)) -> (n,)``
    between the empty and the full coalition, every player kept (``l1_reg=False``)."""
    import warnings

    import shap

    logging.getLogger("shap").setLevel(logging.WARNING)  # one INFO line per call
    state = np.random.get_state()
    np.random.seed(seed)  # shap samples with numpy's global generator
    try:
        with warnings.catch_warnings():
            # "Linear regression equation is singular": the convergence figure shows it
            warnings.simplefilter("ignore", UserWarning)
            explainer = shap.KernelExplainer(fn, np.zeros((1, k)), link="identity")
            values = explainer.shap_values(
                np.ones((1, k)), nsamples=nsamples, l1_reg=False, silent=True
            )
    finally:
        np.random.set_state(state)
    return np.asarray(values, dtype=np.float64).reshape(-1)[:k]


@register
class Shap3D(SupervoxelExplainer):
    name = "shap3d"
    label = "SHAP-3D"
    study_name = "shap"
    paper_rank = 2
    paper_label = "SHAP"
    description = "Shapley values of 3D SLIC supervoxels, per-frame games (black box, signed)"
    defaults = {**SUPERVOXEL_DEFAULTS, "method": "frames", "nsamples": 128}

    def check_params(self) -> None:
        super().check_params()
        check_choice("method", self.params["method"], METHODS)
        if self.params["nsamples"] != "auto":
            check_positive_int("nsamples", self.params["nsamples"], 4)

    def _explain(self, frames, sign, progress):
        game = self.game(frames, sign, progress)
        if self.params["method"] == "clip":
            values, half_a, half_b, figure = self._clip_game(game, progress)
            se = None
        else:
            values, half_a, half_b, se, figure = self._frame_games(game, progress)
        if figure is None:
            figure = split_half_figure(half_a, half_b, "kernel", se=se)
        f_clip = float(game(np.ones((1, game.n_segments)))[0])
        f_base = float(game(np.zeros((1, game.n_segments)))[0])
        game.coalitions -= 2  # the two end points are not part of the estimate
        stats = game.stats()
        figure.update(
            frame_evaluations=stats["frames_evaluated"],
            estimator=self.params["method"],
            precision=game.precision,
        )
        extra = {
            "segments": game.segments,
            "values": values,
            "f_clip": f_clip,
            "f_baseline": f_base,
            "paint": self.params["paint"],
            "convergence": figure,
            "score": game.video_score(),
            **stats,
        }
        return game.paint(values, self.params["paint"]), extra

    def _frame_games(self, game, progress):
        T, n = len(game.frames), game.n_segments
        nsamples = self.params["nsamples"]
        seed = int(self.params["seed"])
        half_a, half_b = np.zeros((T, n)), np.zeros((T, n))
        exact = 0
        game.progress = progress
        for t in range(T):
            players = game.present[t]
            k = len(players)
            game.progress_at = t / T

            def fn(z, t=t):
                return game.frame_values(t, z)

            if nsamples != "auto" and 2**k - 2 <= int(nsamples):
                phi = exact_shapley(fn(all_coalitions(k)), k)
                half_a[t, players] = half_b[t, players] = phi
                exact += 1
            else:
                half = "auto" if nsamples == "auto" else max(4 * k, int(nsamples) // 2)
                half_a[t, players] = kernel_shap(fn, k, half, _stream_seed(seed, t, 0))
                half_b[t, players] = kernel_shap(fn, k, half, _stream_seed(seed, t, 1))
            if progress is not None:
                progress((t + 1) / T)
        game.progress = None
        a, b = half_a.mean(axis=0), half_b.mean(axis=0)
        values = 0.5 * (a + b)
        # the frames' estimates are independent: combine their standard errors
        se = np.sqrt(np.sum((0.5 * (half_a - half_b)) ** 2, axis=0)) / T
        figure = None
        if exact == T:
            figure = exact_figure()
        else:
            figure = split_half_figure(a, b, "kernel", se=se)
        figure.update(frames_exact=exact, frames_kernel=T - exact)
        return values, a, b, se, figure

    def _clip_game(self, game, progress):
        nsamples = self.params["nsamples"]
        seed = int(self.params["seed"])
        k = game.n_segments
        half = "auto" if nsamples == "auto" else max(2 * k + 2, int(nsamples) // 2)
        out = []
        shown = [0.0]

        def report(f, part):  # shap's one-row calls report 1.0 early: never go back
            shown[0] = max(shown[0], (part + (f if f < 1.0 else 0.0)) / 2)
            progress(shown[0])

        for part in (0, 1):
            game.progress = None if progress is None else (lambda f, part=part: report(f, part))
            out.append(kernel_shap(game, k, half, _stream_seed(seed, 0, part)))
        game.progress = None
        a, b = out
        return 0.5 * (a + b), a, b, None
