"""modelfit: fit Brian 2 neuron models to recordings, with plugins.

Two ways in:

* ``Pipeline.from_names(optimizer="nevergrad", metric="mse", backend="runtime")``
* the brian2modelfitting-style classes: ``TraceFitter``, ``NevergradOptimizer``,
  ``MSEMetric``, ... so ``from modelfit_core import *`` runs the manual's scripts.

Core names and plugin classes are resolved lazily (PEP 562 ``__getattr__``):
importing this package loads neither Brian 2 nor any plugin; a plugin's module
(and its library) is imported when its name is first used. ``__all__`` is
written out below, the same whatever extras are installed: the core's names and
the classes and helpers of modelfit's own plugins (a name whose extra is
missing is bound to a stand-in that says what to install, see
:mod:`modelfit_core.public_names`). Third-party plugins' classes are found by
``__getattr__`` and listed by ``dir()``, but are not in ``__all__``. Type
checkers read the ``TYPE_CHECKING`` imports, which Python never runs.

The layers of the core, each a sub-package importing only those below it:
``contracts`` -> ``model`` -> ``registry`` | ``results`` -> ``fitting`` ->
``tools`` (see docs/architecture.md); ``compat`` mirrors brian2modelfitting's
submodules above them (``modelfit_core.compat.utils`` for
``brian2modelfitting.utils``, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelfit_core.contracts.hookspecs import hookimpl, hookspec
from modelfit_core.version import __version__

__all__ = [
    # the core's names (where each lives: _CORE_NAMES)
    "ArgumentTypeError", "ConfigurationError", "DataError", "DuplicatePluginError", "Feedback",
    "FitStateError", "FitStore", "Fitter", "FittingProblem", "HH_MODEL", "LeastSquaresMetric",
    "Metric", "MetricWithUnits", "ModelDefinitionError", "ModelfitError", "OnlineTraceFitter",
    "Optimizer", "ParameterError", "ParameterSpace", "Parts", "Pipeline", "PluginContractError",
    "PluginLoadError", "ProgressBar", "Registry", "ResidualForm", "SimulationBackend",
    "SimulationError", "SimulationResult", "SimulationSpec", "SpikeFitter", "SpikeMetric",
    "StorageError", "TraceFitter", "TraceMetric", "UnitMismatchError", "UnknownPluginError",
    "callback_none", "callback_setup", "callback_text", "configure_simulator",
    "FitJob", "FitOutcome", "fit_many",
    "get_full_namespace", "get_param_dic", "get_param_dict", "get_sensitivity_equations",
    "get_sensitivity_init", "get_spikes", "load_hh_dataset", "make_dic", "normalize_weights",
    # the classes and helpers of modelfit's own plugins (found through the registry)
    "Brian2RuntimeBackend", "Brian2StandaloneBackend", "CPPStandaloneSimulator", "DaskBackend",
    "FeatureMetric", "GammaFactor", "GaussNewtonOptimizer", "Inferencer", "MSEMetric",
    "NSGA2Optimizer", "NSGA3Optimizer", "NevergradOptimizer", "ProgressBarFeedback", "PymooOptimizer",
    "RuntimeSimulator", "Simulator", "SkoptOptimizer", "TextFeedback", "WebDashboard", "calc_bounds",
    "RandomSearchOptimizer",
    # the benchmark suite's problems (modelfit.problems) and what they describe
    "AdExVoltage", "AdaptiveIFSpikes", "BenchmarkProblem", "CA1OneCompartment",
    "CA1TwoCompartments", "HHEightParameters", "HHFeatures", "HHTutorial", "PassiveMembrane",
    "calc_eFEL", "calc_prior", "firing_rate", "get_gamma_factor", "initialize_neurons",
    "initialize_parameter", "run_again", "set_parameter_value", "set_states", "setup_fit",
    # the hook markers, and the version
    "__version__", "hookimpl", "hookspec",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time: __getattr__ below
    from modelfit_core.compat.fitter import get_full_namespace, get_param_dic
    from modelfit_core.compat.inferencer import configure_simulator, get_param_dict
    from modelfit_core.compat.metric import normalize_weights
    from modelfit_core.compat.utils import (ProgressBar, callback_none, callback_setup,
                                            callback_text, make_dic)
    from modelfit_core.contracts.errors import (ArgumentTypeError, ConfigurationError,
                                                DataError, DuplicatePluginError,
                                                FitStateError, ModelDefinitionError,
                                                ModelfitError, ParameterError,
                                                PluginContractError, PluginLoadError,
                                                SimulationError, StorageError,
                                                UnknownPluginError)
    from modelfit_core.contracts.benchmark_problem import BenchmarkProblem
    from modelfit_core.contracts.metric_bases import Metric, SpikeMetric, TraceMetric
    from modelfit_core.contracts.protocols import (Feedback, LeastSquaresMetric,
                                                   MetricWithUnits, Optimizer, ResidualForm,
                                                   SimulationBackend)
    from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec
    from modelfit_core.contracts.units import UnitMismatchError
    from modelfit_core.fitting.fitter import Fitter
    from modelfit_core.fitting.online_trace_fitter import OnlineTraceFitter
    from modelfit_core.fitting.pipeline import Pipeline
    from modelfit_core.fitting.problem import FittingProblem
    from modelfit_core.fitting.spike_fitter import SpikeFitter
    from modelfit_core.fitting.trace_fitter import TraceFitter
    from modelfit_core.model.data import get_spikes
    from modelfit_core.model.parameters import ParameterSpace
    from modelfit_core.model.sensitivity import (get_sensitivity_equations,
                                                 get_sensitivity_init)
    from modelfit_core.registry.parts import Parts
    from modelfit_core.registry.plugin_registry import Registry
    from modelfit_core.results.storage import FitStore
    from modelfit_core.tools.datasets import HH_MODEL, load_hh_dataset
    from modelfit_core.tools.many_fits import FitJob, FitOutcome, fit_many
    # modelfit's own plugins: the modules their entry points name (pyproject.toml)
    from modelfit_plugins.backends.brian2_manual_simulator import (
        CPPStandaloneSimulator, RuntimeSimulator, Simulator, initialize_neurons,
        initialize_parameter, run_again, set_parameter_value, set_states, setup_fit)
    from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend
    from modelfit_plugins.backends.brian2_standalone import Brian2StandaloneBackend
    from modelfit_plugins.backends.dask_backend import DaskBackend
    from modelfit_plugins.feedback.progressbar import ProgressBarFeedback
    from modelfit_plugins.dashboard.web_dashboard import WebDashboard
    from modelfit_plugins.feedback.text import TextFeedback
    from modelfit_plugins.inference.sbi_inference import Inferencer
    from modelfit_plugins.inference.sbi_prior import calc_prior
    from modelfit_plugins.metrics.efel_calc import calc_eFEL
    from modelfit_plugins.metrics.efel_features import FeatureMetric
    from modelfit_plugins.metrics.gamma_factor import GammaFactor, firing_rate, get_gamma_factor
    from modelfit_plugins.metrics.mse import MSEMetric
    from modelfit_plugins.optimizers.bounds import calc_bounds
    from modelfit_plugins.optimizers.gradient_optimizer import GaussNewtonOptimizer
    from modelfit_plugins.optimizers.nevergrad_optimizer import NevergradOptimizer
    from modelfit_plugins.optimizers.pymoo_multiobjective import NSGA2Optimizer, NSGA3Optimizer
    from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer
    from modelfit_plugins.optimizers.random_search import RandomSearchOptimizer
    from modelfit_plugins.optimizers.skopt_optimizer import SkoptOptimizer
    from modelfit_plugins.problems.ca1_passive import CA1OneCompartment, CA1TwoCompartments
    from modelfit_plugins.problems.hodgkin_huxley import (HHEightParameters, HHFeatures,
                                                          HHTutorial)
    from modelfit_plugins.problems.integrate_and_fire import AdaptiveIFSpikes, AdExVoltage
    from modelfit_plugins.problems.passive import PassiveMembrane

_CORE_NAMES = {
    "TraceFitter": "modelfit_core.fitting.trace_fitter",
    "SpikeFitter": "modelfit_core.fitting.spike_fitter",
    "OnlineTraceFitter": "modelfit_core.fitting.online_trace_fitter",
    "Fitter": "modelfit_core.fitting.fitter",
    "Pipeline": "modelfit_core.fitting.pipeline",
    "FittingProblem": "modelfit_core.fitting.problem",
    "Parts": "modelfit_core.registry.parts",
    "Registry": "modelfit_core.registry.plugin_registry",
    "FitStore": "modelfit_core.results.storage",
    "ParameterSpace": "modelfit_core.model.parameters",
    "Metric": "modelfit_core.contracts.metric_bases",
    "TraceMetric": "modelfit_core.contracts.metric_bases",
    "SpikeMetric": "modelfit_core.contracts.metric_bases",
    "SimulationSpec": "modelfit_core.contracts.simulation",
    "BenchmarkProblem": "modelfit_core.contracts.benchmark_problem",
    "SimulationResult": "modelfit_core.contracts.simulation",
    "Optimizer": "modelfit_core.contracts.protocols",
    "SimulationBackend": "modelfit_core.contracts.protocols",
    "Feedback": "modelfit_core.contracts.protocols",
    "LeastSquaresMetric": "modelfit_core.contracts.protocols",
    "MetricWithUnits": "modelfit_core.contracts.protocols",
    "ResidualForm": "modelfit_core.contracts.protocols",
    "ModelfitError": "modelfit_core.contracts.errors",
    "ConfigurationError": "modelfit_core.contracts.errors",
    "ParameterError": "modelfit_core.contracts.errors",
    "UnitMismatchError": "modelfit_core.contracts.units",
    "ArgumentTypeError": "modelfit_core.contracts.errors",
    "DataError": "modelfit_core.contracts.errors",
    "ModelDefinitionError": "modelfit_core.contracts.errors",
    "UnknownPluginError": "modelfit_core.contracts.errors",
    "PluginLoadError": "modelfit_core.contracts.errors",
    "PluginContractError": "modelfit_core.contracts.errors",
    "FitStateError": "modelfit_core.contracts.errors",
    "SimulationError": "modelfit_core.contracts.errors",
    "StorageError": "modelfit_core.contracts.errors",
    "DuplicatePluginError": "modelfit_core.contracts.errors",
    "get_spikes": "modelfit_core.model.data",
    "get_sensitivity_equations": "modelfit_core.model.sensitivity",
    "get_sensitivity_init": "modelfit_core.model.sensitivity",
    "load_hh_dataset": "modelfit_core.tools.datasets",
    "HH_MODEL": "modelfit_core.tools.datasets",
    "fit_many": "modelfit_core.tools.many_fits",
    "FitJob": "modelfit_core.tools.many_fits",
    "FitOutcome": "modelfit_core.tools.many_fits",
    # the rest of brian2modelfitting's API reference (docs/compatibility.md); the
    # helpers that live in plugins come from the modelfit.exports entry points
    "get_param_dic": "modelfit_core.compat.fitter",
    "get_full_namespace": "modelfit_core.compat.fitter",
    "get_param_dict": "modelfit_core.compat.inferencer",
    "configure_simulator": "modelfit_core.compat.inferencer",
    "normalize_weights": "modelfit_core.compat.metric",
    "make_dic": "modelfit_core.compat.utils",
    "callback_text": "modelfit_core.compat.utils",
    "callback_none": "modelfit_core.compat.utils",
    "callback_setup": "modelfit_core.compat.utils",
    "ProgressBar": "modelfit_core.compat.utils",
}

def _plugin_registry():
    from modelfit_core.registry.plugin_registry import shared_registry
    return shared_registry()


def _find_plugin_name(name: str) -> Any:
    registry = _plugin_registry()
    found = registry.find_class(name)
    return found if found is not None else registry.find_export(name)


def __getattr__(name: str) -> Any:
    if name in _CORE_NAMES:
        value = getattr(importlib.import_module(_CORE_NAMES[name]), name)
        globals()[name] = value
        return value
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from modelfit_core.public_names import UnavailableName, offered_name
    value = offered_name(__name__, name, __all__, _find_plugin_name)
    if not isinstance(value, UnavailableName):
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    """``__all__`` and the classes and helpers of every installed plugin (third-party ones
    included)."""
    registry = _plugin_registry()
    return sorted(set(__all__) | set(registry.class_names()) | set(registry.export_names()))
