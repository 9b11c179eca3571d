"""The speeder rule: who answered too fast to have watched the videos.

A participant's *section time* is the seconds from a section's videos being shown to
its Q2 answer (``q1_time_spent_s + time_spent_s``, measured on the server). A
participant is a **speeder** when the median of their section times (over the sections
they finished) is below :data:`SPEEDER_FRACTION` (one third) of the study's typical
value, the median of those medians over every participant who did not withdraw. With
fewer than :data:`MIN_PARTICIPANTS` such participants there is no typical value yet
and nobody is flagged. (The one-third-of-the-median rule is the common convention for
online surveys; the median, unlike a mean, is not moved by the speeders themselves or
by someone who took a break.)

No pandas and no SQLAlchemy here: the database (``participants.csv``) and the analysis
of an imported table use the same rule.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping

#: A speeder's median section time is below this share of the study's median.
SPEEDER_FRACTION = 1 / 3
#: Participants with section times needed before anyone is flagged.
MIN_PARTICIPANTS = 3


def median_section_time(times: Iterable[tuple[float | None, float | None]]) -> float | None:
    """The median section time of one participant from (Q1 seconds, Q2 seconds) of
    each finished section; None when no section has both."""
    totals = []
    for q1, q2 in times:
        if q1 is None or q2 is None:
            continue
        q1, q2 = float(q1), float(q2)
        if math.isnan(q1) or math.isnan(q2):
            continue
        totals.append(q1 + q2)
    return statistics.median(totals) if totals else None


def speeders(medians: Mapping[str, float | None], withdrawn: Iterable[str] = ()) -> dict[str, bool]:
    """``participant -> speeder`` for every participant in ``medians`` (their median
    section time, None for no finished section: never a speeder). ``withdrawn``
    participants are flagged by the rule but do not set the typical value."""
    out = {pid: False for pid in medians}
    gone = set(withdrawn)
    norm = [m for pid, m in medians.items() if m is not None and pid not in gone]
    if len(norm) < MIN_PARTICIPANTS:
        return out
    limit = SPEEDER_FRACTION * statistics.median(norm)
    for pid, m in medians.items():
        out[pid] = m is not None and m < limit
    return out
