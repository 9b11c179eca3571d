"""Demo deepfake data set: generator (real clips, face swaps, self-blended fakes) and
ground-truth masks (:func:`load_masks`, :func:`crop_masks`)."""

from xai_study.data.masks import crop_masks, load_masks, save_masks

__all__ = ["crop_masks", "load_masks", "save_masks"]
