"""Calibrated P(fake): temperature or Platt scaling of the video logit, and the measures
of calibration (ECE, Brier score, negative log-likelihood).

A detector's raw video P(fake) is ``sigmoid(z)`` with ``z`` the *video logit*
(:func:`xai_study.detectors.contract.video_logit`: the mean frame logit by default).
Calibration is an increasing affine map of that logit, fitted by maximum likelihood on
labelled videos (``xai-study calibrate``, on a validation split)::

    calibrated P(fake) = sigmoid(scale * z + bias)

- ``temperature`` (Guo et al. 2017): ``scale = 1 / T``, ``bias = 0``. One parameter; it
  keeps 0.5 at 0.5 and never changes the ranking, so AUC, EER and AP are unchanged.
- ``platt`` (Platt 1999): free ``scale`` and ``bias``; one parameter more to estimate.

Both are increasing, so a stored decision threshold re-expressed on the calibrated scale
(:meth:`Calibration.p_from_raw`) makes the same decisions. Frame P(fake) (the demo's
confidence-weighted view) uses the same map on each frame logit; for the default
``mean_logit`` aggregation the calibrated video P(fake) is then exactly the calibrated
P(fake) of the mean frame logit.

The calibration is stored in the checkpoint's metadata (``meta["calibration"]``); a
checkpoint without one has the identity calibration, whose probabilities are exactly the
raw ones (:func:`calibration_of`). Explainer targets (logits) and the deletion/insertion
faithfulness curves stay on the raw model output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xai_study.detectors.contract import aggregate_logits, sigmoid, video_logit
from xai_study.errors import CheckpointError, XaiStudyError

METHODS = ("temperature", "platt")
#: The fitted temperature is kept inside [1 / MAX_SCALE, 1 / MIN_SCALE].
MIN_SCALE, MAX_SCALE = 1e-3, 1e3
DEFAULT_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """``calibrated P = sigmoid(scale * z + bias)`` of a raw logit ``z`` (see the
    module docstring); ``method`` ``identity`` (scale 1, bias 0), ``temperature`` or
    ``platt``."""

    method: str = "identity"
    scale: float = 1.0
    bias: float = 0.0

    @property
    def identity(self) -> bool:
        return self.method == "identity"

    @property
    def temperature(self) -> float:
        """``1 / scale`` (the T of temperature scaling)."""
        return 1.0 / self.scale

    def logit(self, z: Any) -> np.ndarray:
        """Calibrated logits of raw logits ``z`` (float64)."""
        return self.scale * np.asarray(z, dtype=np.float64) + self.bias

    def frame_p(self, logits: Any) -> np.ndarray:
        """Calibrated P(fake) of each frame logit (exactly ``sigmoid`` when identity)."""
        if self.identity:
            return sigmoid(logits)
        return sigmoid(self.logit(logits))

    def video_p(self, logits: Any, how: str = "mean_logit") -> float:
        """Calibrated video P(fake) of frame ``logits`` aggregated by ``how`` (exactly
        :func:`~xai_study.detectors.contract.aggregate_logits` when identity)."""
        if self.identity:
            return aggregate_logits(logits, how)
        return float(sigmoid(self.logit(video_logit(logits, how))))

    def p_from_raw(self, p: float) -> float:
        """A raw P(fake) (e.g. a threshold chosen on raw scores) on the calibrated scale."""
        if self.identity:
            return float(p)
        return float(sigmoid(self.logit(_logit(p))))

    def raw_from_p(self, p: float) -> float:
        """The inverse of :meth:`p_from_raw`."""
        if self.identity:
            return float(p)
        return float(sigmoid((_logit(p) - self.bias) / self.scale))

    def describe(self) -> str:
        if self.identity:
            return "none (raw P(fake))"
        if self.method == "temperature":
            return f"temperature T = {self.temperature:.4g}"
        return f"Platt scale {self.scale:.4g}, bias {self.bias:+.4g}"

    def to_meta(self) -> dict[str, Any]:
        """The JSON-like ``meta["calibration"]`` entry (the fit's context is added by the
        caller)."""
        return {
            "method": self.method,
            "temperature": self.temperature,
            "scale": self.scale,
            "bias": self.bias,
            "applies_to": "video logit (the detector's aggregation) and each frame logit",
        }

    @classmethod
    def from_meta(cls, entry: Any, source: str = "checkpoint") -> Calibration:
        """The calibration a checkpoint stores; identity when it stores none. A malformed
        entry is a :class:`CheckpointError` with a one-line reason."""
        if entry is None:
            return cls()
        if not isinstance(entry, Mapping):
            raise CheckpointError(f"{source}: meta.calibration must be a dictionary")
        method = entry.get("method")
        if method not in (*METHODS, "identity"):
            raise CheckpointError(
                f"{source}: unknown calibration method {method!r} "
                f"(expected one of {', '.join(METHODS)})"
            )
        try:
            scale, bias = float(entry.get("scale", 1.0)), float(entry.get("bias", 0.0))
        except (TypeError, ValueError):
            raise CheckpointError(f"{source}: calibration scale/bias are not numbers") from None
        if not (math.isfinite(scale) and scale > 0 and math.isfinite(bias)):
            raise CheckpointError(
                f"{source}: calibration needs a finite scale > 0 and a finite bias, "
                f"got scale {scale!r}, bias {bias!r}"
            )
        if method == "temperature" and bias != 0.0:
            raise CheckpointError(f"{source}: temperature scaling has no bias, got {bias!r}")
        if method == "identity":
            return cls()
        return cls(method=str(method), scale=scale, bias=bias)


def _logit(p: float) -> float:
    p = float(p)
    if not 0.0 < p < 1.0:
        raise XaiStudyError(f"a probability strictly between 0 and 1 is needed, got {p!r}")
    return math.log(p) - math.log1p(-p)


def calibration_of(detector: Any) -> Calibration:
    """The calibration in ``detector.meta`` (identity for detectors without one: new
    models, old checkpoints, icpr2020dfdc files, the toys)."""
    meta = getattr(detector, "meta", None) or {}
    source = str(getattr(detector, "source", None) or "the detector")
    return Calibration.from_meta(meta.get("calibration"), source)


# ------------------------------------------------------------------------------- fitting


def _check_xy(z: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    zz = np.asarray(z, dtype=np.float64).reshape(-1)
    yy = np.asarray(y, dtype=np.float64).reshape(-1)
    if zz.shape != yy.shape:
        raise XaiStudyError(f"{zz.size} logits for {yy.size} labels")
    if not np.isfinite(zz).all():
        raise XaiStudyError("calibration needs finite logits")
    if not np.isin(yy, (0.0, 1.0)).all():
        raise XaiStudyError("calibration labels must be 0 (real) or 1 (fake)")
    if not (yy.size and 0 < yy.sum() < yy.size):
        raise XaiStudyError("fitting a calibration needs real and fake videos")
    return zz, yy


def nll(p_or_logit: Any, y: Any, logits: bool = False) -> float:
    """Mean negative log-likelihood (natural log) of labels ``y`` under P(fake) (or
    under logits, computed stably, with ``logits=True``)."""
    yy = np.asarray(y, dtype=np.float64).reshape(-1)
    if logits:
        s = np.asarray(p_or_logit, dtype=np.float64).reshape(-1)
        # -log sigmoid(s) = logaddexp(0, -s); -log(1 - sigmoid(s)) = logaddexp(0, s)
        return float(np.mean(yy * np.logaddexp(0.0, -s) + (1 - yy) * np.logaddexp(0.0, s)))
    p = np.clip(np.asarray(p_or_logit, dtype=np.float64).reshape(-1), 1e-15, 1 - 1e-15)
    return float(-np.mean(yy * np.log(p) + (1 - yy) * np.log1p(-p)))


def fit_temperature(z: Any, y: Any) -> tuple[Calibration, bool]:
    """Maximum-likelihood temperature for raw logits ``z`` and 0/1 labels ``y``; the
    negative log-likelihood is convex in ``1/T``, minimised over ``[MIN_SCALE,
    MAX_SCALE]`` (bounded Brent on ``log(1/T)``). Returns the calibration and whether
    the optimum lies on a bound (separable data push ``T`` towards 0)."""
    from scipy.optimize import minimize_scalar

    zz, yy = _check_xy(z, y)
    lo, hi = math.log(MIN_SCALE), math.log(MAX_SCALE)
    res = minimize_scalar(
        lambda u: nll(math.exp(u) * zz, yy, logits=True),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-8},
    )
    u = float(res.x)
    at_bound = min(u - lo, hi - u) < 1e-3
    return Calibration("temperature", scale=math.exp(u), bias=0.0), at_bound


def fit_platt(z: Any, y: Any) -> tuple[Calibration, bool]:
    """Maximum-likelihood Platt scaling ``sigmoid(a z + b)`` (L-BFGS-B with the analytic
    gradient, ``a`` kept in ``[MIN_SCALE, MAX_SCALE]`` so the map stays increasing).
    Returns the calibration and whether ``a`` ended on a bound."""
    from scipy.optimize import minimize

    zz, yy = _check_xy(z, y)

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        s = theta[0] * zz + theta[1]
        r = sigmoid(s) - yy  # d nll / d s, per sample
        return nll(s, yy, logits=True), np.array([np.mean(r * zz), np.mean(r)])

    res = minimize(
        f,
        x0=np.array([1.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(MIN_SCALE, MAX_SCALE), (-1e3, 1e3)],
        options={"gtol": 1e-10, "ftol": 1e-14, "maxiter": 1000},
    )
    a, b = float(res.x[0]), float(res.x[1])
    at_bound = min(a - MIN_SCALE, MAX_SCALE - a) < 1e-6 * MAX_SCALE or abs(b) >= 1e3 - 1e-6
    return Calibration("platt", scale=a, bias=b), at_bound


def fit_calibration(z: Any, y: Any, method: str = "temperature") -> tuple[Calibration, bool]:
    """:func:`fit_temperature` or :func:`fit_platt` by name."""
    if method == "temperature":
        return fit_temperature(z, y)
    if method == "platt":
        return fit_platt(z, y)
    raise XaiStudyError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")


# ------------------------------------------------------------------------------ measures


def expected_calibration_error(p: Any, y: Any, bins: int = DEFAULT_BINS) -> float:
    """ECE of P(fake) ``p`` for 0/1 labels ``y`` with ``bins`` equal-width bins
    ``[k/bins, (k+1)/bins)`` (the last one closed): ``sum_b n_b / N * |mean(y_b) -
    mean(p_b)|``, the fraction of fakes against the mean P(fake) in each bin."""
    if bins < 1:
        raise XaiStudyError(f"ECE needs at least 1 bin, got {bins}")
    pp = np.asarray(p, dtype=np.float64).reshape(-1)
    yy = np.asarray(y, dtype=np.float64).reshape(-1)
    if pp.shape != yy.shape or pp.size == 0:
        raise XaiStudyError(f"ECE needs as many labels as scores (got {yy.size}, {pp.size})")
    if ((pp < 0) | (pp > 1) | ~np.isfinite(pp)).any():
        raise XaiStudyError("ECE needs probabilities in [0, 1]")
    idx = np.minimum((pp * bins).astype(np.int64), bins - 1)
    n = np.bincount(idx, minlength=bins).astype(np.float64)
    gap = np.abs(
        np.bincount(idx, weights=yy, minlength=bins) - np.bincount(idx, weights=pp, minlength=bins)
    )  # n_b * |mean(y_b) - mean(p_b)|
    return float(gap.sum() / n.sum())


def brier_score(p: Any, y: Any) -> float:
    """Mean squared difference between P(fake) and the 0/1 label."""
    pp = np.asarray(p, dtype=np.float64).reshape(-1)
    yy = np.asarray(y, dtype=np.float64).reshape(-1)
    if pp.shape != yy.shape or pp.size == 0:
        raise XaiStudyError(f"Brier score needs as many labels as scores ({yy.size}, {pp.size})")
    return float(np.mean((pp - yy) ** 2))


def calibration_measures(p: Any, y: Any, bins: int = DEFAULT_BINS) -> dict[str, float]:
    """ECE (``bins`` equal-width bins), Brier score and NLL of P(fake) ``p``."""
    return {
        "ece": expected_calibration_error(p, y, bins),
        "brier": brier_score(p, y),
        "nll": nll(p, y),
    }
