"""LTPA: the attention maps of the Learn-To-Pay-Attention detector (Jetley et al. 2018).

The ``ltpa`` detector computes three spatial softmax attention maps at three depths;
``level`` (1, 2 or 3; the paper shows 2) picks one, upsampled bilinearly to the crop.
``extra["levels"]`` holds all three. The maps do not depend on the target class.
"""

from __future__ import annotations

from typing import Any

from xai_study.errors import XaiStudyError
from xai_study.explainers.attention import attention_maps
from xai_study.explainers.base import Explainer, batch_size_of, check_choice, register


@register
class LtpaExplainer(Explainer):
    name = "ltpa"
    label = "LTPA"
    paper_rank = 3
    paper_label = "LTPA"
    signed = False
    requires = "ltpa"
    description = "attention map of the LTPA detector (level 1-3, default 2)"
    defaults = {"level": 2, "all_levels": False, "batch_size": 0, "seed": 0}

    def check_params(self) -> None:
        check_choice("level", self.params["level"], (1, 2, 3))

    def _explain(self, frames, sign, progress):
        bs = int(self.params["batch_size"]) or batch_size_of(self.detector)
        levels = attention_maps(self.attention_detector(), frames, bs, progress)
        if len(levels) != 3:
            raise XaiStudyError(f"the LTPA detector returned {len(levels)} attention maps, not 3")
        extra: dict[str, Any] = {"target_independent": True}
        if self.params["all_levels"]:
            extra["levels"] = levels
        return levels[int(self.params["level"]) - 1], extra
