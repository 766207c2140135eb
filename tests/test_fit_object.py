"""A fit is an object: ``Fit`` driven without a fitter, its events, its storage protocol.

The fitters compose a :class:`FittingProblem` and a :class:`Fit`; these tests
build both by hand, as a benchmark or a notebook may, and check what the
fitters rely on: start / continue / resume, the lifecycle hooks and the
listeners of one fit (feedback), storages as plugins (the ``storage`` kind,
named after URL schemes), the default backend chosen by the backend plugins,
and a fitter's public members being the documented ones.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import BOUNDS, DT, El, PASSIVE_MODEL
from modelfit_core import ConfigurationError, Pipeline, TraceFitter, hookimpl
from modelfit_core.contracts.errors import UnknownPluginError
from modelfit_core.contracts.protocols import StudyStorage
from modelfit_core.fitting.events import FitEvents
from modelfit_core.fitting.fit import Fit
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import FittingProblem
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results.storage import FitStore, StoredStudy

ROOT = Path(__file__).resolve().parents[1]


def _problem(passive_data, registry):
    return FittingProblem.from_user(
        PASSIVE_MODEL, {"I": passive_data["I"]}, {"v": passive_data["v"]}, DT,
        backend=registry.lookup("backends", "runtime")(), param_init={"v": El},
        namespace={"El": El})


def _optimizer(registry, seed=3):
    return registry.lookup("optimizers", "pymoo")(seed=seed)


def _start(problem, registry, n_rounds=2, store=None, seed=3):
    objective = Objective.build(problem, registry.lookup("metrics", "mse")())
    return Fit.start(problem, optimizer=_optimizer(registry, seed), metric=objective.metrics["v"],
                     objective=objective, space=problem.parameter_space(BOUNDS),
                     n_samples=6, n_rounds=n_rounds, store=store)


class Recorder:
    """A listener of one fit: methods named after the hooks."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def modelfit_fit_started(self, n_rounds):
        self.calls.append(("started", n_rounds))

    def modelfit_round_finished(self, round_record):
        self.calls.append(("round", round_record.index))
        return self.stop_after is not None and round_record.index >= self.stop_after

    def modelfit_fit_finished(self, best_params, best_error):
        self.calls.append(("finished", best_error is not None))


def test_a_fit_runs_without_a_fitter(passive_data, registry):
    problem = _problem(passive_data, registry)
    fit = _start(problem, registry)
    listener = Recorder()
    fit.run_rounds(2, FitEvents(listeners=(listener,)))
    assert len(fit.history.rounds) == 2 and fit.has_best and fit.iteration == 2
    assert listener.calls == [("started", 2), ("round", 0), ("round", 1), ("finished", True)]
    # the same fit goes on with the same parts; other bounds are refused
    fit.continue_with(fit.optimizer, fit.metric, fit.objective, fit.space)
    fit.run_rounds(1, FitEvents())
    assert [r.index for r in fit.history.rounds] == [0, 1, 2]
    wider = problem.parameter_space({**BOUNDS, "gl": [BOUNDS["gl"][0], 2 * BOUNDS["gl"][1]]})
    with pytest.raises(ConfigurationError, match="bounds changed"):
        fit.continue_with(fit.optimizer, fit.metric, fit.objective, wider)


def test_a_listener_returning_true_stops_the_fit(passive_data, registry):
    fit = _start(_problem(passive_data, registry), registry, n_rounds=5)
    listener = Recorder(stop_after=1)
    fit.run_rounds(5, FitEvents(listeners=(listener,)))
    assert len(fit.history.rounds) == 2 and listener.calls[-1] == ("finished", True)


def test_a_new_fit_takes_over_the_compiled_simulation(passive_data, registry):
    problem = _problem(passive_data, registry)
    first = _start(problem, registry)
    first.run_rounds(1, FitEvents())
    second = _start(problem, registry, seed=4)
    second.take_simulation_of(first)
    second.run_rounds(1, FitEvents())
    assert second.simulation is not None and first.simulation is None
    assert problem.prepared_keys == [("fit", 6, ("gl", "C"), ("v",), False, (), ())]


class HookPlugin:
    """Lifecycle hooks of every fit of a pipeline, and the backend it chooses."""

    def __init__(self):
        self.events = []

    @hookimpl
    def modelfit_fit_started(self, fitter, n_rounds):
        self.events.append(("modelfit_fit_started", n_rounds))

    @hookimpl
    def modelfit_round_finished(self, fitter, round_record):
        self.events.append(("modelfit_round_finished", round_record.index))

    @hookimpl
    def modelfit_fit_finished(self, fitter, best_params, best_error):
        self.events.append(("modelfit_fit_finished", best_params is None))

    @hookimpl
    def modelfit_default_backend(self):
        return "numpy_runtime"

    @hookimpl
    def modelfit_register_backends(self):
        runtime = Registry(distributions=["modelfit-brian2"]).lookup("backends", "runtime")

        class NumpyRuntime(runtime):
            name = "numpy_runtime"

            def __init__(self):
                super().__init__(codegen_target="numpy")
        return {"numpy_runtime": NumpyRuntime}


def test_hooks_hear_every_fit_and_a_plugin_chooses_the_default_backend(passive_data):
    plugin = HookPlugin()
    pipe = Pipeline.from_names(plugins=[plugin], feedback=None, seed=1,
                               disable_plugins=["brian2_device"])
    fitter = pipe.trace_fitter(PASSIVE_MODEL, {"I": passive_data["I"]},
                               {"v": passive_data["v"]}, DT, 4, param_init={"v": El},
                               backend=None)
    assert fitter.problem.backend.name == "numpy_runtime"
    fitter.fit(n_rounds=2, **BOUNDS)
    assert plugin.events == [("modelfit_fit_started", 2), ("modelfit_round_finished", 0),
                             ("modelfit_round_finished", 1), ("modelfit_fit_finished", False)]


def test_brians_active_device_chooses_the_backend(make_fitter):
    registry = Registry(distributions=["modelfit-brian2"])
    assert registry.hook.modelfit_default_backend() == "runtime"
    assert make_fitter().problem.backend.name == "runtime"


class MemoryStore:
    """A study storage in memory: the StudyStorage protocol, nothing else."""

    studies: dict = {}

    def __init__(self, url, study="default"):
        self.location = f"{url}#{study}"
        self.planned = None

    def start(self, description, restart):
        if self.location in self.studies and not restart:
            raise ConfigurationError(f"{self.location} exists")
        self.planned = description

    def load_for_resume(self, description):
        stored = self.studies[self.location]
        records = stored["records"]
        return StoredStudy(records=list(records),
                           next_iteration=records[-1].iteration + 1 if records else 0,
                           optimizer_rounds=stored["optimizer_rounds"])

    @contextlib.contextmanager
    def session(self):
        if self.planned is not None:
            self.studies[self.location] = {"records": [],
                                           "optimizer_rounds": self.planned.optimizer_rounds}
            self.planned = None

        def write_round(record, optimizer):
            self.studies[self.location]["records"].append(record)
            return self.location
        yield write_round

    def close(self):
        pass


class StoragePlugin:
    @hookimpl
    def modelfit_register_storage(self):
        return {"memory": MemoryStore}


def test_a_storage_plugin_is_chosen_by_the_scheme_of_its_url(passive_data):
    assert isinstance(MemoryStore("memory://x"), StudyStorage)
    MemoryStore.studies.clear()

    def fitter():  # each with its own optimizer, as a new process would have
        pipe = Pipeline.from_names(plugins=[StoragePlugin()], feedback=None, seed=5)
        return pipe.trace_fitter(PASSIVE_MODEL, {"I": passive_data["I"]},
                                 {"v": passive_data["v"]}, DT, 4, param_init={"v": El},
                                 storage="memory://lab", study="s")

    first = fitter()
    assert isinstance(first.storage, MemoryStore)
    first.fit(n_rounds=3, **BOUNDS)
    assert len(MemoryStore.studies["memory://lab#s"]["records"]) == 3
    # resumed from the store: the same optimizer state, so the same next round
    resumed = fitter()
    resumed.fit(n_rounds=4, resume=True, **BOUNDS)
    first.fit(n_rounds=1)
    np.testing.assert_array_equal(resumed.history.rounds[-1].parameters,
                                  first.history.rounds[-1].parameters)


def test_storage_urls_and_objects(tmp_path, registry):
    assert registry.lookup("storage", "sqlite") is FitStore
    pipe = Pipeline.from_names(feedback=None)
    store = pipe.resolve_storage(tmp_path / "fit.db", "s")
    assert isinstance(store, FitStore) and store.location.endswith("fit.db#s")
    assert pipe.resolve_storage(store) is store
    with pytest.raises(UnknownPluginError, match="storage.*'postgresql'"):
        pipe.resolve_storage("postgresql://host/db")
    with pytest.raises(TypeError, match="storage must be"):
        pipe.resolve_storage(42)
    store.close()


def _documented_members() -> set[str]:
    text = (ROOT / "docs" / "compatibility.md").read_text()
    section = text.split("## A fitter's public members", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", section))


@pytest.mark.parametrize("cls", ["TraceFitter", "SpikeFitter", "OnlineTraceFitter"])
def test_a_fitters_public_members_are_the_documented_ones(cls, make_fitter, passive_data):
    import modelfit_core
    from conftest import step_currents
    fitter_class = getattr(modelfit_core, cls)
    if cls == "SpikeFitter":
        fitter = fitter_class(PASSIVE_MODEL, {"I": step_currents()}, [[0.01]] * 2, DT,
                              threshold="v > -60*mV", reset="v = El", n_samples=4,
                              param_init={"v": El})
    elif cls == "OnlineTraceFitter":
        fitter = fitter_class(PASSIVE_MODEL, {"I": passive_data["I"]},
                              {"v": passive_data["v"]}, DT, 4, param_init={"v": El})
    else:
        fitter = make_fitter()
    public = {name for name in dir(fitter) if not name.startswith("_")}
    assert public <= _documented_members(), sorted(public - _documented_members())
    manual = {"fit", "generate", "results", "best_params", "best_error", "n_neurons",
              "best_objective_errors", "best_objective_errors_normalized", "calc_errors",
              "optimization_iter", "setup_neuron_group", "setup_simulator"}
    assert manual <= public


def test_the_plugin_api_offers_what_it_lists():
    import modelfit_core.plugin_api as api
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    with pytest.raises(AttributeError, match="a plugin may use"):
        api.History  # noqa: B018 - not offered to plugins
