"""brian2modelfitting.optimizer: the optimizer interface and its plugins.

``Optimizer`` is the core's protocol (subclass it, or write any class with
``initialize``/``ask``/``tell``/``recommend``); the optimizer plugins
(``NevergradOptimizer``, ``SkoptOptimizer``, ...) and ``calc_bounds`` are found
through the registry when first used.
"""

from __future__ import annotations

import importlib

from modelfit_core.compat.plugin_names import module_getattr, plugin_names

_KIND = "optimizers"
_CORE = {"Optimizer": "modelfit_core.contracts.protocols"}


def __getattr__(name: str):
    if name == "__all__":
        return sorted(set(_CORE) | set(plugin_names(_KIND)))
    if name in _CORE:
        value = getattr(importlib.import_module(_CORE[name]), name)
    else:
        value = module_getattr(__name__, _KIND, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__getattr__("__all__")))
