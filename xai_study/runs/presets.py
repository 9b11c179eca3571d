"""Run presets: ``fast`` for a CPU demo, ``paper`` for publication-quality runs on a GPU.

A preset fixes the face clip (frames, crop size), each explainer's parameters and the
number of deletion/insertion steps of ``evaluate``. ``explain``, ``evaluate``,
``build-study`` and the live demo all read them here.
"""

from __future__ import annotations

from typing import Any

from xai_study.errors import XaiStudyError

PRESETS: dict[str, dict[str, Any]] = {
    "fast": {
        "frames": 16,
        "size": 224,
        "faithfulness_steps": 8,
        "explainer_params": {
            # compactness 3: supervoxels follow eyes, mouth, cheeks and hair (about 13 per
            # frame, each lasting about 5 of the 16 frames) instead of square blocks
            # per-frame games: 384 coalitions per frame (about 15 supervoxels a frame);
            # about 5,400 frame evaluations for 16 frames. 256 reached a two-seed
            # Spearman of only 0.897 on one clip; 384 is the margin (docs/explainers.md).
            # precision auto: bfloat16 autocast where the CPU/GPU has it natively, 2.3x
            # faster on AVX-512 BF16 with the same seed-to-seed agreement (0.910 both)
            "shap3d": {
                "n_segments": 48,
                "compactness": 3.0,
                "temporal_spacing": 64.0,
                "method": "frames",
                "nsamples": 384,
                "precision": "auto",
            },
            # the same supervoxels as shap3d, random values: its null
            "null_supervoxels": {
                "n_segments": 48,
                "compactness": 3.0,
                "temporal_spacing": 64.0,
            },
            "lime3d": {
                "n_segments": 48,
                "compactness": 3.0,
                "temporal_spacing": 64.0,
                "num_samples": 64,
            },
            "integrated_gradients": {"n_steps": 16},
            "ltpa": {"level": 2},
        },
    },
    "paper": {
        "frames": 32,
        "size": 224,
        "faithfulness_steps": 20,
        "explainer_params": {
            # about 44 supervoxels a frame: 512 per frame gave a two-seed Spearman of 0.82
            # (2 clips), 2048 gave 0.935 (1 clip), 4096 gave 0.971 and 0.958 (2 clips, in
            # bfloat16; about 119,000 frame evaluations, 20 min a seed on 2 CPU cores)
            "shap3d": {
                "n_segments": 128,
                "temporal_spacing": 4.0,
                "method": "frames",
                "nsamples": 4096,
            },
            "null_supervoxels": {"n_segments": 128, "temporal_spacing": 4.0},
            "lime3d": {"n_segments": 128, "temporal_spacing": 4.0, "num_samples": 2048},
            "integrated_gradients": {"n_steps": 64},
            "ltpa": {"level": 2, "all_levels": True},
        },
    },
}


def preset(name: str) -> dict[str, Any]:
    """The preset ``name`` (a clear error for an unknown one)."""
    if name not in PRESETS:
        raise XaiStudyError(f"unknown preset {name!r} (choose from: {', '.join(PRESETS)})")
    return PRESETS[name]


def explainer_params(preset_name: str, name: str, **overrides: Any) -> dict[str, Any]:
    """The parameters preset ``preset_name`` uses for explainer ``name`` (plus overrides)."""
    return {**preset(preset_name)["explainer_params"].get(name, {}), **overrides}


def params_for(preset_name: str, name: str, overrides: dict[str, Any] | None = None) -> dict:
    """What to pass to ``create_explainer(name, ...)``: the preset's values the explainer
    accepts, then ``overrides``."""
    from xai_study.explainers import explainer_class

    accepted = explainer_class(name).defaults
    kw = {k: v for k, v in explainer_params(preset_name, name).items() if k in accepted}
    kw.update(overrides or {})
    return kw
