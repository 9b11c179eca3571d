"""Per-participant randomisation of a study, reproducible from a stored seed.

For a participant with ``seed`` and counterbalancing ``arm`` (the participant's number
in arrival order, modulo the number of explainers):

- **sections**: ``sections_shown`` sections drawn without replacement and put in a random
  order;
- **left/right placement** of the fake video (Q1): balanced within the participant (half
  of the sections show the fake as Video 1, half as Video 2, in random order; with an odd
  number the extra one alternates with the arm's parity, so it balances across
  participants);
- **animation order** (Q2): a random base order of the explainers, rotated by
  ``position + arm`` for each section: a Latin square, so every explainer appears equally
  often in every slot within a participant (when the number of sections is a multiple
  of the number of explainers) and consecutive arms start in different slots.

The result is a plain dict (stored as JSON with the participant, so a later edit of the
study file cannot change what a participant already saw).
"""

from __future__ import annotations

import random
import secrets
from typing import Any

from xai_study.study.spec import StudySpec

SLOT_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def new_seed() -> int:
    """A fresh 31-bit random seed."""
    return secrets.randbelow(2**31 - 1) + 1


def make_assignment(study: StudySpec, seed: int, arm: int = 0) -> dict[str, Any]:
    """The assignment of ``study`` for one participant (deterministic in seed and arm)."""
    rng = random.Random(int(seed))
    n = study.sections_shown
    ids = [s.id for s in study.sections]
    chosen = rng.sample(ids, n)
    n_left = n // 2 + (n % 2 if arm % 2 == 0 else 0)
    fake_pos = [1] * n_left + [2] * (n - n_left)
    rng.shuffle(fake_pos)
    base = list(study.explainers)
    rng.shuffle(base)
    k = len(base)
    sections = []
    for i, sid in enumerate(chosen):
        shift = (i + arm) % k
        order = base[shift:] + base[:shift]
        sections.append({"section": sid, "fake_position": fake_pos[i], "order": order})
    return {"seed": int(seed), "arm": int(arm), "sections": sections}


def slot_labels(n: int) -> list[str]:
    """``["A", "B", ...]``: how the animations are named to the participant."""
    return list(SLOT_LABELS[:n])
