"""brian2modelfitting.optimizer: the optimizer interface and its plugins.

``Optimizer`` is the core's protocol (subclass it, or write any class with
``initialize``/``ask``/``tell``/``recommend``); the optimizer plugins
(``NevergradOptimizer``, ``SkoptOptimizer``, ...) and ``calc_bounds`` are found
through the registry when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelfit_core.compat.plugin_names import module_getattr, plugin_names

__all__ = ["GaussNewtonOptimizer", "NSGA2Optimizer", "NSGA3Optimizer", "NevergradOptimizer", "Optimizer",
           "PymooOptimizer", "SkoptOptimizer", "calc_bounds"]

if TYPE_CHECKING:  # for type checkers; at run time: __getattr__
    from modelfit_core.contracts.protocols import Optimizer
    from modelfit_plugins.optimizers.bounds import calc_bounds
    from modelfit_plugins.optimizers.gradient_optimizer import GaussNewtonOptimizer
    from modelfit_plugins.optimizers.nevergrad_optimizer import NevergradOptimizer
    from modelfit_plugins.optimizers.pymoo_multiobjective import NSGA2Optimizer, NSGA3Optimizer
    from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer
    from modelfit_plugins.optimizers.skopt_optimizer import SkoptOptimizer

_KIND = "optimizers"
_CORE = {"Optimizer": "modelfit_core.contracts.protocols"}


def __getattr__(name: str) -> Any:
    if name in _CORE:
        value = getattr(importlib.import_module(_CORE[name]), name)
        globals()[name] = value
        return value
    return module_getattr(__name__, _KIND, name, __all__)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(plugin_names(_KIND)))
