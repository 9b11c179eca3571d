"""Statistics of a user study: participants, Q1 accuracy, Q2 explainer preference.

Pure pandas / scipy / statsmodels (no gradio): the admin results page, ``xai-study
analyze --db`` and ``xai-study analyze --responses responses.csv`` all call
:func:`analyze` on the same tables, so they report the same numbers.

Input is a *responses* table, one row per participant x section, with at least the
columns :data:`~xai_study.study.schema.REQUIRED_RESPONSE_COLUMNS` (``q2_choice`` is the
explainer name; several names separated by ``;`` when the study allows multiple choice),
and optionally a *participants* table (``participant_id`` plus, when known, ``status``,
``screen``, ``familiarity``, ``checks_passed``, ``checks_total``).

Modules: :mod:`.cleaning` (reading and normalising the tables, choices, display order),
:mod:`.stats` (the tests), :mod:`.metrics` (objective metrics per explainer),
:mod:`.model` (the conditional-logit choice model, the main Q2 analysis),
:mod:`.simulate` (simulated studies, power), :mod:`.tables` (:class:`Analysis` and
:func:`analyze`), :mod:`.plots`, :mod:`.report`
(the summary as text and Markdown), :mod:`.files` (CSV in, result files out) and
:mod:`.paper` (the paper's counts).
"""

from xai_study.study.analysis.cleaning import (
    explainer_id,
    order_explainers,
    prepare_participants,
    prepare_responses,
    split_choices,
)
from xai_study.study.analysis.files import read_tables, write_model_tables, write_results
from xai_study.study.analysis.metrics import (
    METRIC_NAMES,
    PAPER_METRICS,
    load_metrics,
    metrics_table,
)
from xai_study.study.analysis.model import (
    MODEL_COLUMNS,
    ChoiceModel,
    animation_metrics,
    choice_model,
    choice_sets,
    fit_choice_model,
)
from xai_study.study.analysis.paper import PAPER_COUNTS, paper_counts_by_label, paper_responses
from xai_study.study.analysis.plots import PLOT_NAMES, figures, save_plots
from xai_study.study.analysis.report import Line, Report, build_report, display_table
from xai_study.study.analysis.simulate import power, simulate_responses
from xai_study.study.analysis.stats import (
    fleiss_kappa_table,
    holm,
    sign_test,
    wilson_interval,
)
from xai_study.study.analysis.tables import (
    ACCURACY_COLUMNS,
    Analysis,
    analyze,
    analyze_database,
    load_database,
    stats_table,
)
from xai_study.study.schema import CHOICE_SEPARATOR, REQUIRED_RESPONSE_COLUMNS

__all__ = [
    "ACCURACY_COLUMNS",
    "CHOICE_SEPARATOR",
    "METRIC_NAMES",
    "MODEL_COLUMNS",
    "PAPER_COUNTS",
    "PAPER_METRICS",
    "PLOT_NAMES",
    "REQUIRED_RESPONSE_COLUMNS",
    "Analysis",
    "ChoiceModel",
    "Line",
    "Report",
    "analyze",
    "animation_metrics",
    "analyze_database",
    "build_report",
    "choice_model",
    "choice_sets",
    "display_table",
    "explainer_id",
    "figures",
    "fit_choice_model",
    "fleiss_kappa_table",
    "holm",
    "load_database",
    "load_metrics",
    "metrics_table",
    "order_explainers",
    "paper_counts_by_label",
    "paper_responses",
    "power",
    "prepare_participants",
    "prepare_responses",
    "read_tables",
    "save_plots",
    "sign_test",
    "simulate_responses",
    "split_choices",
    "stats_table",
    "wilson_interval",
    "write_model_tables",
    "write_results",
]
