"""Bonettini et al. (2020): the sigmoid attention map of EfficientNetAutoAtt.

The ``bonettini`` detector multiplies its features (stride 8) by a learned sigmoid
map; that map, upsampled bilinearly to the crop, is the explanation. It does not depend
on the target class.
"""

from __future__ import annotations

from xai_study.explainers.attention import attention_maps
from xai_study.explainers.base import Explainer, batch_size_of, register


@register
class BonettiniExplainer(Explainer):
    name = "bonettini"
    label = "Bonettini"
    paper_rank = 4
    paper_label = "Bonettini"
    signed = False
    requires = "bonettini"
    description = "self-attention map of the Bonettini (auto-attention) detector"
    defaults = {"batch_size": 0, "seed": 0}

    def _explain(self, frames, sign, progress):
        bs = int(self.params["batch_size"]) or batch_size_of(self.detector)
        maps = attention_maps(self.attention_detector(), frames, bs, progress)
        return maps[0], {"target_independent": True}
