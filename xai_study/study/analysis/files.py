"""Reading a study's tables from CSV files and writing the analysis' files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xai_study.study.analysis.plots import save_plots
from xai_study.study.analysis.tables import Analysis


def read_tables(
    responses: str | Path, participants: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``responses.csv`` and its participants table: ``participants`` if given, else the
    ``participants.csv`` next to ``responses`` if there is one, else ``None``."""
    from xai_study.study.export import read_participants, read_responses

    responses = Path(responses)
    table = read_responses(responses)
    path = Path(participants) if participants else responses.with_name("participants.csv")
    if participants or path.is_file():
        return table, read_participants(path)
    return table, None


def write_model_tables(result: Analysis, out_dir: str | Path) -> list[Path]:
    """``preference_model.csv`` (the choice model), ``preference_by_screen.csv`` and
    ``preference_by_familiarity.csv`` (with explainer x moderator terms) and
    ``accuracy_model.csv`` (Q1 accuracy by familiarity and screen), columns
    :data:`~xai_study.study.analysis.model.MODEL_COLUMNS`."""
    from xai_study.study.export import write_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_csv(result.model.table, out_dir / "preference_model.csv"),
        write_csv(result.accuracy_model, out_dir / "accuracy_model.csv"),
        *[
            write_csv(m.table, out_dir / f"preference_by_{by}.csv")
            for by, m in result.model_by.items()
        ],
    ]


def write_results(result: Analysis, out_dir: str | Path, plots: bool = True) -> list[Path]:
    """Write the CSV tables (:func:`xai_study.study.export.export_analysis`,
    :func:`write_model_tables`) and, with
    ``plots``, the PNG plots into ``out_dir``; returns the paths written."""
    from xai_study.study.export import export_analysis

    paths = export_analysis(result, out_dir)
    paths += write_model_tables(result, out_dir)
    if plots:
        paths += save_plots(result, out_dir)
    return paths
