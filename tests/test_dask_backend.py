"""The dask backend: same results as the runtime backend, survives a killed worker (issue 7)."""

import os
import signal
import threading
import time

import numpy as np
import pytest
from brian2 import mV, ms, nS, pF

from modelfit_core import (GammaFactor, MSEMetric, NevergradOptimizer, Pipeline,
                           TraceFitter)
from modelfit_core.registry.plugin_registry import Registry
from passive_membrane import BOUNDS, MODEL, recordings


@pytest.fixture(scope="module")
def dask_backend():
    backend = Registry(distributions=["modelfit-brian2"]).lookup("backends", "dask")(n_workers=2)
    yield backend
    backend.shutdown()


def fit(backend, n_steps=300, n_rounds=3, callback=None, n_samples=10):
    currents, v = recordings(n_steps)
    pipe = Pipeline.from_names(seed=5, feedback=callback, backend=backend,
                               registry=Registry(distributions=["modelfit-brian2"]))
    fitter = pipe.trace_fitter(model=MODEL, input={"I": currents}, output={"v": v},
                               dt=0.1 * ms, n_samples=n_samples, param_init={"v": -70 * mV},
                               namespace={"El": -70 * mV})
    fitter.fit(n_rounds=n_rounds, **BOUNDS)
    return fitter.results(format="dataframe")


@pytest.mark.slow
def test_same_seed_same_result_as_runtime(dask_backend):
    """Batches split over 2 workers (odd n_samples: the last chunk is padded)."""
    distributed = fit(dask_backend, n_samples=11)
    local = fit("runtime", n_samples=11)
    assert distributed.equals(local)


@pytest.mark.slow
def test_killed_worker_share_is_recomputed(dask_backend):
    """A worker SIGKILLed in the middle of a round: its chunk runs again elsewhere and
    the fit ends exactly as without the failure."""
    client = dask_backend.client or dask_backend._ensure_client()
    # asked here, in the main thread: the killer thread must not use the client
    victim = sorted(client.run(os.getpid).values())[0]
    n_steps = 50000  # about 0.35 s per round here: the kill lands well inside round 2
    events = {}

    def kill_a_worker_inside_the_next_round(*_args):
        if "killed" in events and "round_after_kill_ended" not in events:
            events["round_after_kill_ended"] = time.monotonic()
        if "scheduled" in events:
            return False
        events["scheduled"] = time.monotonic()

        def kill():
            time.sleep(0.02)
            os.kill(victim, signal.SIGKILL)
            events["killed"] = time.monotonic()
        threading.Thread(target=kill, daemon=True).start()
        return False

    distributed = fit(dask_backend, n_steps=n_steps, n_rounds=3,
                      callback=kill_a_worker_inside_the_next_round, n_samples=6)
    assert "killed" in events, "no worker was killed"
    assert events["killed"] < events["round_after_kill_ended"], "the kill missed the round"
    local = fit("runtime", n_steps=n_steps, n_rounds=3, n_samples=6)
    # nothing counted twice: the recomputed chunk replaces the lost one
    assert distributed.groupby("round").size().tolist() == [6, 6, 6]
    assert len(distributed) == len(local) == 3 * 6
    assert distributed.equals(local)


def passive_fitter(backend, n_samples=4):
    currents, v = recordings(300)
    return TraceFitter(model=MODEL, input={"I": currents}, output={"v": v}, dt=0.1 * ms,
                       n_samples=n_samples, param_init={"v": -70 * mV}, backend=backend,
                       namespace={"El": -70 * mV})


@pytest.mark.slow
def test_workers_send_errors_not_traces(dask_backend):
    """After fit(), the prepared simulation returns errors computed on the workers."""
    fitter = passive_fitter(dask_backend)
    fitter.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1), metric=MSEMetric(),
               callback=None, **BOUNDS)
    n = fitter.n_samples  # the simulation is prepared for the optimizer's population
    parameters = {"gl": np.full(n, 10e-9), "C": np.full(n, 200e-12)}
    result = fitter.simulator.run(parameters)
    assert result.traces == {} and set(result.errors) == {"v"}
    assert result.errors["v"].shape == (n,) and np.all(result.errors["v"] >= 0)
    fitter.simulator.compute_errors_with(None)  # traces again
    assert fitter.simulator.run(parameters).traces["v"].shape == (n, 2, 300)


# a C++ build, a dask cluster or sbi training: minutes on a shared 2-core machine
@pytest.mark.timeout(900)
@pytest.mark.slow
@pytest.mark.parametrize("online_error", [False, True])
def test_traces_and_spikes_on_workers_equal_runtime(dask_backend, online_error):
    """Two outputs (v with MSE, spikes with GammaFactor), scored on the workers."""
    lif = MODEL.replace(": volt", ": volt (unless refractory)")
    currents, _ = recordings(600)
    options = dict(model=lif, input={"I": currents}, dt=0.1 * ms, n_samples=5,
                   param_init={"v": -70 * mV}, namespace={"El": -70 * mV},
                   threshold="v > -60*mV", reset="v = -70*mV", refractory=2 * ms)
    probe = TraceFitter(output={"v": recordings(600)[1]}, **options)
    generated = probe.generate(output_var=["v", "spikes"], params={"gl": 8 * nS, "C": 100 * pF})
    assert any(len(train) for train in generated["spikes"])
    outcomes = []
    for backend in (dask_backend, "runtime"):
        fitter = TraceFitter(output={"v": generated["v"], "spikes": generated["spikes"]},
                             backend=backend, **options)
        fitter.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=4), callback=None,
                   metric={"v": MSEMetric(normalization=10 * mV),
                           "spikes": GammaFactor(delta=1 * ms, time=60 * ms)},
                   online_error=online_error, **BOUNDS)
        outcomes.append(fitter.results(format="dataframe"))
    assert outcomes[0].equals(outcomes[1])


@pytest.mark.slow
def test_lost_scattered_data_is_sent_again(dask_backend):
    """When the workers lose the scattered specification and metrics (a dead worker
    held the last copy), the round sends them again instead of failing."""
    fitter = passive_fitter(dask_backend)
    fitter.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1), callback=None, **BOUNDS)
    simulation = fitter.simulator
    n = fitter.n_samples
    parameters = {"gl": np.full(n, 10e-9), "C": np.full(n, 200e-12)}
    before = simulation.run(parameters).errors["v"]
    lost = simulation._spec_future
    lost.cancel()
    after = simulation.run(parameters).errors["v"]
    assert simulation._spec_future is not lost
    np.testing.assert_array_equal(before, after)


UNGUARDED_SCRIPT = """
import numpy as np
from brian2 import *
from modelfit_core import *

El = -70*mV
model = '''
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
'''
inputs = np.zeros((2, 100))*amp
inputs[:, 20:] = 0.2*nA
fitter = TraceFitter(model=model, input={'I': inputs}, output={'v': np.zeros((2, 100))*mV + El},
                     dt=0.1*ms, n_samples=4, param_init={'v': El},
                     backend=DaskBackend(n_workers=1))
best, error = fitter.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=1), metric=MSEMetric(),
                         callback=None, gl=[1*nS, 10*nS], C=[10*pF, 100*pF])
print("FITTED", sorted(best), __file__.endswith("script.py"))
"""


@pytest.mark.slow
def test_a_script_without_main_guard_fits_on_dask(tmp_path):
    """Every script of the manual runs at module level, without
    ``if __name__ == "__main__":``; the worker (a spawned process, which imports the
    script's module as __mp_main__) must not run it again."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(UNGUARDED_SCRIPT)
    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               timeout=300, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "FITTED ['C', 'gl'] True" in completed.stdout
    assert "Nanny failed" not in completed.stderr and "ERROR" not in completed.stderr


@pytest.mark.slow
def test_gradient_rounds_on_workers_equal_runtime(dask_backend):
    """The gradient optimizer's sums accumulated on the workers (odd n_samples: padded)."""
    def gradient_fit(backend):
        currents, v = recordings(300)
        pipe = Pipeline.from_names(optimizer="gradient", seed=3, feedback=None,
                                   backend=backend,
                                   registry=Registry(distributions=["modelfit-brian2"]))
        fitter = pipe.trace_fitter(model=MODEL, input={"I": currents}, output={"v": v},
                                   dt=0.1 * ms, n_samples=5, param_init={"v": -70 * mV},
                                   namespace={"El": -70 * mV}, method="euler")
        fitter.fit(n_rounds=3, **BOUNDS)
        return fitter.current_fit.history.rounds

    for here, there in zip(gradient_fit("runtime"), gradient_fit(dask_backend)):
        assert np.array_equal(here.parameters, there.parameters)
        assert np.allclose(here.normal_equations.jtr, there.normal_equations.jtr, rtol=1e-12)
