"""What a plugin may use of modelfit beyond the contracts.

A plugin (modelfit's own in ``modelfit_plugins``, or a third party's) imports
from two places only, an import-linter contract checks it for the built-in
ones (``pyproject.toml``, "Plugins use the plugin API"):

* :mod:`modelfit_core.contracts` (and its modules): the Protocols and
  capabilities, errors, units, ``SimulationSpec``/``SimulationResult``, the
  metric base classes, ``hookimpl``;
* this module: the few core services a plugin builds on, listed in
  ``__all__`` below. Everything else of ``modelfit_core`` may change without
  notice.

The names are resolved when first used, so importing this module imports
neither Brian 2 nor the fitting machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelfit_core.contracts.hookspecs import hookimpl
    from modelfit_core.fitting.generation import generate_outputs, parameter_point
    from modelfit_core.fitting.manual_network import simulator as manual_simulator
    from modelfit_core.fitting.problem import GENERATE_ITERATION, FittingProblem
    from modelfit_core.model.data import as_named, get_spikes
    from modelfit_core.model.namespace import user_namespace
    from modelfit_core.model.parameters import ParameterSpace
    from modelfit_core.registry.entry_points import DISTRIBUTION, install_hint
    from modelfit_core.registry.parts import Parts
    from modelfit_core.registry.plugin_registry import shared_registry
    from modelfit_core.results.database import database_path, open_for_reading, table_columns
    from modelfit_core.results.display_tables import (read_best_traces, read_details,
                                                      read_recordings, traced_points)
    from modelfit_core.results.fit_sessions import StudyStatus, study_status
    from modelfit_core.results.pareto import ParetoFront, non_dominated
    from modelfit_core.results.round_workers import read_worker_activity
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset

_WHERE = {
    # plugin machinery
    "hookimpl": "modelfit_core.contracts.hookspecs",
    "shared_registry": "modelfit_core.registry.plugin_registry",
    "Parts": "modelfit_core.registry.parts",
    "DISTRIBUTION": "modelfit_core.registry.entry_points",
    "install_hint": "modelfit_core.registry.entry_points",
    # a fitting problem, for plugins that simulate a model themselves (inference)
    "FittingProblem": "modelfit_core.fitting.problem",
    "GENERATE_ITERATION": "modelfit_core.fitting.problem",
    "ParameterSpace": "modelfit_core.model.parameters",
    "parameter_point": "modelfit_core.fitting.generation",
    "generate_outputs": "modelfit_core.fitting.generation",
    "manual_simulator": "modelfit_core.fitting.manual_network",
    # data helpers
    "as_named": "modelfit_core.model.data",
    "get_spikes": "modelfit_core.model.data",
    "user_namespace": "modelfit_core.model.namespace",
    # results
    "ParetoFront": "modelfit_core.results.pareto",
    "non_dominated": "modelfit_core.results.pareto",
    # reading a study database (dashboards): read-only, schema checked
    "database_path": "modelfit_core.results.database",
    "open_for_reading": "modelfit_core.results.database",
    "table_columns": "modelfit_core.results.database",
    "read_details": "modelfit_core.results.display_tables",
    "read_recordings": "modelfit_core.results.display_tables",
    "read_best_traces": "modelfit_core.results.display_tables",
    "traced_points": "modelfit_core.results.display_tables",
    "read_worker_activity": "modelfit_core.results.round_workers",
    "study_status": "modelfit_core.results.fit_sessions",
    "StudyStatus": "modelfit_core.results.fit_sessions",
    # the tutorial's HH model and bundled recordings (the benchmark suite's first problem)
    "HH_MODEL": "modelfit_core.tools.datasets",
    "hh_constants": "modelfit_core.tools.datasets",
    "load_hh_dataset": "modelfit_core.tools.datasets",
}
_RENAMED = {"manual_simulator": "simulator"}

__all__ = ["DISTRIBUTION", "FittingProblem", "GENERATE_ITERATION", "HH_MODEL", "ParameterSpace",
           "ParetoFront", "Parts", "StudyStatus", "as_named", "database_path",
           "generate_outputs", "get_spikes", "hh_constants", "hookimpl", "install_hint", "load_hh_dataset", "manual_simulator",
           "non_dominated", "open_for_reading", "parameter_point", "read_best_traces",
           "read_details", "read_recordings", "read_worker_activity", "shared_registry",
           "study_status",
           "table_columns", "traced_points", "user_namespace"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (a plugin may "
                             f"use: {', '.join(__all__)}, and modelfit_core.contracts)")
    value = getattr(importlib.import_module(_WHERE[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
