"""brian2modelfitting.simulator: the Simulator classes and standalone helpers.

They drive Brian's devices, so they live with the Brian backend plugins
(``modelfit_plugins.backends.brian2_manual_simulator``) and are found through
the registry (``modelfit.exports`` entry points) when first used; this module
keeps the manual's module name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelfit_core.compat.plugin_names import module_getattr

_KIND = "backends"
__all__ = ["CPPStandaloneSimulator", "RuntimeSimulator", "Simulator", "initialize_neurons",
           "initialize_parameter", "run_again", "set_parameter_value", "set_states"]

if TYPE_CHECKING:  # for type checkers; at run time: __getattr__
    from modelfit_plugins.backends.brian2_manual_simulator import (
        CPPStandaloneSimulator, RuntimeSimulator, Simulator, initialize_neurons,
        initialize_parameter, run_again, set_parameter_value, set_states)


def __getattr__(name: str) -> Any:
    return module_getattr(__name__, _KIND, name, __all__)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
