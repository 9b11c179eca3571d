"""``xai-study power``: agrees with a direct simulation through the analysis itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai_study.cli import main
from xai_study.errors import StudyError
from xai_study.study.analysis import fit_choice_model, power, prepare_responses
from xai_study.study.analysis.model import choice_sets
from xai_study.study.analysis.simulate import simulate_responses

EFFECTS = {"gradcam": 0.0, "shap": 0.35, "ltpa": -0.1, "bonettini": 0.1}
POSITIONS = [0.0, -0.25, -0.25, -0.35]


def test_power_agrees_with_a_direct_simulation():
    """Acceptance: the power of 'explainers differ' and 'position matters' equals the
    rejection rate of the analysis' own model on simulated responses tables (a different
    code path: responses -> choice sets -> model), within Monte Carlo error."""
    n, s = 20, 8
    table = power(n, s, EFFECTS, POSITIONS, taste_sd=0.5, simulations=300, seed=1)
    table = table.set_index("test")
    direct = {"explainer": [], "position": []}
    names = list(EFFECTS)
    for rep in range(100):
        df = simulate_responses(n, s, EFFECTS, POSITIONS, taste_sd=0.5, seed=5000 + rep)
        m = fit_choice_model(choice_sets(prepare_responses(df), names), names)
        for kind in direct:
            direct[kind].append(m.joint[kind]["p_value"] < 0.05)
    for kind, test in (("explainer", "explainers differ"), ("position", "position matters")):
        sim, rate = table.loc[test, "power"], float(np.mean(direct[kind]))
        se = math.sqrt(rate * (1 - rate) / 100 + sim * (1 - sim) / 300) or 0.01
        assert abs(sim - rate) < 3.5 * se, (kind, sim, rate)
        assert 0.15 < sim < 0.95  # a design in between: the check has teeth
    assert (table["mc_se"] > 0).all() and (table["simulations"] == 300).all()


def test_power_without_effects_is_the_size_of_the_test():
    zero = dict.fromkeys(EFFECTS, 0.0)
    table = power(40, 10, zero, taste_sd=0.5, simulations=400, seed=2).set_index("test")
    for test in ("explainers differ", "position matters"):
        # 40 clusters: the clustered Wald test is close to its level
        assert abs(table.loc[test, "power"] - 0.05) < 3.5 * math.sqrt(0.05 * 0.95 / 400), test


def test_power_grows_with_participants():
    small = power(10, 10, EFFECTS, simulations=150, seed=3).set_index("test")
    large = power(60, 10, EFFECTS, simulations=150, seed=3).set_index("test")
    assert large.loc["explainers differ", "power"] > small.loc["explainers differ", "power"] + 0.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"explainer_effects": {"a": 0.0}}, "at least 2 explainers"),
        ({"position_effects": [0.0, 1.0]}, "position effects"),
        ({"n_participants": 1}, "at least 2 participants"),
        ({"simulations": 0}, "simulations"),
    ],
    ids=["one-explainer", "positions", "participants", "simulations"],
)
def test_power_input_errors(kwargs, message):
    args = {"n_participants": 10, "n_sections": 5, "explainer_effects": EFFECTS, **kwargs}
    with pytest.raises(StudyError, match=message):
        power(**args)


def test_power_command_prints_and_writes(tmp_path, capsys):
    out = tmp_path / "power.csv"
    argv = ["power", "--participants", "10,20", "--sections", "5", "--simulations", "20",
            "--effects", "gradcam=0,shap=0.5", "--positions", "0,-0.2", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "10 participants x 5 sections (50 answers):" in text
    assert "explainers differ" in text and "position matters" in text
    import pandas as pd

    table = pd.read_csv(out)
    assert table["participants"].tolist() == [10] * 4 + [20] * 4
    assert set(table["test"]) == {"explainers differ", "position matters", "explainer:shap",
                                  "position:2"}  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--effects", "gradcam"], "NAME=NUMBER"),
        (["--effects", "gradcam=0,shap=x"], "not a number"),
        (["--effects", "gradcam=0,shap=1", "--participants", "0"], "positive whole"),
    ],
    ids=["no-value", "not-a-number", "zero-participants"],
)
def test_power_command_errors_are_one_line(extra, message, capsys):
    argv = ["power", "--participants", "10", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
