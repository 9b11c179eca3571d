"""Gradio pages (survey, results, demo); no numerical code. See :mod:`xai_study.ui.app`."""
