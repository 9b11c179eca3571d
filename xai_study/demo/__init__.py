"""The live demo: job orchestration, result cache, region captions and the
confidence-weighted view (no Gradio here; the page is ``xai_study.ui.demo``)."""

from xai_study.demo.jobs import (
    DemoResult,
    DemoSettings,
    ResultCache,
    check_input,
    confidence_weights,
    run_demo,
    weighted_consensus,
)
from xai_study.demo.regions import REGIONS, caption, region_masks, region_shares

__all__ = [
    "REGIONS",
    "DemoResult",
    "DemoSettings",
    "ResultCache",
    "caption",
    "check_input",
    "confidence_weights",
    "region_masks",
    "region_shares",
    "run_demo",
    "weighted_consensus",
]
