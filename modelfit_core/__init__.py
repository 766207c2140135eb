"""modelfit: fit Brian 2 neuron models to recordings, with plugins.

Two ways in:

* ``Pipeline.from_names(optimizer="nevergrad", metric="mse", backend="runtime")``
* the brian2modelfitting-style classes: ``TraceFitter``, ``NevergradOptimizer``,
  ``MSEMetric``, ... so ``from modelfit_core import *`` runs the manual's scripts.

Core names and plugin classes are resolved lazily (PEP 562 ``__getattr__``):
importing this package loads neither Brian 2 nor any plugin.
"""

from __future__ import annotations

import importlib

from modelfit_core.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

_CORE_NAMES = {
    "TraceFitter": "modelfit_core.trace_fitter",
    "SpikeFitter": "modelfit_core.spike_fitter",
    "OnlineTraceFitter": "modelfit_core.online_trace_fitter",
    "Fitter": "modelfit_core.fitter_base",
    "Pipeline": "modelfit_core.pipeline",
    "Registry": "modelfit_core.registry",
    "ParameterSpace": "modelfit_core.parameters",
    "Metric": "modelfit_core.metric_base",
    "TraceMetric": "modelfit_core.metric_base",
    "SpikeMetric": "modelfit_core.metric_base",
    "SimulationSpec": "modelfit_core.simulation",
    "SimulationResult": "modelfit_core.simulation",
    "Optimizer": "modelfit_core.protocols",
    "SimulationBackend": "modelfit_core.protocols",
    "Feedback": "modelfit_core.protocols",
    "ModelfitError": "modelfit_core.errors",
    "ConfigurationError": "modelfit_core.errors",
    "ParameterError": "modelfit_core.errors",
    "UnitMismatchError": "modelfit_core.errors",
    "DataError": "modelfit_core.errors",
    "ModelDefinitionError": "modelfit_core.errors",
    "UnknownPluginError": "modelfit_core.errors",
    "PluginLoadError": "modelfit_core.errors",
    "PluginContractError": "modelfit_core.errors",
    "FitStateError": "modelfit_core.errors",
    "get_spikes": "modelfit_core.data",
    "get_sensitivity_equations": "modelfit_core.sensitivity",
    "get_sensitivity_init": "modelfit_core.sensitivity",
    "load_hh_dataset": "modelfit_core.datasets",
    "HH_MODEL": "modelfit_core.datasets",
}

_registry = None


def _plugin_registry():
    global _registry
    if _registry is None:
        from modelfit_core.registry import Registry
        _registry = Registry()
    return _registry


def __getattr__(name: str):
    if name in _CORE_NAMES:
        value = getattr(importlib.import_module(_CORE_NAMES[name]), name)
        globals()[name] = value
        return value
    if name == "__all__":
        return sorted(set(_CORE_NAMES) | set(_plugin_registry().class_names())
                      | {"hookimpl", "hookspec"})
    if not name.startswith("_"):
        found = _plugin_registry().find_class(name)
        if found is not None:
            globals()[name] = found
            return found
    raise AttributeError(f"module 'modelfit_core' has no attribute {name!r}")


def __dir__():
    return __getattr__("__all__")
