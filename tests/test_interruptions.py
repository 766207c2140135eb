"""Ctrl-C (SIGINT) during a fit loses nothing and scores nothing cut short.

Brian replaces Python's SIGINT handler: during a simulation, Ctrl-C only asks
the simulation to stop early. The backends turn a simulation stopped early
into KeyboardInterrupt, so that a cut simulation is never scored, stored or
best; the fit then stops with every finished round kept (in memory and in the
database) and raises KeyboardInterrupt. A resumed fit, or a plain fit() on the
same fitter, ends exactly as an uninterrupted fit.

Real signals throughout: sent to subprocesses, or to this process from a thread
once Brian reports a running simulation (``Network._globally_running``).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from brian2 import Network, amp, get_dimensions, mV, ms, nS, pF
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

from modelfit_core import Pipeline
from modelfit_core.contracts.simulation import InputSignal, SimulationSpec
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results.storage import read_results
from modelfit_plugins.backends.brian2_runtime import RuntimeSimulation

from storage_helpers import (INTERRUPTED_EXIT, query, run_worker, stored_rounds,
                             wait_for_line, wait_for_rounds, worker_command)

MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
BOUNDS = {"gl": [1 * nS, 50 * nS], "C": [50 * pF, 500 * pF]}


@pytest.fixture(autouse=True)
def brian_handles_ctrl_c():
    handler = signal.getsignal(signal.SIGINT)
    if type(handler).__module__ != "brian2":
        pytest.skip(f"Brian's SIGINT handler is not installed here ({handler!r})")
    yield
    assert not Network._globally_stopped and not Network._globally_running


def interrupt_when_simulating(after=lambda: True, delay=0.05, timeout=120):
    """From a thread: once ``after()`` holds and a simulation runs, send SIGINT to this
    process (the main thread gets it, in Brian's handler)."""
    def watch():
        deadline = time.time() + timeout
        while not (after() and Network._globally_running):
            if time.time() > deadline:
                return
            time.sleep(0.0005)
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# -- the runtime backend ------------------------------------------------------------------
def long_spec(n_steps=20000):
    currents = np.zeros((1, n_steps))
    currents[0, 100:] = 0.2e-9
    return SimulationSpec(model=MODEL, parameter_names=("gl", "C"), n_samples=2, n_traces=1,
                          n_steps=n_steps, dt=1e-4,
                          inputs={"I": InputSignal(values=currents, dim=get_dimensions(amp))},
                          record=("v",), param_init={"v": -70e-3},
                          namespace={"El": -70 * mV}, name="modelfit_interrupted")


PARAMS = {"gl": np.array([10e-9, 30e-9]), "C": np.array([100e-12, 200e-12])}


def test_a_stopped_runtime_simulation_raises_instead_of_returning_a_cut_result():
    simulation = RuntimeSimulation(long_spec(), NumpyCodeObject)
    # the first run goes through Network.run, which Brian stops early on Ctrl-C
    interrupt_when_simulating()
    with pytest.raises(KeyboardInterrupt, match="stopped before its end"):
        simulation.run(PARAMS)
    complete = simulation.run(PARAMS).traces
    assert complete["v"].shape == (2, 1, 20000)
    # later runs step the compiled code themselves: Ctrl-C stops them too
    interrupt_when_simulating()
    with pytest.raises(KeyboardInterrupt, match="stopped before its end"):
        simulation.run(PARAMS)
    again = simulation.run(PARAMS).traces
    np.testing.assert_array_equal(again["v"], complete["v"])  # nothing of the cut run left
    simulation.close()


# -- a fit in this process ------------------------------------------------------------------
def make_fitter(storage=None, n_steps=5000):
    t = np.arange(n_steps) * 1e-4
    currents = np.zeros((2, n_steps))
    currents[:, 30:] = [[0.1e-9], [0.3e-9]]
    v = -70e-3 + currents / 10e-9 * (1 - np.exp(-np.clip(t - 3e-3, 0, None) / 20e-3))
    pipe = Pipeline.from_names(seed=5, feedback=None, storage=storage, study="s",
                               backend_options={"codegen_target": "numpy"},
                               registry=Registry(distributions=["modelfit-brian2"]))
    return pipe.trace_fitter(model=MODEL, input={"I": currents * amp},
                             output={"v": v * 1e3 * mV}, dt=0.1 * ms, n_samples=4,
                             param_init={"v": -70 * mV}, namespace={"El": -70 * mV})


@pytest.fixture(scope="module")
def uninterrupted():
    fitter = make_fitter()
    fitter.fit(n_rounds=5, **BOUNDS)
    return fitter.results(format="dataframe"), fitter.best_params


def test_an_interrupted_fit_keeps_its_rounds_and_continues_exactly(uninterrupted, tmp_path):
    expected, expected_best = uninterrupted
    db = tmp_path / "fit.db"
    fitter = make_fitter(storage=f"sqlite:///{db}")
    interrupt_when_simulating(after=lambda: fitter.history is not None and
                              len(fitter.history.rounds) >= 2)
    with pytest.raises(KeyboardInterrupt):
        fitter.fit(n_rounds=5, **BOUNDS)
    done = len(fitter.history.rounds)
    assert 2 <= done < 5
    # memory and disk agree, and the fitter is usable
    assert len(fitter.results(format="dataframe")) == done * fitter.n_samples
    assert stored_rounds(db, "s") == done
    assert read_results(db, "s", format="dataframe").equals(
        expected.iloc[:done * fitter.n_samples])
    assert fitter.best_params is not None
    assert query(db, "SELECT COUNT(*) FROM leases") == [(0,)]
    # a copy of the database, as another process would find it
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    # a plain fit() continues where the interruption left off
    fitter.fit(n_rounds=5 - done, **BOUNDS)
    assert fitter.results(format="dataframe").equals(expected)
    assert fitter.best_params == expected_best
    assert read_results(db, "s", format="dataframe").equals(expected)
    # and resuming the copy in a new fitter ends the same
    resumed = make_fitter(storage=f"sqlite:///{copy}")
    resumed.fit(n_rounds=5, resume=True, **BOUNDS)
    assert resumed.results(format="dataframe").equals(expected)


def test_resume_in_the_same_fitter_after_an_interruption(uninterrupted, tmp_path):
    expected, _ = uninterrupted
    fitter = make_fitter(storage=f"sqlite:///{tmp_path / 'fit.db'}")
    interrupt_when_simulating(after=lambda: fitter.history is not None and
                              len(fitter.history.rounds) >= 1)
    with pytest.raises(KeyboardInterrupt):
        fitter.fit(n_rounds=5, **BOUNDS)
    fitter.fit(n_rounds=5, resume=True, **BOUNDS)
    assert fitter.results(format="dataframe").equals(expected)


# -- fits in other processes ---------------------------------------------------------------
def test_sigint_after_stored_rounds_keeps_them_and_resumes_exactly(tmp_path):
    n_rounds = 8
    reference = run_worker(tmp_path / "ref.db", "s", n_rounds)
    db = tmp_path / "fit.db"
    process = subprocess.Popen(worker_command(db, "s", n_rounds, "--sleep", 0.4,
                                              "--catch-interrupt"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rounds(process, db, "s", 2)
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == INTERRUPTED_EXIT, err[-3000:]
    in_memory = int([l for l in out.splitlines() if l.startswith("INTERRUPTED")][0].split()[1])
    done = stored_rounds(db, "s")
    assert 2 <= done < n_rounds and in_memory == done
    # only complete rounds, each with a finite error or flagged as diverged
    counts = query(db, "SELECT round, COUNT(*), SUM(error IS NULL AND diverged = 0) FROM "
                       "evaluations GROUP BY round ORDER BY round")
    assert counts == [(k, 30, 0) for k in range(done)]  # rounds of a DE population
    assert query(db, "SELECT COUNT(*) FROM leases") == [(0,)]
    assert run_worker(db, "s", n_rounds, "--resume") == reference
    assert read_results(db, "s", format="dataframe").equals(
        read_results(tmp_path / "ref.db", "s", format="dataframe"))


def test_sigint_during_the_first_simulation_scores_and_stores_nothing(tmp_path):
    """The online error of a cut simulation would look like a complete one's."""
    db = tmp_path / "fit.db"
    process = subprocess.Popen(worker_command(db, "s", 2, "--steps", 1_000_000, "--online",
                                              "--codegen", "numpy", "--announce",
                                              "--catch-interrupt"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_line(process, "SIMULATING")
    time.sleep(0.2)
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == INTERRUPTED_EXIT, err[-3000:]
    assert "Simulation stop requested" in err  # Brian's handler stopped the simulation,
    assert "stopped before its end" in out  # and the backend raised KeyboardInterrupt
    assert "INTERRUPTED 0 none" in out  # nothing scored: no round, no best
    assert query(db, "SELECT COUNT(*) FROM evaluations") == [(0,)]
    assert stored_rounds(db, "s") == 0
    assert query(db, "SELECT COUNT(*) FROM leases") == [(0,)]


# -- the C++ standalone backend --------------------------------------------------------------
STANDALONE_WORKER = Path(__file__).with_name("standalone_interrupt_worker.py")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            if int(text[text.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


# a C++ build, a dask cluster or sbi training: minutes on a shared 2-core machine
@pytest.mark.timeout(900)
@pytest.mark.slow
def test_a_stopped_standalone_binary_is_never_scored(tmp_path):
    """Ctrl-C to the binary alone (it stops early and exits normally), to the worker
    alone (the binary finishes, but a stop was asked), and to both (a terminal's Ctrl-C):
    each run raises KeyboardInterrupt; a complete run afterwards gives its result."""
    process = subprocess.Popen([sys.executable, str(STANDALONE_WORKER), str(tmp_path),
                                "child", "worker", "group", "complete"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        wait_for_line(process, "PREPARED", timeout=400)
        for target in ("child", "worker", "group"):
            wait_for_line(process, "SIMULATING")
            time.sleep(0.3)  # the binary is in its simulation loop by now
            if target == "child":
                binaries = children_of(process.pid)
                assert len(binaries) == 1
                os.kill(binaries[0], signal.SIGINT)
            elif target == "worker":
                os.kill(process.pid, signal.SIGINT)
            else:
                os.killpg(process.pid, signal.SIGINT)
            line = wait_for_line(process, "RESULT")
            assert line.split()[1] == "INTERRUPTED", (target, line)
        wait_for_line(process, "SIMULATING")
        line = wait_for_line(process, "RESULT")
        assert line.split()[1] == "COMPLETE", line
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
