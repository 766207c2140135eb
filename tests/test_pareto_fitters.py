"""``fit(objectives=...)`` on every fitter (TraceFitter with eFEL features,
SpikeFitter with spikes and voltage, OnlineTraceFitter), a penalty as an objective,
the dask backend, the plots and the command line (issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from brian2 import amp, mV, ms, nS, pF, second

from modelfit_core import (FeatureMetric, GammaFactor, MSEMetric, OnlineTraceFitter,
                           SpikeFitter, TraceFitter)
from modelfit_core.tools.cli import main
from modelfit_core.tools.pareto_plots import (front_table, plot_front_traces,
                                              plot_parallel_coordinates, plot_pareto_front)

from conftest import BOUNDS, DT, PASSIVE_MODEL
from test_cli import CONFIG as CLI_CONFIG

FEATURES = ["maximum_voltage", "steady_state_voltage_stimend",
            "decay_time_constant_after_stim"]
STIMULI = [(2 * ms, 15 * ms), (5 * ms, 18 * ms)]


def test_features_become_objectives(make_fitter, passive_data):
    metric = FeatureMetric(STIMULI, FEATURES, n_jobs=1)
    fitter = make_fitter(n_samples=8)
    fitter.fit(n_rounds=3, metric=metric, objectives="features", optimizer="nsga3",
               callback=None, **BOUNDS)
    assert fitter.objective_names == tuple(FEATURES)
    results = fitter.results(format="dataframe")
    objectives = results[[f"objective_{f}" for f in FEATURES]].to_numpy()
    np.testing.assert_allclose(objectives.sum(axis=1), results["errors"], rtol=1e-12)
    # the total is the metric's own error (what a single-objective fit minimizes)
    traces = np.asarray(fitter.generate(output_var="v"))
    expected = metric.calc(traces[None], np.asarray(passive_data["v"]), DT)[0]
    assert float(fitter.best_error) == pytest.approx(expected, rel=1e-9)
    assert set(fitter.best_objectives) == set(FEATURES)


def test_a_penalty_is_one_more_objective(make_fitter):
    fitter = make_fitter(model=PASSIVE_MODEL + "cost = gl/nS : 1\n", n_samples=8)
    fitter.fit(n_rounds=2, objectives="separate", metric={"v": MSEMetric(normalization=mV)},
               penalty="cost", callback=None, **BOUNDS)
    assert fitter.objective_names == ("v", "cost")
    front = fitter.pareto_front(format="dict", use_units=False)
    np.testing.assert_allclose(front["objectives"]["cost"], front["gl"] / 1e-9)


LIF = """
dv/dt = (gl*(El - v) + I)/C : volt (unless refractory)
gl : siemens (constant)
C : farad (constant)
"""


def lif_fitter(spikes_only=False):
    currents = np.zeros((2, 600))
    currents[0, 100:], currents[1, 100:] = 0.3e-9, 0.6e-9
    make = dict(model=LIF, input={"I": currents * amp}, dt=0.1 * ms, n_samples=8,
                threshold="v > -50*mV", reset="v = -70*mV", refractory=2 * ms,
                param_init={"v": -70 * mV}, namespace={"El": -70 * mV})
    truth = SpikeFitter(output=[np.array([0.05]) * second] * 2, **make)
    spikes = truth.generate(output_var="spikes", params={"gl": 10 * nS, "C": 200 * pF})
    voltage = truth.generate(output_var="v", params={"gl": 14 * nS, "C": 150 * pF})
    output = {"spikes": [s * second for s in spikes], "v": voltage}
    return SpikeFitter(output=output, **make)


def test_spike_fitter_trades_spike_timing_against_the_voltage():
    fitter = lif_fitter()
    fitter.fit(n_rounds=3, objectives="separate", callback=None,
               metric={"spikes": GammaFactor(delta=1 * ms, time=60 * ms),
                       "v": MSEMetric(normalization=mV)},
               gl=[2 * nS, 40 * nS], C=[50 * pF, 500 * pF])
    assert fitter.objective_names == ("spikes", "v")
    assert len(fitter.pareto_front()) >= 1


def test_online_trace_fitter_scores_each_output_online():
    currents = np.zeros((1, 50))
    model = "dv/dt = (I - v)/ms : 1\ndw/dt = (I - w)/ms : 1\nx : 1 (constant)"
    fitter = OnlineTraceFitter(model=model, input={"I": currents},
                               output={"v": np.zeros((1, 50)), "w": np.full((1, 50), 2.0)},
                               dt=0.1 * ms, n_samples=8, param_init={"v": "x", "w": "x"},
                               method="euler")
    fitter.fit(n_rounds=2, objectives="separate", callback=None, x=[-3, 3])
    front = fitter.pareto_front(format="dataframe")
    assert fitter.objective_names == ("v", "w") and len(front) >= 1
    assert (front["objective_v"] >= 0).all()


def test_plots_and_the_results_command(tmp_path, capsys, make_fitter):
    db = tmp_path / "fit.db"
    fitter = make_fitter(n_samples=8, output={"v": make_fitter().output[0],
                                              "v2": make_fitter().output[0] * 1.1},
                         model=PASSIVE_MODEL + "v2 = v : volt\n",
                         storage=f"sqlite:///{db}", study="mo")
    fitter.fit(n_rounds=2, objectives="separate", callback=None, **BOUNDS)
    for figure in (plot_pareto_front(fitter, path=tmp_path / "front.png"),
                   plot_parallel_coordinates(fitter, path=tmp_path / "parallel.png"),
                   plot_front_traces(fitter, path=tmp_path / "traces.png")):
        assert figure.axes
    assert all((tmp_path / name).stat().st_size > 1000
               for name in ("front.png", "parallel.png", "traces.png"))
    assert "Pareto front" in front_table(fitter.history)
    capsys.readouterr()
    assert main(["results", str(db), "--output", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "Pareto front:" in out and "*" in out
    assert (tmp_path / "plots" / "front.png").exists()


CONFIG = CLI_CONFIG.split("[fit]")[0] + """[fit]
n_samples = 8
n_rounds = 2
objectives = "features"
metric = "efel"
metric_options = { stim_times = [["2*ms", "15*ms"]], n_jobs = 1, feat_list = [
    "maximum_voltage", "steady_state_voltage_stimend"] }
seed = 3
feedback = false
storage = "sqlite:///fit.db"

[bounds]
gl = ["1*nS", "100*nS"]
C = ["10*pF", "500*pF"]
"""


def test_a_config_file_runs_a_multi_objective_fit(tmp_path, passive_data, capsys):
    pd.DataFrame(np.asarray(passive_data["I"])).to_csv(tmp_path / "input.csv")
    pd.DataFrame(np.asarray(passive_data["v"]) * 1e3).to_csv(tmp_path / "output.csv")
    (tmp_path / "fit.toml").write_text(CONFIG)
    assert main(["fit", str(tmp_path / "fit.toml")]) == 0
    front = pd.read_csv(tmp_path / "results" / "front.csv")
    assert {"objective_maximum_voltage", "objective_steady_state_voltage_stimend"} <= set(front)
    assert (tmp_path / "results" / "front.png").exists()
    capsys.readouterr()
    assert main(["results", str(tmp_path / "fit.db")]) == 0
    assert "Pareto front:" in capsys.readouterr().out
    (tmp_path / "bad.toml").write_text(CONFIG.replace('"features"', '"pareto"'))
    assert main(["fit", str(tmp_path / "bad.toml")]) == 2
    assert "objectives" in capsys.readouterr().err


@pytest.mark.slow
def test_the_dask_backend_gives_the_same_front(make_fitter):
    from modelfit_core.registry.plugin_registry import Registry
    from modelfit_plugins.optimizers.pymoo_multiobjective import NSGA2Optimizer
    backend = Registry(distributions=["modelfit-brian2"]).lookup("backends", "dask")(
        n_workers=2)
    try:
        fronts = []
        for where in (backend, "runtime"):
            fitter = make_fitter(n_samples=8, backend=where)
            fitter.fit(n_rounds=2, objectives="features", optimizer=NSGA2Optimizer(seed=2),
                       metric=FeatureMetric(STIMULI, FEATURES, n_jobs=1), callback=None,
                       **BOUNDS)
            fronts.append(fitter.pareto_front(format="dataframe"))
    finally:
        backend.shutdown()
    pd.testing.assert_frame_equal(fronts[0], fronts[1])
