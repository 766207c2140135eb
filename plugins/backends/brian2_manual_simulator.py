"""brian2modelfitting.simulator: run a Brian network again and again with new parameters.

For scripts that build a Brian ``Network`` themselves: a ``NeuronGroup`` named
``neurons`` and a ``StateMonitor`` named ``statemonitor`` and/or a
``SpikeMonitor`` named ``spikemonitor``. ``initialize`` stores the network,
``run`` sets the parameters (one value per neuron) and simulates:

* :class:`RuntimeSimulator` restores the stored state, sets the values and
  runs the network in Python (``network.run``).
* :class:`CPPStandaloneSimulator` builds the C++ project on the first run with
  each parameter taken from the binary's command line (``initialize_neurons``);
  later runs give new values (``set_states``) and run the compiled binary again
  (``run_again``), as the ``cpp_standalone`` backend does
  (:mod:`.brian2_standalone_rerun`): nothing is generated or compiled twice.

modelfit's fits simulate through the backend plugins; these classes serve
scripts that drive a Brian network themselves, and the fitters'
``setup_simulator`` (the manual's method) returns one. They are offered by
``from modelfit_core import *`` and ``modelfit_core.compat.simulator`` through
the ``modelfit.exports`` entry points. Brian is imported when a function is
first called.
"""

from __future__ import annotations

import abc
import weakref
from typing import Any, Mapping, Sequence

import numpy as np

from modelfit_core.contracts.errors import (ArgumentTypeError, ConfigurationError, DataError,
                                            FitStateError, ParameterError)
from modelfit_core.plugin_api import user_namespace

__all__ = ["CPPStandaloneSimulator", "RuntimeSimulator", "Simulator", "initialize_neurons",
           "initialize_parameter", "run_again", "set_parameter_value", "set_states"]

STORE_NAME = "modelfit_compat_initial"
"""The name under which RuntimeSimulator stores a network's initial state."""


class NetworkLayoutError(ConfigurationError, KeyError):
    """The network lacks the ``neurons`` group or the monitor asked for (also a KeyError,
    as in brian2modelfitting)."""

    def __str__(self):  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class NotANetworkError(ArgumentTypeError):
    """``initialize`` was given something other than a Brian ``Network``."""


class DeviceError(ConfigurationError, RuntimeError):
    """The active Brian device cannot do what was asked (e.g. a standalone function
    called in runtime mode, or a device without a simulator)."""


class UnknownStateError(ParameterError, KeyError):
    """A value for a variable that ``initialize_neurons`` did not prepare."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def _standalone_device(what: str):
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
    from brian2.devices.device import get_device
    device = get_device()
    if not isinstance(device, CPPStandaloneDevice):
        raise DeviceError(f"{what} works with the C++ standalone device only; call "
                          f"set_device('cpp_standalone') first (the active device is "
                          f"{type(device).__name__}).")
    return device


_NEXT_RUN: weakref.WeakKeyDictionary[Any, tuple[list, dict[str, list]]] = \
    weakref.WeakKeyDictionary()
"""Per standalone device: its main queue when the values were given, and identifier ->
[view, values] of what :func:`run_again` gives its binary."""


def _values_of_next_run(device) -> dict[str, list]:
    """Identifier -> [view, values] of the variables ``device``'s binary gets on its
    command line; forgotten when the device was reset (Brian's ``reinit`` starts a
    new main queue)."""
    queue, table = _NEXT_RUN.get(device, (None, None))
    if queue is not device.main_queue:
        table = {}
        _NEXT_RUN[device] = (device.main_queue, table)
    return table


def initialize_parameter(variableview, value) -> str:
    """Make a standalone group take ``variableview``'s values on the command line of
    its binary, so that later runs can change them without compiling again.

    The binary applies its command-line values where ``device.apply_run_args()`` was
    queued, or, if it was not, just before the network runs.

    Parameters
    ----------
    variableview : VariableView
        The variable, e.g. ``neurons.gl`` (before the project is built).
    value : array, Quantity or number
        Its values in SI units: one per neuron, or one for all (those of the
        first run).

    Returns
    -------
    str
        The variable's identifier (give it to :func:`set_parameter_value`).
    """
    from .brian2_standalone_rerun import run_arg_values
    device = _standalone_device("initialize_parameter")
    # Brian's run arguments are checked against the view's units: the one with units
    variableview = variableview.group.state(variableview.name, use_units=True)
    try:
        values = run_arg_values(variableview, value)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    table = _values_of_next_run(device)
    identifier = device.get_array_name(variableview.variable)
    variableview.set_item(slice(None), np.asarray(values))  # the first run's values
    table[identifier] = [variableview, values]
    return identifier


def initialize_neurons(params_names: Sequence[str], neurons, params: Mapping[str, Any]
                       ) -> dict[str, str]:
    """:func:`initialize_parameter` for each of ``params_names`` of ``neurons``.

    Returns
    -------
    dict
        Parameter name -> static-array file name (what :func:`set_states` takes).
    """
    missing = [name for name in params_names if name not in params]
    if missing:
        raise ParameterError(f"No values given for {', '.join(missing)}.")
    return {name: initialize_parameter(neurons.state(name, use_units=False), params[name])
            for name in params_names}


def run_again() -> None:
    """Run the built standalone project again (its binary, with the values given to
    :func:`set_parameter_value` since it was built)."""
    from .brian2_standalone_rerun import run_binary
    device = _standalone_device("run_again")
    if not device.has_been_run or device.project_dir is None:
        raise FitStateError("run_again() needs a built project: run the network once "
                            "(e.g. CPPStandaloneSimulator.run) first.")
    run_args = {view: values for view, values in _values_of_next_run(device).values()}
    run_binary(device, run_args, device.project_dir)


def set_parameter_value(identifier: str, value) -> None:
    """The values of a variable prepared by :func:`initialize_parameter` in the next
    runs of the built project.

    Parameters
    ----------
    identifier : str
        A name returned by :func:`initialize_parameter`.
    value : array, Quantity or number
        The new values in SI units, as many as the variable has (or one for all).
    """
    from .brian2_standalone_rerun import run_arg_values
    device = _standalone_device("set_parameter_value")
    if device.project_dir is None:
        raise FitStateError("set_parameter_value() needs a built project: run the network "
                            "once first.")
    prepared = _values_of_next_run(device)
    if identifier not in prepared:
        raise UnknownStateError(f"{identifier!r} was not prepared by initialize_parameter "
                                f"(prepared: {', '.join(prepared) or 'nothing'}).")
    entry = prepared[identifier]
    try:
        entry[1] = run_arg_values(entry[0], value)
    except ValueError as exc:
        raise DataError(str(exc)) from exc


def set_states(init_dict: Mapping[str, str], values: Mapping[str, Any]) -> None:
    """:func:`set_parameter_value` for each ``name: values``; ``init_dict`` is what
    :func:`initialize_neurons` returned."""
    unknown = [name for name in values if name not in init_dict]
    if unknown:
        raise UnknownStateError(f"{', '.join(unknown)} {'was' if len(unknown) == 1 else 'were'}"
                                f" not prepared by initialize_neurons (prepared: "
                                f"{', '.join(init_dict) or 'nothing'}).")
    for name, value in values.items():
        set_parameter_value(init_dict[name], value)


def _set_values(neurons, values: Mapping[str, Any], namespace: dict) -> None:
    """Set initial values (numbers, quantities or string expressions) on ``neurons``."""
    for name, value in values.items():
        use_units = not name.endswith("_")
        view = neurons.state(name if use_units else name[:-1], use_units=use_units)
        view.set_item(slice(None), value, namespace=namespace)


class Simulator(abc.ABC):
    """Runs a Brian network for a batch of parameter sets (see the module's text)."""

    def __init__(self):
        self.networks: dict[str, Any] = {}
        self.var_inits: dict[str, Mapping[str, Any] | None] = {}
        self.current_net: str | None = None
        self.var_init: Mapping[str, Any] | None = None

    def _component(self, name: str):
        if self.current_net is None:
            raise FitStateError("No network yet: call initialize(network, var_init) first.")
        network = self.networks[self.current_net]
        if name not in network:
            raise NetworkLayoutError(f"The network {self.current_net!r} has no object named "
                                     f"{name!r}.")
        return network[name]

    @property
    def neurons(self):
        """The ``NeuronGroup`` named ``neurons`` of the current network."""
        return self._component("neurons")

    @property
    def statemonitor(self):
        """The ``StateMonitor`` named ``statemonitor`` of the current network."""
        return self._component("statemonitor")

    @property
    def spikemonitor(self):
        """The ``SpikeMonitor`` named ``spikemonitor`` of the current network."""
        return self._component("spikemonitor")

    def initialize(self, network, var_init, name: str = "fit") -> None:
        """Prepare ``network`` for running; it becomes the current network.

        Parameters
        ----------
        network : Network
            With a ``NeuronGroup`` named ``neurons`` and a monitor named
            ``statemonitor`` or ``spikemonitor`` (or both).
        var_init : dict or None
            Initial values of variables, set before each run (after the parameters).
        name : str, optional
            The network's name for :meth:`run`.
        """
        from brian2 import Network
        if not isinstance(network, Network):
            raise NotANetworkError(f"initialize() needs a brian2 Network; got "
                                   f"{type(network).__name__}.")
        if "neurons" not in network:
            raise NetworkLayoutError('Expected a group named "neurons" in the network.')
        if "statemonitor" not in network and "spikemonitor" not in network:
            raise NetworkLayoutError('Expected a monitor named "spikemonitor" or '
                                     '"statemonitor" in the network.')
        self.networks[name] = network
        self.var_inits[name] = var_init
        self.var_init = var_init
        self.current_net = name

    def _start(self, name: str, params: Mapping[str, Any], params_names, iteration):
        """Make ``name`` current; the values to set: ``params_names`` (+ iteration)."""
        if name not in self.networks:
            raise FitStateError(f"No network named {name!r}: call initialize(network, "
                                f"var_init, name={name!r}) first.")
        self.current_net = name
        names = list(params) if params_names is None else list(params_names)
        missing = [n for n in names if n not in params]
        extra = [n for n in params if n not in names]
        if missing or extra:
            raise ParameterError(
                "params and params_names must name the same parameters: "
                + (f"no values for {', '.join(missing)}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"{', '.join(extra)} not in params_names" if extra else "") + ".")
        values = {n: params[n] for n in sorted(names)}
        if "iteration" in self.networks[name]["neurons"].variables:
            values["iteration"] = iteration
        return self.networks[name], values

    @abc.abstractmethod
    def run(self, duration, params, params_names, iteration, name="fit", *,
            namespace=None, level=0):
        """Set the parameters on ``neurons`` and simulate the network for ``duration``.

        Parameters
        ----------
        duration : Quantity
            Simulated time.
        params : dict
            Parameter name -> values, one per neuron (or one for all), SI units.
        params_names : list of str
            The names of ``params`` to set.
        iteration : int
            Value of the model's ``iteration`` variable, if it has one.
        name : str, optional
            The network (as given to :meth:`initialize`).
        namespace : dict, optional (keyword only)
            Names the model refers to; default: the caller's, ``level`` frames up.
        """


class RuntimeSimulator(Simulator):
    """Runs the network with Brian's runtime device (``network.run``)."""

    def initialize(self, network, var_init, name: str = "fit") -> None:
        """As :meth:`Simulator.initialize`; also stores the network's state, to which
        every run returns."""
        super().initialize(network, var_init, name)
        network.store(STORE_NAME)

    def run(self, duration, params, params_names, iteration, name="fit", *,
            namespace=None, level=0):
        """Restore the stored state, set the parameters and initial values, and run."""
        network, values = self._start(name, params, params_names, iteration)
        if namespace is None:
            namespace = user_namespace(level)
        network.restore(STORE_NAME)
        network["neurons"].set_states(values, units=False)
        if self.var_inits.get(name):
            _set_values(network["neurons"], self.var_inits[name], namespace)
        network.run(duration, namespace=namespace)


class CPPStandaloneSimulator(Simulator):
    """Runs the network with Brian's C++ standalone device, compiled once.

    The first :meth:`run` generates and builds the project (also with
    ``set_device('cpp_standalone', build_on_run=False)``); later runs only
    rewrite the parameter files and run the binary again.
    """

    def __init__(self):
        super().__init__()
        self.params_inits: dict[str, dict[str, str]] = {}
        self.params_init: dict[str, str] | None = None

    def run(self, duration, params, params_names, iteration, name="fit", *,
            namespace=None, level=0):
        """Build and run the project (first call), or run it again with new values."""
        device = _standalone_device("CPPStandaloneSimulator")
        network, values = self._start(name, params, params_names, iteration)
        if not device.has_been_run:
            if namespace is None:
                namespace = user_namespace(level)
            neurons = network["neurons"]
            self.params_init = self.params_inits[name] = \
                initialize_neurons(list(values), neurons, values)
            if not device.run_args_applied:  # before the initial values, which may use them
                device.apply_run_args()
            if self.var_inits.get(name):
                _set_values(neurons, self.var_inits[name], namespace)
            network.run(duration, namespace=namespace)
            if not device.has_been_run:  # build_on_run=False: the run was only recorded
                device.build(**device.build_options)
            return
        if name not in self.params_inits:
            raise FitStateError(
                f"The standalone project was built for {', '.join(map(repr, self.params_inits))}"
                f" only; call setup_fit() (which resets the device) before running another "
                f"network.")
        self.params_init = self.params_inits[name]
        set_states(self.params_init, values)
        run_again()


def setup_fit() -> Simulator:
    """A new simulator for Brian's active device (the manual's ``setup_fit``); a
    standalone device that has run is reset first."""
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
    from brian2.devices.device import RuntimeDevice, get_device
    device = get_device()
    if isinstance(device, CPPStandaloneDevice):
        if device.has_been_run:
            build_on_run, options = device.build_on_run, dict(device.build_options)
            device.reinit()
            device.activate(build_on_run=build_on_run, **options)
        return CPPStandaloneSimulator()
    if isinstance(device, RuntimeDevice):
        return RuntimeSimulator()
    raise DeviceError(f"No simulator for the device {type(device).__name__}: use the "
                      f"runtime or the cpp_standalone device.")


def neuron_group_for_spec(spec, name: str = "neurons"):
    """The ``NeuronGroup`` of a fitting problem's
    :class:`~modelfit_core.contracts.simulation.SimulationSpec` on Brian's active
    device: ``spec.n_neurons`` neurons, inputs wired in as ``TimedArray``s (neuron
    ``i`` driven by trace ``i % n_traces``), constants and numeric initial values
    set (the fitters' ``setup_neuron_group``)."""
    from .brian2_model import build_group
    return build_group(spec, name=name)[0]


def simulator_for_spec(spec, network_name: str, output_var, param_init) -> Simulator:
    """A :class:`Simulator` for Brian's active device, initialized with a network of
    the spec's group (named ``neurons``), a ``StateMonitor`` of the trace variables
    in ``output_var`` (named ``statemonitor``) and, for ``'spikes'``, a
    ``SpikeMonitor`` (named ``spikemonitor``); ``param_init`` is set before every
    run (the fitters' ``setup_simulator``)."""
    from brian2 import Network, SpikeMonitor, StateMonitor
    names = [output_var] if isinstance(output_var, str) else list(output_var)
    traces = [n for n in names if n != "spikes"]
    group = neuron_group_for_spec(spec, name="neurons")
    objects = [group]
    if traces:
        objects.append(StateMonitor(group, traces, record=True, name="statemonitor"))
    if "spikes" in names:
        objects.append(SpikeMonitor(group, record=True, name="spikemonitor"))
    simulator = setup_fit()
    simulator.initialize(Network(*objects), dict(param_init or {}), name=network_name)
    return simulator
