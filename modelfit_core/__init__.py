"""modelfit: fit Brian 2 neuron models to recordings, with plugins.

Two ways in:

* ``Pipeline.from_names(optimizer="nevergrad", metric="mse", backend="runtime")``
* the brian2modelfitting-style classes: ``TraceFitter``, ``NevergradOptimizer``,
  ``MSEMetric``, ... so ``from modelfit_core import *`` runs the manual's scripts.

Core names and plugin classes are resolved lazily (PEP 562 ``__getattr__``):
importing this package loads neither Brian 2 nor any plugin. ``__all__`` and
``dir()`` list the plugins' class names from the installed metadata; a
plugin's module (and its library) is imported when its name is first used.

The layers of the core, each a sub-package importing only those below it:
``contracts`` -> ``model`` -> ``registry`` | ``results`` -> ``fitting`` ->
``tools`` (see docs/architecture.md); ``compat`` mirrors brian2modelfitting's
submodules above them (``modelfit_core.compat.utils`` for
``brian2modelfitting.utils``, ...).
"""

from __future__ import annotations

import importlib

from modelfit_core.contracts.hookspecs import hookimpl, hookspec  # noqa: F401 (public names)

__version__ = "0.2.0"

_CORE_NAMES = {
    "TraceFitter": "modelfit_core.fitting.trace_fitter",
    "SpikeFitter": "modelfit_core.fitting.spike_fitter",
    "OnlineTraceFitter": "modelfit_core.fitting.online_trace_fitter",
    "Fitter": "modelfit_core.fitting.fitter",
    "Pipeline": "modelfit_core.fitting.pipeline",
    "FittingProblem": "modelfit_core.fitting.problem",
    "Parts": "modelfit_core.registry.parts",
    "Registry": "modelfit_core.registry.plugin_registry",
    "ParameterSpace": "modelfit_core.model.parameters",
    "Metric": "modelfit_core.contracts.metric_bases",
    "TraceMetric": "modelfit_core.contracts.metric_bases",
    "SpikeMetric": "modelfit_core.contracts.metric_bases",
    "SimulationSpec": "modelfit_core.contracts.simulation",
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


def __getattr__(name: str):
    if name in _CORE_NAMES:
        value = getattr(importlib.import_module(_CORE_NAMES[name]), name)
        globals()[name] = value
        return value
    if name == "__all__":
        registry = _plugin_registry()
        return sorted(set(_CORE_NAMES) | set(registry.class_names())
                      | set(registry.export_names()) | {"hookimpl", "hookspec", "__version__"})
    if not name.startswith("_"):
        registry = _plugin_registry()
        found = registry.find_class(name)
        if found is None:
            found = registry.find_export(name)
        if found is not None:
            globals()[name] = found
            return found
    raise AttributeError(f"module 'modelfit_core' has no attribute {name!r}")


def __dir__():
    return __getattr__("__all__")
