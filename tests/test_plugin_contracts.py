"""The contract checks of ``modelfit_core.testing``, run on every built-in plugin,
and shown to catch plugins that break the contracts.

Every plugin modelfit registers (optimizers, metrics, backends, feedback, inference)
goes through the check of its kind on a tiny problem: the cases are made from the
registry, and tests/test_meta.py checks that they cover every entry point of
pyproject.toml (:func:`checked_plugins`).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from brian2 import mV, ms, second

from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.contracts.protocols import GradientOptimizer
from modelfit_core.testing import (check_backend, check_feedback, check_gradient_optimizer,
                                   check_inference, check_multiobjective_optimizer,
                                   check_optimizer, check_problem, check_registered,
                                   check_spike_metric, check_trace_metric)

BUILT_IN = Registry(distributions=["modelfit-brian2"])

OPTIMIZER_CASES = {
    "nevergrad": [({"method": method}, {}) for method in
                  ("DE", "CMA", "OnePlusOne", "PSO", "TwoPointsDE")],
    # Bayesian optimization refits its model for every asked point: a few small cases
    "skopt": [({"method": "GP", "n_initial_points": 2, "acq_optimizer": "sampling",
                "acq_optimizer_kwargs": {"n_points": 100}},
               {"max_examples": 3, "max_samples": 3, "n_rounds": 2})],
    "pymoo": [({"method": method}, {"max_examples": 6}) for method in
              ("DE", "PSO", "GA", "CMAES")],
    # multi-objective optimizers: check_multiobjective_optimizer
    "nsga2": [({}, {"max_examples": 6, "objectives": True})],
    "nsga3": [({}, {"max_examples": 6, "objectives": True})],
}
"""(options, check_optimizer settings) for each built-in optimizer; one not listed is
checked with default options."""

METRIC_FACTORIES = {
    "mse": [("trace", {}),
            ("trace", {"normalization": 10 * mV}),
            ("trace", {"t_start": 0.5 * ms})],  # traces of more than 5 steps, see below
    "gamma_factor": [("spike", {"delta": 2 * ms, "time": 1 * second}),
                     ("spike", {"delta": 1 * ms, "time": 1 * second, "rate_correction": False})],
    "efel": [("efel", {"stim_times": [(1 * ms, 4 * ms)], "n_jobs": 1,
                       "feat_list": ["voltage_base", "spike_count", "mean_frequency"]})],
}
"""How to make and check each built-in metric: every registered one must be listed."""


def optimizer_cases():
    for name in BUILT_IN.names("optimizers"):
        for options, settings in OPTIMIZER_CASES.get(name, [({}, {})]):
            label = name + "".join(f"-{options[k]}" for k in ("method",) if k in options)
            yield pytest.param(name, options, settings, id=label)


@pytest.mark.parametrize("name,options,settings", list(optimizer_cases()))
def test_built_in_optimizers_keep_the_optimizer_contract(name, options, settings):
    cls = BUILT_IN.lookup("optimizers", name)
    settings = dict(settings)
    if settings.pop("objectives", False):
        check_multiobjective_optimizer(functools.partial(cls, **options), **settings)
    elif isinstance(cls(**options), GradientOptimizer):  # told its normal equations too
        check_gradient_optimizer(functools.partial(cls, **options), **settings)
    else:
        check_optimizer(functools.partial(cls, **options), **{"max_examples": 12, **settings})


def metric_cases():
    for name in BUILT_IN.names("metrics"):
        for kind, options in METRIC_FACTORIES.get(name, []):
            yield pytest.param(name, kind, options,
                               id=name + "".join(f"-{k}" for k in options))


def test_every_built_in_metric_has_a_contract_check():
    assert set(BUILT_IN.names("metrics")) <= set(METRIC_FACTORIES), (
        "add the new metric to METRIC_FACTORIES")


@pytest.mark.parametrize("name,kind,options", list(metric_cases()))
def test_built_in_metrics_keep_the_metric_contract(name, kind, options):
    factory = functools.partial(BUILT_IN.lookup("metrics", name), **options)
    if kind == "trace":
        # with t_start beyond the end of the traces MSEMetric returns NaN: not checked
        check_trace_metric(factory, n_steps=(6, 60), max_examples=15)
    elif kind == "spike":
        check_spike_metric(factory, duration=1.0, max_examples=15)
    else:  # eFEL features of plausible voltages, long enough to hold the stimulus
        check_trace_metric(factory, n_steps=(50, 80), n_samples=(1, 2), n_traces=(1, 2),
                           max_examples=6)


@pytest.mark.parametrize("name", BUILT_IN.names("feedback"))
def test_built_in_feedback_keeps_the_feedback_contract(name, capsys):
    check_feedback(BUILT_IN.lookup("feedback", name))


BACKEND_OPTIONS = {"dask": {"n_workers": 1}}
"""Options of the built-in backends for their contract check (a one-worker cluster)."""


@pytest.mark.parametrize("name", BUILT_IN.names("backends"))
def test_built_in_backends_keep_the_backend_contract(name):
    cls = BUILT_IN.lookup("backends", name)
    made = []

    def factory():
        made.append(cls(**BACKEND_OPTIONS.get(name, {})))
        return made[-1]

    try:
        check_backend(factory)
    finally:
        for backend in made:
            if hasattr(backend, "shutdown"):
                backend.shutdown()


def _sbi_posterior():
    """An amortized posterior of the passive membrane's gl and C from 60 simulations."""
    from brian2 import amp, nS, pF, volt
    from modelfit_core.tools.simulation_checks import passive_spec, passive_traces
    spec = passive_spec(n_samples=1, n_traces=1, n_steps=60)
    recorded = passive_traces(spec, np.array([20e-9]), np.array([200e-12]))[0]
    inferencer = BUILT_IN.lookup("inference", "sbi")(
        dt=spec.dt * second, model=spec.model, input={"I": spec.inputs["I"].values * amp},
        output={"v": recorded * volt}, features={"v": [lambda x: x[-1] - x[0]]},
        method="exact", param_init={"v": spec.param_init["v"] * volt},
        namespace=dict(spec.namespace))
    inferencer.infer(n_samples=60, density_estimator_model="mdn", seed=1,
                     inference_kwargs={"show_progress_bars": False},
                     train_kwargs={"max_num_epochs": 5}, gl=[5 * nS, 50 * nS],
                     C=[50 * pF, 500 * pF])
    return inferencer  # sample() and log_prob() in SI units, as the manual's Inferencer


INFERENCE_RUNS = {"sbi": (_sbi_posterior, {"C": (50e-12, 500e-12), "gl": (5e-9, 50e-9)})}
"""How to run each built-in inference plugin on a tiny problem, and its bounds (SI, in the
order of its posterior's columns)."""


@pytest.mark.filterwarnings("ignore:Maximum number of epochs")
@pytest.mark.parametrize("name", BUILT_IN.names("inference"))
def test_built_in_inference_keeps_the_inference_contract(name):
    run, bounds = INFERENCE_RUNS[name]
    check_inference(run, bounds)


@pytest.mark.parametrize("name", BUILT_IN.names("storage"))
def test_built_in_storages_keep_a_fit_and_resume_it(name, tmp_path):
    """A store (found by its URL's scheme) keeps the rounds of a small fit, and a new
    fitter resumed from it continues exactly as the uninterrupted fit does."""
    from storage_helpers import BOUNDS, make_fitter

    url = f"{name}:///{tmp_path / 'fit.db'}"
    whole = make_fitter(f"{name}:///{tmp_path / 'whole.db'}")
    whole.fit(n_rounds=3, **BOUNDS)
    make_fitter(url).fit(n_rounds=2, **BOUNDS)
    resumed = make_fitter(url)
    resumed.fit(n_rounds=3, resume=True, **BOUNDS)
    assert resumed.results(format="dataframe").equals(whole.results(format="dataframe"))


@pytest.mark.parametrize("name", BUILT_IN.names("dashboards"))
def test_built_in_dashboards_serve_a_stored_fit(name, tmp_path):
    """A dashboard started on a small stored fit serves its pages at the address it
    gives, in the background, until stopped."""
    import urllib.request

    from storage_helpers import BOUNDS, make_fitter

    url = f"sqlite:///{tmp_path / 'fit.db'}"
    make_fitter(url).fit(n_rounds=2, **BOUNDS)
    running = BUILT_IN.lookup("dashboards", name)().start(url, "s")
    try:
        assert isinstance(running.url, str)
        with urllib.request.urlopen(running.url, timeout=30) as response:
            assert response.status == 200
    finally:
        running.stop()


@pytest.mark.parametrize("name", BUILT_IN.names("problems"))
def test_built_in_problems_keep_the_problem_contract(name):
    """Each built-in benchmark problem's description is consistent (simulating every
    problem is the benchmark's work; tests/test_benchmark.py runs the check with its two
    simulated rounds on a tiny problem)."""
    check_problem(BUILT_IN.lookup("problems", name), simulate=False, registry=BUILT_IN)


def checked_plugins() -> dict[str, set[str]]:
    """kind -> the built-in plugins the contract tests above check."""
    return {"optimizers": {name for name, _, _ in (p.values for p in optimizer_cases())},
            "metrics": {name for name, _, _ in (p.values for p in metric_cases())},
            "backends": set(BUILT_IN.names("backends")),
            "feedback": set(BUILT_IN.names("feedback")),
            "inference": set(BUILT_IN.names("inference")) & set(INFERENCE_RUNS),
            "storage": set(BUILT_IN.names("storage")),
            "dashboards": set(BUILT_IN.names("dashboards")),
            "problems": set(BUILT_IN.names("problems"))}


@pytest.mark.parametrize("kind", ["optimizers", "metrics", "backends", "feedback", "inference",
                                  "storage", "dashboards", "problems"])
def test_every_built_in_name_is_registered_through_modelfit(kind):
    for name in BUILT_IN.names(kind):
        check_registered(kind, name, distribution="modelfit-brian2", registry=BUILT_IN)


# -- the checks catch broken plugins ---------------------------------------------------------
class BoxOptimizer:
    """A correct, seedable random search; subclasses below each break one rule."""

    def __init__(self, seed=None):
        self.seed = seed

    def initialize(self, parameter_names, popsize, rounds, **bounds):
        self.lower = np.array([bounds[n][0] for n in parameter_names])
        self.upper = np.array([bounds[n][1] for n in parameter_names])
        self.rng = np.random.default_rng(self.seed)
        self.best, self.best_error = (self.lower + self.upper) / 2, np.inf
        return popsize

    def ask(self, n_samples):
        return list(self.lower + self.rng.random((n_samples, self.lower.size))
                    * (self.upper - self.lower))

    def tell(self, parameters, errors):
        k = int(np.argmin(errors))
        if errors[k] < self.best_error:
            self.best, self.best_error = np.asarray(parameters[k]), errors[k]

    def recommend(self):
        return self.best


class OutsideBounds(BoxOptimizer):
    def ask(self, n_samples):
        return [v * 1.5 + 1e-15 for v in super().ask(n_samples)]


class IgnoresSeed(BoxOptimizer):
    def initialize(self, parameter_names, popsize, rounds, **bounds):
        used = super().initialize(parameter_names, popsize, rounds, **bounds)
        self.rng = np.random.default_rng()
        return used


class WrongCount(BoxOptimizer):
    def ask(self, n_samples):
        return super().ask(n_samples + 1)


class RejectsArrays(BoxOptimizer):
    def tell(self, parameters, errors):
        if isinstance(errors, np.ndarray):
            raise TypeError("errors must be a list")
        super().tell(parameters, errors)


def test_a_correct_optimizer_passes():
    check_optimizer(BoxOptimizer, max_examples=10)


@pytest.mark.parametrize("broken,message", [
    (OutsideBounds, "outside the bounds"),
    (IgnoresSeed, "the same seed"),
    (WrongCount, "returned"),
    (RejectsArrays, "errors must be a list"),
])
def test_check_optimizer_catches_broken_optimizers(broken, message):
    with pytest.raises((AssertionError, TypeError), match=message):
        check_optimizer(broken, max_examples=10)


class GradientStepper(BoxOptimizer):
    """A correct gradient optimizer: random points, then one Gauss-Newton step from the
    best point told (in the coordinates scaled to the bounds)."""

    def initialize(self, parameter_names, popsize, rounds, **bounds):
        self.step_from = None
        return super().initialize(parameter_names, popsize, rounds, **bounds)

    def ask(self, n_samples):
        points = super().ask(n_samples)
        if self.step_from is not None:
            points[0] = self.step_from
        return points

    def tell_gradients(self, parameters, errors, normal_equations):
        self.tell(parameters, errors)
        k = int(np.argmin(errors))
        width = self.upper - self.lower
        u = (np.asarray(parameters[k]) - self.lower) / width
        step = np.linalg.solve(normal_equations.jtj[k] + 1e-12 * np.eye(len(u)),
                               -normal_equations.jtr[k])
        self.step_from = self.lower + np.clip(u + step, 0, 1) * width


class IgnoresGradients(GradientStepper):
    def tell_gradients(self, parameters, errors, normal_equations):
        self.tell(parameters, errors)


def test_check_gradient_optimizer_passes_and_catches():
    check_gradient_optimizer(GradientStepper, max_examples=5)
    with pytest.raises(AssertionError, match="Gauss-Newton"):
        check_gradient_optimizer(IgnoresGradients, max_examples=5)
    with pytest.raises(AssertionError, match="not a gradient optimizer"):
        check_gradient_optimizer(BoxOptimizer, max_examples=5)


def test_seed_check_is_skipped_without_a_seed_keyword():
    unseeded = functools.partial(IgnoresSeed)  # still accepts seed= through the class
    with pytest.raises(AssertionError, match="same seed"):
        check_optimizer(unseeded, max_examples=5)
    check_optimizer(lambda: IgnoresSeed(), max_examples=5)  # no seed= to pass: not checked


class SignedError:
    """Mean signed difference: negative when the model is below the data."""

    def calc(self, model, data, dt):
        return (np.asarray(model) - np.asarray(data)[None]).mean(axis=(1, 2))


class BatchSize:
    """Scales by the batch size: a sample's error depends on the batch."""

    def calc(self, model, data, dt):
        errors = np.square(np.asarray(model) - np.asarray(data)[None]).mean(axis=(1, 2))
        return errors * len(model)


class InPlace:
    """Squares the model traces in place (the fitter reuses them for results)."""

    def calc(self, model, data, dt):
        model -= data[None]
        np.square(model, out=model)
        return model.mean(axis=(1, 2))


class NeverZero:
    def calc(self, model, data, dt):
        return np.abs(np.asarray(model) - np.asarray(data)[None]).mean(axis=(1, 2)) + 1.0


class PerTrace:
    """Returns (n_samples, n_traces) instead of (n_samples,)."""

    def calc(self, model, data, dt):
        return np.square(np.asarray(model) - np.asarray(data)[None]).mean(axis=2)


@pytest.mark.parametrize("broken,message", [
    (SignedError, "negative errors"),
    (BatchSize, "batch of one sample scores differently"),
    (InPlace, "modified the traces"),
    (NeverZero, "not 0"),
    (PerTrace, "returned shape"),
])
def test_check_trace_metric_catches_broken_metrics(broken, message):
    with pytest.raises(AssertionError, match=message):
        check_trace_metric(broken, max_examples=20)


def test_check_trace_metric_options_relax_what_does_not_apply():
    check_trace_metric(SignedError, non_negative=False, max_examples=5)
    check_trace_metric(NeverZero, zero_on_perfect_match=False, max_examples=5)


class SpikeCountDifference:
    compares = "spikes"

    def calc(self, model, data, dt):
        return np.array([np.mean([abs(len(m) - len(d)) for m, d in zip(sample, data)])
                         for sample in model], dtype=float)


class DropsSpikes(SpikeCountDifference):
    def calc(self, model, data, dt):
        for sample in model:
            sample[0] = sample[0][:0]  # empties the first train of each sample
        return super().calc(model, data, dt)


def test_check_spike_metric_passes_and_catches():
    check_spike_metric(SpikeCountDifference, max_examples=10)
    with pytest.raises(AssertionError, match="modified the spike trains"):
        check_spike_metric(DropsSpikes, max_examples=30)


class SwapsParameterSets:
    """Runs the runtime backend on the parameter sets in reverse order."""

    name = "swaps"

    def prepare(self, spec):
        inner = BUILT_IN.lookup("backends", "runtime")().prepare(spec)

        class Prepared:
            def run(self, parameters, iteration=0.0):
                return inner.run({k: v[::-1] for k, v in parameters.items()}, iteration)

            def close(self):
                inner.close()

        return Prepared()


def test_check_backend_catches_a_backend_that_mixes_up_parameter_sets():
    with pytest.raises(AssertionError, match=r"parameter set 0 \(gl=4e-08 S"):
        check_backend(SwapsParameterSets)


def test_check_feedback_catches_a_bad_answer():
    class Answers:
        def __call__(self, params, errors, best_params, best_error, index, info=None):
            return "stop"

    with pytest.raises(AssertionError, match="returned 'stop'"):
        check_feedback(Answers)
