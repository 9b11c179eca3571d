"""Sanity check: model-parameter randomisation (Adebayo et al. 2018).

An explanation that does not change when the detector's learned weights are replaced
by random ones cannot be explaining what the detector learned. The score is the
Spearman rank correlation between the normalised explanation (design §2 steps 1–2,
flattened over the whole clip) of the trained detector and that of a copy whose weights
were re-initialised. Low correlation means the explainer passes; a correlation near 1
means it fails.

**Which randomisation.** We implement Adebayo's *cascading* randomisation: the
detector's parameterised layers are listed in **execution order** (input to output:
the order in which forward hooks see them finish on one forward pass of a grey frame,
:func:`execution_order`; layers that the pass never runs come first, so they are
randomised last), and the top ``k`` layers, counted from the output, are re-initialised with their own
initialisers (``reset_parameters()``, which for batch-norm layers also resets the running
statistics; layers without one get N(0, 0.02²) weights). The default ``layers="all"``
is the final step of the cascade, every layer random, which is what
``xai-study evaluate`` reports; :meth:`ModelParameterRandomisation.cascade` returns
the whole curve. ``mode="independent"`` re-initialises only the single ``k``-th layer
from the top instead (Adebayo's independent randomisation).

Constant explanations have no ranks: the correlation is then ``nan``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xai_study.detectors.randomise import (  # noqa: F401 - re-exported
    example_input,
    execution_order,
    parameterised_layers,
    randomise_model,
)
from xai_study.errors import XaiStudyError
from xai_study.maps import normalise
from xai_study.metrics.base import NAN, Metric

ADEBAYO_REFERENCE = (
    "Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), Sanity checks for "
    "saliency maps, NeurIPS"
)


def spearman(a, b) -> float:
    """Spearman rank correlation of two equally shaped arrays; ``nan`` if either is constant."""
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise XaiStudyError(f"cannot correlate maps of sizes {a.size} and {b.size}")
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return NAN
    return float(spearmanr(a, b).statistic)


class ModelParameterRandomisation(Metric):
    """Spearman correlation between explanations of the trained and a randomised detector.

    ``score = spearman(N_trained.ravel(), N_random.ravel())`` where both are the
    normalised explanations of the same clip and the randomised detector has its top
    ``layers`` layers re-initialised (``"all"``: fully random; cascading by default).
    Lower is better (an explainer sensitive to the model's weights); range [-1, 1].
    """

    name = "randomisation_spearman"
    reference = ADEBAYO_REFERENCE
    higher_is_better = False
    value_range = (-1.0, 1.0)

    def __init__(
        self,
        layers: int | str = "all",
        mode: str = "cascading",
        seed: int = 0,
        signed: bool = False,
    ):
        self.layers = layers
        self.mode = mode
        self.seed = seed
        self.signed = signed

    def __repr__(self) -> str:
        return f"ModelParameterRandomisation(layers={self.layers!r}, mode={self.mode!r})"

    def __call__(
        self,
        explain: Callable[[object], np.ndarray],
        detector,
        maps=None,
        signed: bool | None = None,
    ) -> float:
        """``explain(detector) -> maps`` is run on the randomised copy (and on ``detector``
        itself unless its ``maps`` are given)."""
        signed = self.signed if signed is None else signed
        trained = explain(detector) if maps is None else maps
        random = explain(randomise_model(detector, self.layers, self.mode, self.seed))
        return spearman(normalise(trained, signed), normalise(random, signed))

    def cascade(self, explain, detector, stages=None, maps=None, signed: bool | None = None):
        """``[(k, spearman)]`` for cascading randomisation of the top ``k`` layers."""
        signed = self.signed if signed is None else signed
        total = len(parameterised_layers(detector))
        stages = stages or sorted({1, max(1, total // 4), max(1, total // 2), total})
        trained = normalise(explain(detector) if maps is None else maps, signed)
        out = []
        for k in stages:
            random = explain(randomise_model(detector, k, "cascading", self.seed))
            out.append((k, spearman(trained, normalise(random, signed))))
        return out
