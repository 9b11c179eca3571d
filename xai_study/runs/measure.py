"""The metric rows of one analysed video: one row per explanation.

Each row has the paper's metrics (:func:`~xai_study.metrics.paper_metrics`), the
localisation metrics when the video has a ground-truth mask, deletion and insertion AUC
(``steps`` > 0) and, with ``sanity``, the model-parameter randomisation score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.runs.analysis import Analysis
from xai_study.runs.detectors import DetectorSet, arch_for
from xai_study.runs.presets import params_for


def seed_override(name: str, seed: int) -> dict[str, Any]:
    """``{"seed": seed}`` when explainer ``name`` takes a seed, else nothing."""
    from xai_study.explainers import explainer_class

    return {"seed": seed} if "seed" in explainer_class(name).defaults else {}


@dataclass
class Measurer:
    """Computes the metric rows of analyses (see the module docstring)."""

    preset: str = "fast"
    steps: int = 8
    baseline: str = "blur"
    sanity: bool = False
    seed: int = 0
    _curves: tuple[Any, Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.steps:
            from xai_study.metrics import DeletionAUC, InsertionAUC

            self._curves = (
                DeletionAUC(self.steps, self.baseline, seed=self.seed),
                InsertionAUC(self.steps, self.baseline, seed=self.seed),
            )

    def rows(
        self, analysis: Analysis, detectors: DetectorSet, masks: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """One row per explanation; a metric that fails gives a row with ``error``."""
        endpoints: dict[int, tuple[float, float]] = {}  # per detector: P(clip), P(baseline)
        rows = []
        for name, expl in analysis.explanations.items():
            base = {
                "explainer": name,
                "detector": analysis.detectors.get(name, ""),
                "frames": len(analysis.clip.frames),
                "score": expl.score,
                "seconds": expl.seconds,
            }
            try:
                det = detectors.get(arch_for(name))
                rows.append({**base, **self._metrics(analysis, name, det, masks, endpoints)})
            except XaiStudyError as exc:
                rows.append({"explainer": name, "error": str(exc)})
        return rows

    def _metrics(self, analysis, name, det, masks, endpoints) -> dict[str, Any]:
        from xai_study.metrics import density_segments, localisation_metrics, paper_metrics

        expl = analysis.explanations[name]
        frames = analysis.clip.frames
        row: dict[str, Any] = dict(paper_metrics(expl.maps, signed=expl.signed))
        if masks is not None:
            row.update(localisation_metrics(expl.maps, masks, signed=expl.signed))
        if self._curves is not None:
            deletion, insertion = self._curves
            if id(det) not in endpoints:
                endpoints[id(det)] = deletion.endpoints(frames, det)
            ends = endpoints[id(det)]
            # maps that paint supervoxel totals are ranked by density (value / size)
            seg = density_segments(expl)
            kw = {"endpoints": ends, "segments": seg}
            row["deletion_auc"] = deletion(frames, expl.maps, det, expl.signed, **kw)
            row["insertion_auc"] = insertion(frames, expl.maps, det, expl.signed, **kw)
        if self.sanity:
            row["randomisation_spearman"] = self._sanity(analysis, name, det)
        return row

    def _sanity(self, analysis: Analysis, name: str, det) -> float:
        from xai_study.explainers import create_explainer
        from xai_study.metrics import ModelParameterRandomisation

        expl = analysis.explanations[name]
        params = params_for(self.preset, name, seed_override(name, self.seed))

        def explain_with(model):
            return create_explainer(name, model, **params).explain(analysis.clip).maps

        check = ModelParameterRandomisation(seed=self.seed)
        return check(explain_with, det, maps=expl.maps, signed=expl.signed)
