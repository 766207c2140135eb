"""Third-party plugins: a real external distribution and lifecycle listeners.

``examples/plugins/modelfit-example`` is a separate pip-installable distribution
(``modelfit-example``) providing the optimizer ``cmaes`` (pycma's CMA-ES) and the
metric ``mae``. The module fixture builds and installs it the way a user would
(``pip install``; ``--no-deps --no-build-isolation`` so that it needs no network:
pycma and setuptools come with ``modelfit-brian2[test]``), but into a throwaway
folder put on ``sys.path`` for the tests (and on ``PYTHONPATH`` for their
subprocesses): the test environment is left as it was found. Nothing in
modelfit names it: it is found through its entry points only.

Broken plugins are tested in ``test_broken_plugins.py`` and ``test_registry.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
from brian2 import mV, volt

from modelfit_core import hookimpl
from modelfit_core.contracts.errors import UnknownPluginError
from modelfit_core.fitting.pipeline import Pipeline
from modelfit_core.registry.entry_points import DISTRIBUTION as BUILT_IN
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.testing import check_optimizer, check_registered, check_trace_metric

from conftest import BOUNDS, TRUE_PARAMS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "modelfit-example"
DISTRIBUTION = "modelfit-example"


# -- installing the example distribution ------------------------------------------------
def _pip_install_example(target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--no-build-isolation", "--target", str(target), str(EXAMPLE)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if completed.returncode != 0:
        # e.g. a setuptools too old to build without the `wheel` package: let pip
        # fetch the build requirements of the example's pyproject.toml itself
        command.remove("--no-build-isolation")
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, (
        f"could not install {EXAMPLE}:\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}")


@pytest.fixture(scope="module")
def example_installed(tmp_path_factory):
    """``modelfit-example`` built from this checkout and installed into a throwaway
    folder on ``sys.path``; the process's registry (behind ``from modelfit_core import ...``
    and ``Pipeline.from_names``) is re-read with it, and again without it afterwards."""
    from modelfit_core.registry.plugin_registry import forget_shared_registry

    target = tmp_path_factory.mktemp("site")
    _pip_install_example(target)
    sys.path.insert(0, str(target))
    forget_shared_registry()
    yield target
    sys.path.remove(str(target))
    for module in [m for m in sys.modules if m.split(".")[0] == "modelfit_example"]:
        del sys.modules[module]
    forget_shared_registry()


def run_python(code: str, *args: str, site: Path, timeout: int = 120):
    """Run ``code`` in a fresh interpreter (which reads the entry points anew) that
    sees the example installed in ``site``."""
    env = {k: v for k, v in os.environ.items() if k != "MODELFIT_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_the_test_environment_is_left_as_found(example_installed):
    """The example is only visible through the throwaway folder, not installed."""
    completed = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; "
                                "print([d.name for d in m.distributions()])"],
                               capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert DISTRIBUTION not in completed.stdout


# -- the example distribution ------------------------------------------------------------
def test_example_is_found_through_its_entry_points_only(example_installed):
    registry = Registry()
    optimizer = check_registered("optimizers", "cmaes", distribution=DISTRIBUTION,
                                 registry=registry)
    metric = check_registered("metrics", "mae", distribution=DISTRIBUTION, registry=registry)
    assert optimizer.__module__ == "modelfit_example.cma_optimizer"
    assert metric.__module__ == "modelfit_example.mae_metric"
    assert registry.statuses["cmaes"].module == "modelfit_example.cma_optimizer"
    # the core never names it: isolating the built-ins, or disabling it, hides it
    assert "cmaes" not in Registry(distributions=[BUILT_IN]).names("optimizers")
    hidden = Registry(disable=[DISTRIBUTION])
    assert "mae" not in hidden.names("metrics") and "mse" in hidden.names("metrics")
    with pytest.raises(UnknownPluginError, match="installed but disabled.*nevergrad"):
        hidden.lookup("optimizers", "cmaes")  # says so, and names the others
    assert "modelfit_example" not in (ROOT / "modelfit_core" / "registry" / "plugin_registry.py").read_text()


def test_example_fits_through_pipeline_from_names(example_installed, make_fitter):
    results = []
    for _ in range(2):  # the same seed repeats the fit exactly
        pipe = Pipeline.from_names(optimizer="cmaes", metric="mae", feedback=None, seed=3,
                                   optimizer_options={"sigma0": 0.3})
        assert type(pipe.optimizer).__name__ == "CMAESOptimizer"
        assert type(pipe.metric).__name__ == "MAEMetric"
        fitter = make_fitter(pipeline=pipe, n_samples=10)
        best, error = fitter.fit(n_rounds=30, **BOUNDS)
        results.append((best, error, fitter.results(format="dataframe")))
    (best, error, frame), (_, _, frame_again) = results
    assert frame.equals(frame_again)
    assert error.has_same_dimensions(volt)  # MAE: the units of the output
    first_round = frame[frame["round"] == 0]["errors"].min()
    assert float(error) < float(0.5 * mV) < first_round / 10  # in V
    for name, true in TRUE_PARAMS.items():
        assert float(best[name]) == pytest.approx(float(true), rel=0.05), name


def test_example_through_the_classic_interface(example_installed, make_fitter):
    from modelfit_core import CMAESOptimizer, MAEMetric  # resolved through the registry
    import modelfit_example.cma_optimizer
    import modelfit_example.mae_metric

    assert CMAESOptimizer is modelfit_example.cma_optimizer.CMAESOptimizer
    assert MAEMetric is modelfit_example.mae_metric.MAEMetric
    fitter = make_fitter(n_samples=10)
    best, error = fitter.fit(n_rounds=30, optimizer=CMAESOptimizer(seed=1),
                             metric=MAEMetric(normalization=1 * mV), callback=None, **BOUNDS)
    assert isinstance(error, float) and error < 1  # normalized by 1 mV: in mV, no units
    assert float(best["gl"]) == pytest.approx(float(TRUE_PARAMS["gl"]), rel=0.1)


def test_a_fresh_process_sees_the_example_and_the_cli_lists_it(example_installed):
    """A new interpreter (one process, to stay fast) finds the example through the
    classic names and ``Pipeline.from_names``, and ``modelfit plugins`` lists it."""
    completed = run_python(site=example_installed, code="""
        import sys
        import modelfit_core
        from modelfit_core import CMAESOptimizer, MAEMetric, Pipeline
        from modelfit_core.tools.cli import main   # what the `modelfit` script runs
        assert CMAESOptimizer.__module__ == "modelfit_example.cma_optimizer"
        # found and listed, but not in __all__ (the same whatever is installed)
        assert {"CMAESOptimizer", "MAEMetric"} <= set(dir(modelfit_core))
        assert not {"CMAESOptimizer", "MAEMetric"} & set(modelfit_core.__all__)
        pipe = Pipeline.from_names(optimizer="cmaes", metric="mae", feedback=None, seed=1)
        assert isinstance(pipe.optimizer, CMAESOptimizer) and pipe.optimizer.seed == 1
        assert isinstance(pipe.metric, MAEMetric)
        sys.exit(main(["plugins"]))
    """)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {line.split()[0]: line for line in completed.stdout.splitlines()[1:]
            if line and not line[0].isspace()}
    for name, provides in (("cmaes", "optimizer 'cmaes'"), ("mae", "metric 'mae'")):
        assert rows[name].split()[1] == "ok", rows[name]
        assert provides in rows[name]
        assert rows[name].rstrip().endswith(DISTRIBUTION)


def test_example_plugins_keep_the_contracts(example_installed):
    registry = Registry()
    check_optimizer(registry.lookup("optimizers", "cmaes"), max_examples=15)
    check_trace_metric(registry.lookup("metrics", "mae"), max_examples=15)


def test_example_optimizer_genuinely_optimizes(example_installed):
    """CMA-ES beats random search by orders of magnitude on a narrow 4-D valley."""
    optimizer_class = Registry().lookup("optimizers", "cmaes")
    lower, upper = np.array([1e-9, 1e-12, -0.08, 1e-3]), np.array([1e-7, 1e-10, -0.04, 0.1])
    target = lower + np.array([0.31, 0.72, 0.15, 0.58]) * (upper - lower)
    weights = np.array([1.0, 10.0, 100.0, 1000.0])

    def errors(vectors):
        return (np.square((np.asarray(vectors) - target) / (upper - lower)) * weights).sum(1)

    optimizer = optimizer_class(seed=11)
    names = ["g", "c", "e", "tau"]
    optimizer.initialize(names, popsize=12, rounds=80,
                         **{n: [lo, hi] for n, lo, hi in zip(names, lower, upper)})
    for _ in range(80):
        vectors = optimizer.ask(12)
        optimizer.tell(vectors, errors(vectors))
    found = errors([optimizer.recommend()])[0]
    rng = np.random.default_rng(11)
    random_best = errors(lower + rng.random((960, 4)) * (upper - lower)).min()
    assert found < 1e-8
    assert found < 1e-5 * random_best


# -- lifecycle hooks ---------------------------------------------------------------------
class Listener:
    """A plugin that only listens: counts every lifecycle hook call."""

    def __init__(self):
        self.calls: dict[str, list] = {}

    def _record(self, hook, **kwargs):
        self.calls.setdefault(hook, []).append(kwargs)

    @hookimpl
    def modelfit_round_finished(self, fitter, round_record):
        self._record("modelfit_round_finished", index=round_record.index)

    @hookimpl
    def modelfit_best_improved(self, fitter, params, error):
        self._record("modelfit_best_improved", error=error)

    @hookimpl
    def modelfit_fit_finished(self, fitter, best_params, best_error):
        self._record("modelfit_fit_finished", error=best_error)

    @hookimpl
    def modelfit_checkpoint_written(self, fitter, location):
        self._record("modelfit_checkpoint_written", location=location)


def test_lifecycle_hooks_reach_a_listener_plugin(example_installed, make_fitter, tmp_path):
    listener = Listener()
    pipe = Pipeline.from_names(optimizer="cmaes", metric="mae", feedback=None, seed=2,
                               plugins=[listener], storage=f"sqlite:///{tmp_path / 'fit.db'}",
                               study="listened")
    fitter = make_fitter(pipeline=pipe)
    _, error = fitter.fit(n_rounds=3, **BOUNDS)
    calls = listener.calls
    assert [c["index"] for c in calls["modelfit_round_finished"]] == [0, 1, 2]
    assert len(calls["modelfit_checkpoint_written"]) == 3
    assert calls["modelfit_checkpoint_written"][0]["location"].endswith("fit.db#listened")
    improvements = [c["error"] for c in calls["modelfit_best_improved"]]
    assert 1 <= len(improvements) <= 3 and improvements == sorted(improvements, reverse=True)
    assert calls["modelfit_fit_finished"] == [{"error": improvements[-1]}]
    assert float(error) == pytest.approx(improvements[-1])


def test_plugins_registered_in_code_provide_every_kind():
    """A plugin module made in code (as a notebook would) registers one class of each
    kind through the registration hooks; lookup finds each by name."""
    module = types.ModuleType("lab_plugin")

    class LabOptimizer:
        def initialize(self, parameter_names, popsize, rounds, **bounds): ...
        def ask(self, n_samples): ...
        def tell(self, parameters, errors): ...
        def recommend(self): ...

    class LabMetric:
        def calc(self, model_results, data_results, dt): ...

    class LabBackend:
        name = "lab"

        def prepare(self, spec): ...

    class LabFeedback:
        def __call__(self, params, errors, best_params, best_error, index, info=None): ...

    class LabInference:
        def infer(self, *args, **kwargs): ...

    classes = {"optimizers": LabOptimizer, "metrics": LabMetric, "backends": LabBackend,
               "feedback": LabFeedback, "inference": LabInference}
    module.modelfit_register_optimizers = hookimpl(lambda: {"lab": LabOptimizer})
    module.modelfit_register_metrics = hookimpl(lambda: {"lab": LabMetric})
    module.modelfit_register_backends = hookimpl(lambda: {"lab": LabBackend})
    module.modelfit_register_feedback = hookimpl(lambda: {"lab": LabFeedback})
    module.modelfit_register_inference = hookimpl(lambda: {"lab": LabInference})
    registry = Registry(load_entrypoints=False, plugins=[module])
    for kind, cls in classes.items():
        assert registry.lookup(kind, "lab") is cls
    assert registry.statuses["lab_plugin"].loaded
