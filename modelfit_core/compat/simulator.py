"""brian2modelfitting.simulator: the Simulator classes and standalone helpers.

They live in :mod:`modelfit_core.fitting.brian_simulators` (the fitters'
``setup_simulator`` returns them); this module keeps the manual's module name.
"""

from modelfit_core.fitting.brian_simulators import (  # noqa: F401  (re-exported)
    CPPStandaloneSimulator, DeviceError, NetworkLayoutError, NotANetworkError, RuntimeSimulator,
    Simulator, UnknownStateError, initialize_neurons, initialize_parameter, run_again,
    set_parameter_value, set_states, simulator_for_device)

__all__ = ["CPPStandaloneSimulator", "RuntimeSimulator", "Simulator", "initialize_neurons",
           "initialize_parameter", "run_again", "set_parameter_value", "set_states"]
