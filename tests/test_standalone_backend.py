"""The cpp_standalone backend: built once, re-run with run_args, same results as runtime.

A C++ build costs seconds to tens of seconds, so the file builds five projects
in all: one spec with everything a spec can ask for (traces, spikes,
refractoriness, expression initial values depending on the parameters, the
``iteration`` variable, end values, online error), with 1 and with 2 OpenMP
threads, and the three fitters of a script in the manual's standalone mode.
"""

import os

import numpy as np
import pytest
from brian2 import amp, get_dimensions, mV, ms, nS, pF, second, set_device
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
from brian2.devices.device import get_device, reset_device, runtime_device

from modelfit_core import (ConfigurationError, OnlineTraceFitter, Pipeline, SpikeFitter,
                           TraceFitter)
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.contracts.simulation import InputSignal, SimulationSpec, online_error_variable
from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend
from modelfit_plugins.backends.brian2_standalone import Brian2StandaloneBackend

from conftest import BOUNDS, DT, N_STEPS, N_TRACES, PASSIVE_MODEL, El, step_currents

MODEL = """
dv/dt = (gl*(El - v) + I + iteration*pA)/C : volt (unless refractory)
gl : siemens (constant)
C : farad (constant)
tau = C/gl : second
"""
PARAMS = [{"gl": np.array([10e-9, 30e-9, 8e-9]), "C": np.array([50e-12, 80e-12, 20e-12])},
          {"gl": np.array([5e-9, 12e-9, 60e-9]), "C": np.array([100e-12, 30e-12, 45e-12])}]
ITERATIONS = [3.0, 40.0]
T_START_STEPS = 20
STEP_WEIGHTS = np.linspace(0, 1, N_STEPS)
"""The weights of the running sum (the gradient optimizer's kind of sum)."""


def target_trace():
    t = np.arange(N_STEPS) * float(DT)
    return np.array([-0.065 + 0.01 * np.sin(2 * np.pi * 50 * t + k) for k in range(N_TRACES)])


def make_spec():
    currents = np.asarray(step_currents())
    return SimulationSpec(
        model=MODEL, parameter_names=("gl", "C"), n_samples=3, n_traces=N_TRACES,
        n_steps=N_STEPS, dt=float(DT),
        inputs={"I": InputSignal(values=currents, dim=get_dimensions(amp))},
        record=("v",), record_spikes=True, threshold="v > -60*mV", reset="v = El",
        refractory=1 * ms, param_init={"v": "El + C/(10*pF)*mV"}, namespace={"El": El},
        uses_iteration=True, targets={"v": InputSignal(target_trace(), get_dimensions(mV))},
        record_final=("tau", online_error_variable("v"), "running_v"),
        online_error={"v": T_START_STEPS * float(DT)}, name="sa_test",
        running_sums=("running_v",), step_weights={"step_weight": STEP_WEIGHTS},
        running_code="running_v += step_weight(t) * (v - v_target)/mV")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Runtime, standalone with 1 thread and with 2 threads, each prepared once;
    counts the compilations."""
    compiled = []
    original = CPPStandaloneDevice.compile_source

    def counting(self, *args, **kwargs):
        compiled.append(self)
        return original(self, *args, **kwargs)

    spec = make_spec()
    root = tmp_path_factory.mktemp("standalone")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CPPStandaloneDevice, "compile_source", counting)
        assert get_device() is runtime_device
        sims = {"runtime": Brian2RuntimeBackend().prepare(spec),
                1: Brian2StandaloneBackend(threads=1, directory=root, keep=False).prepare(spec),
                2: Brian2StandaloneBackend(threads=2, directory=root, keep=False).prepare(spec)}
        results = {key: [sim.run(params, iteration=it) for params, it in zip(PARAMS, ITERATIONS)]
                   for key, sim in sims.items()}
    assert get_device() is runtime_device, "the runtime device must be active again"
    yield {"sims": sims, "results": results, "compiled": compiled, "spec": spec}
    for sim in sims.values():
        sim.close()


# a C++ build, a dask cluster or sbi training: minutes on a shared 2-core machine
@pytest.mark.timeout(900)
@pytest.mark.parametrize("threads", [1, 2])
def test_results_equal_runtime(builds, threads):
    """Traces, spikes, end values and online errors as the runtime backend's, for
    two rounds with different parameters and iteration values."""
    for expected, got in zip(builds["results"]["runtime"], builds["results"][threads]):
        np.testing.assert_allclose(got.traces["v"], expected.traces["v"], rtol=1e-9,
                                   atol=1e-12)
        assert sum(len(s) for sample in expected.spikes for s in sample) > 5
        for sample_expected, sample_got in zip(expected.spikes, got.spikes):
            for train_expected, train_got in zip(sample_expected, sample_got):
                np.testing.assert_allclose(train_got, train_expected, rtol=0, atol=1e-12)
        for name in ("tau", online_error_variable("v"), "running_v"):
            np.testing.assert_allclose(got.final[name], expected.final[name], rtol=1e-9)


def test_parameters_and_iteration_reach_the_binary(builds):
    """Each round ran with its own values: initial v from the expression on C, and
    the iteration current shifts the traces."""
    first, second_round = builds["results"][1]
    for result, params in zip((first, second_round), PARAMS):
        v0 = result.traces["v"][:, 0, 0]
        np.testing.assert_allclose(v0, float(El) + params["C"] / 10e-12 * 1e-3, rtol=1e-12)
        np.testing.assert_allclose(result.final["tau"],
                                   np.repeat(params["C"] / params["gl"], N_TRACES))
    assert not np.allclose(first.traces["v"], second_round.traces["v"])


def test_online_error_equals_mse_of_recorded_traces(builds):
    """The error accumulated by the binary is MSEMetric's on the recorded trace."""
    for result in builds["results"][2]:
        recorded = result.traces["v"][:, :, T_START_STEPS:]
        mse = ((recorded - target_trace()[None, :, T_START_STEPS:]) ** 2).mean(axis=2)
        np.testing.assert_allclose(result.online_errors["v"], mse.ravel(), rtol=1e-9)


def test_running_sums_equal_sums_of_recorded_traces(builds):
    """The running sum (what a gradient round accumulates) is the weighted sum over the
    steps of the recorded trace, in the binary as in the runtime backend."""
    for result in builds["results"][1]:
        expected = ((result.traces["v"] - target_trace()[None]) / 1e-3 * STEP_WEIGHTS).sum(
            axis=2)
        np.testing.assert_allclose(result.final["running_v"], expected.ravel(), rtol=1e-9)


def test_compiled_once_and_binary_reused(builds):
    """One compilation per prepared simulation; more rounds run the same binary."""
    assert len(builds["compiled"]) == 2
    sim = builds["sims"][1]
    binary = os.path.join(sim.project_dir, "main")
    mtime = os.stat(binary).st_mtime_ns
    runs = sim.runs
    result = sim.run(PARAMS[0], iteration=ITERATIONS[0])
    np.testing.assert_allclose(result.traces["v"], builds["results"][1][0].traces["v"],
                               rtol=0, atol=0)
    assert sim.runs == runs + 1 and os.stat(binary).st_mtime_ns == mtime
    assert len(builds["compiled"]) == 2
    # the files written for each round's values do not pile up
    leftovers = [f for f in os.listdir(os.path.join(sim.project_dir, "static_arrays"))
                 if f.startswith("init_")]
    assert leftovers == []


def test_closing_removes_the_project(builds):
    sim = builds["sims"][2]
    assert os.path.isdir(sim.project_dir)
    sim.close()
    assert not os.path.exists(sim.project_dir)


def test_selected_by_name_with_options(tmp_path):
    pipe = Pipeline.from_names(backend="cpp_standalone", feedback=None,
                               backend_options={"threads": 3, "directory": str(tmp_path)},
                               registry=Registry(distributions=["modelfit-brian2"]))
    assert isinstance(pipe.backend, Brian2StandaloneBackend)
    assert pipe.backend.threads == 3 and pipe.backend.keep
    with pytest.raises(ConfigurationError, match="threads"):
        Brian2StandaloneBackend(threads=0)
    assert Brian2StandaloneBackend().threads >= 1  # default: every core


# -- the manual's standalone mode: set_device('cpp_standalone') before the fitters ----------
LIF = PASSIVE_MODEL.replace(": volt", ": volt (unless refractory)", 1)
SPIKING = dict(threshold="v > -60*mV", reset="v = El", refractory=2 * ms)
TRUE = {"gl": 10 * nS, "C": 50 * pF}


def fits(passive_data, spikes, optimizer_seed, backend=None):
    """A TraceFitter, an OnlineTraceFitter and a SpikeFitter in one script."""
    from modelfit_core import GammaFactor, MSEMetric, NevergradOptimizer

    common = dict(input={"I": passive_data["I"]}, dt=DT, n_samples=4, param_init={"v": El},
                  backend=backend)
    trace = TraceFitter(model=PASSIVE_MODEL, output={"v": passive_data["v"]}, **common)
    trace.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=optimizer_seed),
              metric=MSEMetric(t_start=2 * ms), callback=None, **BOUNDS)
    online = OnlineTraceFitter(model=PASSIVE_MODEL, output={"v": passive_data["v"]},
                               t_start=2 * ms, **common)
    online.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=optimizer_seed), callback=None,
               **BOUNDS)
    spike = SpikeFitter(model=LIF, output=spikes, **SPIKING, **common)
    spike.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=optimizer_seed),
              metric=GammaFactor(delta=1 * ms, time=N_STEPS * DT), callback=None, **BOUNDS)
    return trace, online, spike


# a C++ build, a dask cluster or sbi training: minutes on a shared 2-core machine
@pytest.mark.timeout(900)
def test_manual_standalone_mode_several_fitters_in_one_script(passive_data, tmp_path):
    """set_device('cpp_standalone') selects the backend; three fitters, generate()
    and refine() in one process, each fitter with its own build; the results are
    the runtime backend's; the script's device is left as it was."""
    probe = SpikeFitter(model=LIF, input={"I": passive_data["I"]}, output=[[0.01] * second] * 2,
                        dt=DT, n_samples=1, param_init={"v": El}, **SPIKING)
    spikes = probe.generate_spikes(params=TRUE)
    assert all(len(train) > 0 for train in spikes)
    expected = fits(passive_data, spikes, optimizer_seed=5, backend="runtime")

    set_device("cpp_standalone", directory=str(tmp_path))
    try:
        user_device = get_device()
        got = fits(passive_data, spikes, optimizer_seed=5)
        assert all(isinstance(f.problem.backend, Brian2StandaloneBackend) for f in got)
        assert get_device() is user_device and not user_device.has_been_run
        dirs = {f.simulator.project_dir for f in got}
        assert len(dirs) == 3 and all(os.path.dirname(d) == str(tmp_path) for d in dirs)
        trace = got[0]
        generated = trace.generate_traces()  # runtime mode, as the manual says
        assert generated.shape == (N_TRACES, N_STEPS)
        refined, _ = trace.refine(max_nfev=3, callback=None)
        assert set(refined) == {"gl", "C"}
        assert get_device() is user_device
    finally:
        reset_device()
    assert get_device() is runtime_device
    for fitter_expected, fitter_got in zip(expected, got):
        rounds_expected, rounds_got = fitter_expected.history.rounds, fitter_got.history.rounds
        np.testing.assert_allclose(rounds_got[0].parameters, rounds_expected[0].parameters)
        for round_expected, round_got in zip(rounds_expected, rounds_got):
            np.testing.assert_allclose(round_got.errors, round_expected.errors, rtol=1e-8)
