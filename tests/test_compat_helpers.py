"""What the compat layer's helpers do (the names of brian2modelfitting's API reference
that modelfit adds for ported scripts; tests/test_api_reference.py checks that they
exist with the documented signatures): utils, the fitter and inferencer helpers, the
metric helpers, ``tests.run``, and the simulators on real, tiny Brian networks.
"""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelfit_core.contracts.errors import ModelfitError

ROOT = Path(__file__).resolve().parents[1]


def _compat(module: str):
    return importlib.import_module(f"modelfit_core.compat.{module}")


# -- utils ---------------------------------------------------------------------------------
from modelfit_core.compat import utils as compat_utils  # noqa: E402


def test_make_dic():
    assert compat_utils.make_dic(["a", "b"], [1, 2]) == {"a": 1, "b": 2}
    rows = np.arange(6).reshape(2, 3)
    made = compat_utils.make_dic(["a", "b"], rows)
    assert made["b"].tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match="2 names but 3 values") as info:
        compat_utils.make_dic(["a", "b"], [1, 2, 3])
    assert isinstance(info.value, ModelfitError)


def test_callback_text_prints_the_text_feedback_line(capsys):
    from brian2 import nS
    compat_utils.callback_text([], [], {"gl": 10 * nS}, 0.5, 3, {})
    out = capsys.readouterr().out
    assert out.startswith("Round 3:") and "gl=10. nS" in out and "0.5" in out
    compat_utils.callback_text([], [], {"gl": 1.0}, 0.25, 4)  # brian2modelfitting 0.4's form
    assert "Round 4:" in capsys.readouterr().out


def test_callback_none_is_silent(capsys):
    assert compat_utils.callback_none([], [], {}, 1.0, 0, {}) is None
    assert capsys.readouterr().out == ""


def test_progress_bar_as_a_callback():
    stream = io.StringIO()
    bar = compat_utils.ProgressBar(total=3, file=stream, mininterval=0)
    for index in range(3):
        assert bar([], [], {}, 0.1, index, {}) is False
    bar.close()
    assert "3/3" in stream.getvalue()


def test_callback_setup_for_each_kind_of_callback():
    assert compat_utils.callback_setup("text", 5) is compat_utils.callback_text
    assert compat_utils.callback_setup(None, 5) is compat_utils.callback_none
    mine = lambda *args: True  # noqa: E731
    assert compat_utils.callback_setup(mine, 5) is mine

    class Callable:
        def __call__(self, *args):
            return False
    instance = Callable()
    assert compat_utils.callback_setup(instance, 5) is instance
    bar = compat_utils.callback_setup("progressbar", 2)
    assert isinstance(bar, compat_utils.ProgressBar)
    bar.close()
    for wrong in ("txet", 5):
        with pytest.raises(TypeError, match="callback") as info:
            compat_utils.callback_setup(wrong, 1)
        assert isinstance(info.value, ModelfitError)


# -- fitter and inferencer helpers ---------------------------------------------------------
from modelfit_core.compat import fitter as compat_fitter  # noqa: E402
from modelfit_core.compat import inferencer as compat_inferencer  # noqa: E402


def test_get_param_dic_repeats_each_sample_for_every_trace():
    expected = {"a": [1, 1, 1, 2, 2, 2], "b": [10, 10, 10, 20, 20, 20]}
    from_rows = compat_fitter.get_param_dic([[1, 10], [2, 20]], ["a", "b"], 3, 2)
    from_dicts = compat_fitter.get_param_dic([{"a": 1, "b": 10}, {"a": 2, "b": 20}],
                                             ["a", "b"], 3, 2)
    for result in (from_rows, from_dicts):
        assert {k: v.tolist() for k, v in result.items()} == expected
    from brian2 import nS
    with_units = compat_fitter.get_param_dic([{"g": 2 * nS}], ["g"], 2, 1)
    assert np.allclose(with_units["g"], [2e-9, 2e-9])
    with pytest.raises(ValueError, match="Expected 3 parameter sets"):
        compat_fitter.get_param_dic([[1, 10], [2, 20]], ["a", "b"], 3, 3)
    with pytest.raises(ValueError, match="lack b"):
        compat_fitter.get_param_dic([{"a": 1}], ["a", "b"], 1, 1)


def test_get_param_dict_gives_columns():
    values = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    result = compat_inferencer.get_param_dict(values, ["a", "b"], 3)
    assert result["a"].tolist() == [1, 2, 3] and result["b"].tolist() == [10, 20, 30]
    assert compat_inferencer.get_param_dict([[5.0, 6.0]], ["a", "b"], 4)["b"].tolist() == [6] * 4
    with pytest.raises(ValueError, match="cannot give 2"):
        compat_inferencer.get_param_dict(values, ["a", "b"], 2)
    with pytest.raises(ValueError, match="one column per parameter"):
        compat_inferencer.get_param_dict(values, ["a"], 3)


def test_get_full_namespace_keeps_numbers_quantities_and_functions():
    from brian2 import TimedArray, ms
    tau_here = 5 * ms  # noqa: F841 - found through the frame
    count_here = 3  # noqa: F841
    array_here = np.ones(3)  # noqa: F841 - not a number: left out
    stimulus_here = TimedArray([1, 2], dt=1 * ms)  # noqa: F841
    namespace = compat_fitter.get_full_namespace({"count_here": 4, "extra": "x"})
    assert namespace["tau_here"] == 5 * ms and namespace["count_here"] == 4
    assert namespace["extra"] == "x" and "stimulus_here" in namespace
    assert "array_here" not in namespace and "np" not in namespace

    def helper():
        return compat_inferencer.get_full_namespace({}, level=1)
    assert "tau_here" in helper()


def test_setup_fit_and_configure_simulator_in_runtime_mode():
    from modelfit_core.compat.simulator import RuntimeSimulator
    first, second = compat_fitter.setup_fit(), compat_inferencer.configure_simulator()
    assert isinstance(first, RuntimeSimulator) and isinstance(second, RuntimeSimulator)
    assert first is not second


# -- metric helpers ------------------------------------------------------------------------
from modelfit_core.compat import metric as compat_metric  # noqa: E402


def test_normalize_weights():
    assert compat_metric.normalize_weights(np.array([0.0, 1.0, 3.0])).tolist() == [0, 0.75, 2.25]
    for wrong, message in (([1.0, -1.0], "positive"), ([0.0, 0.0], "all zero"),
                           ([1.0, np.nan], "finite")):
        with pytest.raises(ValueError, match=message) as info:
            compat_metric.normalize_weights(np.array(wrong))
        assert isinstance(info.value, ModelfitError)


def _spiking_trace(n_steps=1000, spikes_at=(200, 450, 700)) -> np.ndarray:
    """-70 mV with triangular 1 ms spikes to +20 mV (dt = 0.1 ms), in mV."""
    trace = np.full(n_steps, -70.0)
    for start in spikes_at:
        trace[start:start + 5] = np.linspace(-70, 20, 5)
        trace[start + 5:start + 10] = np.linspace(20, -70, 5)
    return trace


def test_calc_eFEL_returns_the_features_of_each_trace():
    from brian2 import mV, ms
    traces = np.vstack([_spiking_trace(), _spiking_trace(spikes_at=(300,))])
    plain = compat_metric.calc_eFEL(traces, [(10, 90), (10, 90)], ["spike_count"], 0.1e-3)
    with_units = compat_metric.calc_eFEL(traces * mV, [(10 * ms, 90 * ms)], ["spike_count"],
                                         0.1 * ms)
    for result in (plain, with_units):
        assert [int(r["spike_count"][0]) for r in result] == [3, 1]
    with pytest.raises(ValueError, match="2 traces"):
        compat_metric.calc_eFEL(traces, [(10, 90)] * 3, ["spike_count"], 0.1e-3)


# -- inferencer: calc_prior ----------------------------------------------------------------
def test_calc_prior_is_a_box_uniform_over_the_bounds():
    from brian2 import nS, pF
    from sbi.utils import BoxUniform
    prior = compat_inferencer.calc_prior(["gl", "C"], gl=[1 * nS, 100 * nS], C=[500 * pF, 10 * pF])
    assert isinstance(prior, BoxUniform)
    assert np.allclose(prior.base_dist.low.numpy(), [1e-9, 10e-12], rtol=1e-6)
    assert np.allclose(prior.base_dist.high.numpy(), [100e-9, 500e-12], rtol=1e-6)
    sample = prior.sample((20,)).numpy()
    assert sample.shape == (20, 2) and (sample[:, 0] >= 1e-9 * 0.999).all()
    with pytest.raises(TypeError, match="Bounds must be set for parameter"):
        compat_inferencer.calc_prior(["gl", "C"], gl=[1, 2])
    with pytest.raises(TypeError, match="not in param_names"):
        compat_inferencer.calc_prior(["gl"], gl=[1, 2], g=[1, 2])


# -- tests.run -----------------------------------------------------------------------------
def test_tests_run_runs_pytest_on_a_folder(tmp_path):
    from modelfit_core.compat import tests as compat_tests
    with pytest.raises(FileNotFoundError) as info:
        compat_tests.run(directory=tmp_path / "missing")
    assert isinstance(info.value, ModelfitError)
    for outcome, body in (("passing", "assert True"), ("failing", "assert False")):
        folder = tmp_path / outcome
        folder.mkdir()
        (folder / "test_one.py").write_text(f"def test_one():\n    {body}\n")
        code = (f"import sys; from modelfit_core.compat.tests import run; "
                f"sys.exit(0 if run(['-q', '-p', 'no:cacheprovider'], {str(folder)!r}) else 3)")
        completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, timeout=120,
                                   capture_output=True, text=True)
        assert completed.returncode == (0 if outcome == "passing" else 3), completed.stdout


# -- simulator -----------------------------------------------------------------------------
from modelfit_core.compat import simulator as compat_simulator  # noqa: E402

MODEL = """
dv/dt = (El - v)/tau : volt
tau : second (constant)
iteration : integer (constant, shared)
"""
"""Relaxation to ``El`` (from the caller's namespace): exact solution known."""


def _network(name_suffix="", threshold=None):
    from brian2 import Network, NeuronGroup, SpikeMonitor, StateMonitor
    neurons = NeuronGroup(3, MODEL, method="exact", threshold=threshold,
                          reset=None if threshold is None else "v = -70*mV",
                          name="neurons" if not name_suffix else f"neurons{name_suffix}")
    objects = [neurons, StateMonitor(neurons, "v", record=True,
                                     name="statemonitor" if not name_suffix else
                                     f"statemonitor{name_suffix}")]
    if threshold is not None:
        objects.append(SpikeMonitor(neurons, name="spikemonitor"))
    return Network(*objects)


def test_runtime_simulator_gives_the_traces_of_brian_itself(numpy_target):
    from brian2 import mV, ms, second
    El = -60 * mV  # noqa: F841 - the model's constant, from this frame
    simulator = compat_simulator.RuntimeSimulator()
    simulator.initialize(_network(), {"v": -70 * mV})
    for iteration, taus in enumerate(([2e-3, 5e-3, 10e-3], [20e-3, 1e-3, 4e-3])):
        simulator.run(5 * ms, {"tau": np.array(taus)}, ["tau"], iteration=iteration + 7)
        reference = _network("_reference")
        reference["neurons_reference"].tau = np.array(taus) * second
        reference["neurons_reference"].v = -70 * mV
        reference.run(5 * ms)
        expected = reference["statemonitor_reference"].v
        assert np.allclose(simulator.statemonitor.v, expected, rtol=1e-12, atol=0)
        t = np.asarray(simulator.statemonitor.t_)
        exact = -60e-3 - 10e-3 * np.exp(-t[np.newaxis, :] / np.array(taus)[:, np.newaxis])
        assert np.allclose(simulator.statemonitor.v_, exact, rtol=1e-9)
        assert int(simulator.neurons.iteration[:]) == iteration + 7
    with pytest.raises(KeyError, match="spikemonitor"):
        simulator.spikemonitor  # noqa: B018


def test_runtime_simulator_records_spikes(numpy_target):
    from brian2 import mV, ms
    El = -50 * mV  # noqa: F841
    simulator = compat_fitter.setup_fit()
    simulator.initialize(_network(threshold="v > -55*mV"), {"v": "-70*mV"})
    simulator.run(20 * ms, {"tau": [1e-3, 2e-3, 1.0]}, ["tau"], iteration=0)
    spikes = compat_fitter.get_spikes(simulator.spikemonitor, 3, 1)
    counts = [len(sample[0]) for sample in spikes]
    assert counts[0] > counts[1] > 0 and counts[2] == 0


def test_simulator_errors(numpy_target):
    from brian2 import Network, NeuronGroup
    simulator = compat_simulator.RuntimeSimulator()
    with pytest.raises(TypeError, match="Network"):
        simulator.initialize("network", None)
    with pytest.raises(KeyError, match="neurons"):
        simulator.initialize(Network(NeuronGroup(1, "v : 1", name="other")), None)
    with pytest.raises(KeyError, match="monitor"):
        simulator.initialize(Network(NeuronGroup(1, "v : 1", name="neurons")), None)
    simulator.initialize(_network(), None)
    with pytest.raises(ValueError, match="same parameters"):
        simulator.run(1e-3, {"tau": [1e-3] * 3}, ["tau", "El"], iteration=0)
    with pytest.raises(RuntimeError, match="No network named"):
        simulator.run(1e-3, {"tau": [1e-3] * 3}, ["tau"], iteration=0, name="other")
    for function, args in ((compat_simulator.run_again, ()),
                           (compat_simulator.set_parameter_value, ("x", 1.0))):
        with pytest.raises(RuntimeError, match="standalone") as info:
            function(*args)
        assert isinstance(info.value, ModelfitError)


STANDALONE_SCRIPT = """
import json
import numpy as np
from brian2 import *
set_device('cpp_standalone', build_on_run=False, directory='project')
prefs.devices.cpp_standalone.openmp_threads = 0
from modelfit_core import CPPStandaloneSimulator, setup_fit, set_states

El = -60*mV
simulator = setup_fit()
assert isinstance(simulator, CPPStandaloneSimulator)
neurons = NeuronGroup(3, '''MODEL''', method='exact', name='neurons')
network = Network(neurons, StateMonitor(neurons, 'v', record=True, name='statemonitor'))
simulator.initialize(network, {'v': -70*mV})
runs = []
for iteration, taus in enumerate(([2e-3, 5e-3, 10e-3], [20e-3, 1e-3, 4e-3])):
    simulator.run(5*ms, {'tau': np.array(taus)}, ['tau'], iteration=iteration + 7)
    runs.append({'taus': taus, 't': simulator.statemonitor.t_[:].tolist(),
                 'v': simulator.statemonitor.v_[:].tolist(),
                 'iteration': int(simulator.neurons.iteration[:])})
try:
    set_states(simulator.params_init, {'nothing': 1.0})
except KeyError as exc:
    unknown = str(exc)
again = setup_fit()
reset = not device.has_been_run

# the default build_on_run=True: the first run builds and runs the project
set_device('cpp_standalone', directory='project_on_run')
simulator = setup_fit()
neurons = NeuronGroup(3, '''MODEL''', method='exact', name='neurons')
network = Network(neurons, StateMonitor(neurons, 'v', record=True, name='statemonitor'))
simulator.initialize(network, {'v': -70*mV})
for iteration, taus in enumerate(([1e-3, 3e-3, 9e-3], [4e-3, 4e-3, 2e-3])):
    simulator.run(5*ms, {'tau': np.array(taus)}, ['tau'], iteration=iteration + 7)
    runs.append({'taus': taus, 't': simulator.statemonitor.t_[:].tolist(),
                 'v': simulator.statemonitor.v_[:].tolist(),
                 'iteration': int(simulator.neurons.iteration[:])})
print(json.dumps({'runs': runs, 'unknown': unknown, 'reset': reset,
                  'again': type(again).__name__}))
"""


def test_cpp_standalone_simulator_builds_once_and_runs_again(tmp_path):
    """In a fresh interpreter, as the standalone device is process-wide; with
    ``build_on_run=False`` and with the default (two builds of a tiny project, ~10 s)."""
    script = tmp_path / "standalone.py"
    script.write_text(STANDALONE_SCRIPT.replace("MODEL", MODEL))
    completed = subprocess.run([sys.executable, str(script)], cwd=tmp_path, timeout=300,
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    for index, run in enumerate(result["runs"]):
        t = np.asarray(run["t"])
        exact = -60e-3 - 10e-3 * np.exp(-t[np.newaxis, :] / np.array(run["taus"])[:, np.newaxis])
        assert np.allclose(run["v"], exact, rtol=1e-9)
        assert run["iteration"] == index % 2 + 7
    assert len(result["runs"]) == 4
    assert "nothing" in result["unknown"]
    assert result["reset"] and result["again"] == "CPPStandaloneSimulator"
    # each project was built once, in the directory given to set_device
    assert (tmp_path / "project" / "main").exists()
    assert (tmp_path / "project_on_run" / "main").exists()
