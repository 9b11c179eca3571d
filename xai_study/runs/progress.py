"""Progress over weighted stages, with cancellation.

A run is a list of stages (``faces``, ``detection``, one per explainer, ``rendering``);
each has a weight (its share of the work). :class:`Progress` turns "stage S is a
fraction f done" into the *overall* fraction, which never goes backwards, and calls
``callback(stage, overall)``. Setting the ``cancel`` event stops the run at the next
report with :class:`AnalysisCancelled`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from xai_study.errors import XaiStudyError

#: Relative cost of each explainer (others: 0.5) and of the other stages.
STAGE_WEIGHTS = {
    "faces": 2.0,
    "detection": 0.5,
    "rendering": 1.0,
    "shap3d": 8.0,
    "lime3d": 8.0,
    "integrated_gradients": 4.0,
    "gradcam": 1.5,
}
DEFAULT_WEIGHT = 0.5

ProgressCallback = Callable[[str, float], None]


class AnalysisCancelled(XaiStudyError):
    """The analysis was cancelled by the user."""


class Progress:
    """Overall progress of the stages ``stages`` (weights from :data:`STAGE_WEIGHTS`)."""

    def __init__(
        self,
        stages: list[str],
        callback: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        weights: dict[str, float] | None = None,
    ):
        table = {**STAGE_WEIGHTS, **(weights or {})}
        self.weights = {s: float(table.get(s, DEFAULT_WEIGHT)) for s in stages}
        self.total = sum(self.weights.values()) or 1.0
        self.callback = callback
        self.cancel = cancel
        self._done = 0.0
        self._shown = 0.0

    def check(self) -> None:
        """Raise :class:`AnalysisCancelled` when the run was cancelled."""
        if self.cancel is not None and self.cancel.is_set():
            raise AnalysisCancelled("the analysis was cancelled")

    def report(self, stage: str, within: float = 0.0) -> None:
        """Stage ``stage`` is ``within`` (0-1) done."""
        self.check()
        if self.callback is None:
            return
        part = self.weights.get(stage, 0.0) * min(max(within, 0.0), 1.0)
        self._shown = max(self._shown, min(1.0, (self._done + part) / self.total))
        self.callback(stage, self._shown)

    def within(self, stage: str) -> Callable[[float], None]:
        """A one-argument callback for the inside of ``stage`` (explainer batches)."""
        return lambda fraction: self.report(stage, fraction)

    def finish(self, stage: str) -> None:
        self._done += self.weights.get(stage, 0.0)
        self.report(stage, 0.0)

    def done(self) -> None:
        if self.callback is not None:
            self.callback("done", 1.0)
