"""The paper's Q2 counts (Pino et al. 2021) and a responses table that reproduces them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xai_study.explainers import explainer_class, paper_explainers
from xai_study.study.schema import REQUIRED_RESPONSE_COLUMNS

#: The paper's Q2 counts (67 participants x 20 sections), keyed by registry name.
PAPER_COUNTS = {"gradcam": 165, "shap3d": 221, "ltpa": 137, "bonettini": 185}


def paper_counts_by_label() -> dict[str, int]:
    """:data:`PAPER_COUNTS` under the paper's own spelling (``GradCAM``, ``SHAP``, ...), in
    the paper's order."""
    return {explainer_class(n).paper_label: PAPER_COUNTS[n] for n in paper_explainers()}


def paper_responses(counts: dict[str, int] | None = None) -> pd.DataFrame:
    """A responses table with the given Q2 totals (default: the paper's, under the
    paper's names), for checks.

    Answers are dealt round-robin over participants and 20 sections, so each explainer
    gets exactly its count; Q1 is correct in 85 % of the rows, as in the paper.
    """
    counts = paper_counts_by_label() if counts is None else dict(counts)
    choices = [name for name, c in counts.items() for _ in range(c)]
    rng = np.random.default_rng(0)
    rng.shuffle(choices)
    sections = 20
    rows = []
    for i, choice in enumerate(choices):
        pid, sec = divmod(i, sections)
        rows.append(
            {
                "participant_id": f"p{pid:03d}",
                "section": sec + 1,
                "video_id": f"video_{sec + 1:02d}",
                "q1_answer": "video1",
                "q1_correct": (i % 20) < 17,
                "q2_choice": choice,
                "screen": "large" if pid % 7 < 3 else "small",
                "familiarity": ("yes", "heard", "no")[pid % 3],
                "answered_at": f"2021-05-01T10:{pid % 60:02d}:{sec:02d}+00:00",
            }
        )
    return pd.DataFrame(rows, columns=list(REQUIRED_RESPONSE_COLUMNS))
