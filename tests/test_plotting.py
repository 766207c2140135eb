"""The plot functions build Figures without pyplot: backend and pyplot state untouched."""

import subprocess
import sys
import textwrap

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from brian2.units.fundamentalunits import DIMENSIONLESS, get_or_create_dimension
from matplotlib.figure import Figure

from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results.history import History, RoundRecord
from modelfit_core.tools.plotting import (plot_error_per_round, plot_parameters_explored,
                                          plot_traces)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIEMENS = get_or_create_dimension(m=-1, kg=-1, s=3, A=2)
FARAD = get_or_create_dimension(m=-2, kg=-1, s=4, A=2)


def make_history() -> History:
    """Three rounds of two parameters; round 1 holds a diverged (inf) error."""
    space = ParameterSpace(names=("gl", "C"), dims=(SIEMENS, FARAD),
                           lower=np.array([1e-9, 1e-11]), upper=np.array([1e-7, 5e-10]))
    history = History(space=space, error_dim=DIMENSIONLESS)
    rng = np.random.default_rng(0)
    for index in range(3):
        parameters = space.lower + rng.random((4, 2)) * (space.upper - space.lower)
        errors = rng.random(4) * 10.0 ** -index + 1e-3
        diverged = np.zeros(4, dtype=bool)
        if index == 1:
            errors[2], diverged[2] = np.inf, True
        history.add(RoundRecord(index=index, parameters=parameters, errors=errors,
                                diverged=diverged, objective_errors={}))
    return history


def call_traces(path=None):
    time_s = np.arange(50) * 1e-4
    recorded = np.vstack([-0.07 + 0.01 * np.sin(time_s * 300), -0.07 + 0.02 * time_s])
    fitted = recorded + 1e-3
    return plot_traces(recorded, fitted, 1e-4, title="test", path=path)


CALLS = {
    "plot_traces": call_traces,
    "plot_error_per_round": lambda path=None: plot_error_per_round(make_history(), path=path),
    "plot_parameters_explored":
        lambda path=None: plot_parameters_explored(make_history(), path=path),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_returns_figure_and_leaves_pyplot_alone(name):
    backend, fignums = matplotlib.get_backend(), plt.get_fignums()
    fig = CALLS[name]()
    assert isinstance(fig, Figure)
    assert fig.axes
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == fignums


@pytest.mark.parametrize("name", sorted(CALLS))
def test_path_writes_png(name, tmp_path):
    path = tmp_path / f"{name}.png"
    fignums = plt.get_fignums()
    fig = CALLS[name](path=path)
    assert isinstance(fig, Figure)
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE) and data.startswith(PNG_SIGNATURE)
    assert plt.get_fignums() == fignums
    # the returned figure can be saved again without pyplot
    again = tmp_path / "again.png"
    fig.savefig(again, dpi=100)
    assert again.read_bytes().startswith(PNG_SIGNATURE)


def test_all_diverged_history_plots(tmp_path):
    space = ParameterSpace(names=("a",), dims=(DIMENSIONLESS,), lower=np.array([0.0]),
                           upper=np.array([1.0]))
    history = History(space=space, error_dim=DIMENSIONLESS)
    history.add(RoundRecord(index=0, parameters=np.array([[0.2], [0.4]]),
                            errors=np.array([np.inf, np.inf]),
                            diverged=np.array([True, True]), objective_errors={}))
    assert isinstance(plot_parameters_explored(history, path=tmp_path / "p.png"), Figure)
    assert isinstance(plot_error_per_round(history, path=tmp_path / "e.png"), Figure)


def test_user_backend_kept_in_fresh_process(tmp_path):
    code = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")
        import numpy as np
        from modelfit_core.tools.plotting import plot_traces
        fig = plot_traces(np.zeros((2, 10)), np.ones((2, 10)), 1e-4,
                          path={str(tmp_path / "fresh.png")!r})
        import matplotlib.pyplot as plt
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert plt.get_fignums() == [], plt.get_fignums()
        print("ok", matplotlib.get_backend())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok svg"
    assert (tmp_path / "fresh.png").read_bytes().startswith(PNG_SIGNATURE)


def test_importing_module_does_not_import_matplotlib():
    code = ("import sys; import modelfit_core.tools.plotting; "
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
