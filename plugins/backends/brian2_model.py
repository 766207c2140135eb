"""Turning a :class:`SimulationSpec` into Brian 2 objects.

Shared by the runtime and (later) the standalone backends: building the
equations with the inputs as :class:`~brian2.TimedArray` functions, the
NeuronGroup and its monitors.
"""

from __future__ import annotations

import contextlib

import numpy as np
from brian2 import (Equations, Network, NeuronGroup, SpikeMonitor, StateMonitor, TimedArray,
                    second)
from brian2.units.fundamentalunits import DIMENSIONLESS
from brian2.units.fundamentalunits import get_unit

from modelfit_core.plugin_api import get_spikes
from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec, online_error_variable

from .brian2_code_cache import install as install_code_cache

INPUT_PREFIX = "modelfit_input_"
TARGET_PREFIX = "modelfit_target_"


def stop_requested() -> bool:
    """Whether Ctrl-C asked the running simulation to stop.

    Brian replaces Python's SIGINT handler when it is imported: while a
    simulation runs (``Network._globally_running``), Ctrl-C only sets
    ``Network._globally_stopped``, and ``Network.run`` returns early with the
    simulation cut short (a second Ctrl-C raises KeyboardInterrupt at once).
    """
    return bool(Network._globally_stopped)


def interrupted(what: str) -> KeyboardInterrupt:
    """The KeyboardInterrupt a backend raises for a simulation stopped early: a cut
    simulation must never be scored. Brian's stop flag is cleared, so that the next
    round runs normally."""
    Network._globally_stopped = False
    return KeyboardInterrupt(f"Interrupted (Ctrl-C): {what} was stopped before its end, "
                             f"so this round is discarded.")


def forget_stop_request() -> None:
    """Clear a stop asked for before the simulation about to run (e.g. Ctrl-C between
    two rounds, already turned into KeyboardInterrupt elsewhere)."""
    Network._globally_stopped = False


@contextlib.contextmanager
def stop_on_interrupt():
    """Make Ctrl-C stop a simulation that steps its clock itself as it stops
    ``Network.run``: Brian's handler then sets the stop flag (see
    :func:`stop_requested`) instead of raising KeyboardInterrupt mid-step."""
    forget_stop_request()
    Network._globally_running = True
    try:
        yield
    finally:
        Network._globally_running = False


@contextlib.contextmanager
def device_active(device):
    """Make ``device`` Brian's active device inside the block, then give the
    previous one (and its build options) back.

    Objects are created for, and ``Network.run`` and expression assignments go
    to, the active device; this keeps a backend's objects on its own device
    whatever the script chose with ``set_device``.
    """
    from brian2.devices.device import get_device, reset_device, set_device
    if get_device() is device:
        yield
        return
    set_device(device, build_on_run=False)
    try:
        yield
    finally:
        reset_device()


def unit_string(dim) -> str:
    """A unit name Brian's equation parser accepts for ``dim``."""
    return "1" if dim is DIMENSIONLESS else repr(get_unit(dim))


def full_equations(spec: SimulationSpec) -> Equations:
    """The user's equations plus inputs, targets and the iteration variable."""
    lines = [spec.model]
    trace_index = f"i % {spec.n_traces}"
    for name, signal in spec.inputs.items():
        lines.append(f"{name} = {INPUT_PREFIX}{name}(t, {trace_index}) : "
                     f"{unit_string(signal.dim)}")
    for name, signal in spec.targets.items():
        lines.append(f"{name}_target = {TARGET_PREFIX}{name}(t, {trace_index}) : "
                     f"{unit_string(signal.dim)}")
    if spec.uses_iteration:
        lines.append("iteration : 1 (constant, shared)")
    for name in spec.online_error:  # in SI units squared
        lines.append(f"{online_error_variable(name)} : 1")
    for name in spec.running_sums:
        lines.append(f"{name} : 1")
    return Equations("\n".join(lines))


def online_error_code(spec: SimulationSpec, name: str) -> str:
    """Statement adding a step's share of the mean squared error of output ``name``.

    Run at the start of each step, where a StateMonitor records, and from the
    step ``round(t_start / dt)`` on, as ``TraceMetric`` cuts recorded traces.
    """
    start = int(round(spec.online_error[name] / spec.dt))
    if not 0 <= start < spec.n_steps:
        raise ValueError(f"t_start of the online error of {name!r} must lie within the "
                         f"simulated {spec.duration} s.")
    count = spec.n_steps - start
    unit = unit_string(spec.targets[name].dim)
    return (f"{online_error_variable(name)} += (({name} - {TARGET_PREFIX}{name}"
            f"(t, i % {spec.n_traces})) / ({unit}))**2 * int(t_in_timesteps >= {start})"
            f" / {count}")


def timed_arrays(spec: SimulationSpec) -> dict[str, TimedArray]:
    """TimedArrays for inputs and targets, indexed by (time, trace)."""
    arrays = {}
    for prefix, signals in ((INPUT_PREFIX, spec.inputs), (TARGET_PREFIX, spec.targets)):
        for name, signal in signals.items():
            values = np.ascontiguousarray(np.asarray(signal.values, dtype=float).T)
            arrays[prefix + name] = TimedArray(values * get_unit(signal.dim)
                                               if signal.dim is not DIMENSIONLESS else values,
                                               dt=spec.dt * second, name=prefix + name)
    for name, weights in spec.step_weights.items():
        arrays[name] = TimedArray(np.asarray(weights, dtype=float), dt=spec.dt * second,
                                  name=name)
    return arrays


def build_group(spec: SimulationSpec, codeobj_class=None, name: str | None = None):
    """Create the NeuronGroup and monitors for ``spec``; returns (group, monitors)."""
    install_code_cache()  # Brian's symbolic work read from (and kept on) disk
    namespace = dict(spec.namespace)
    namespace.update(timed_arrays(spec))
    group = NeuronGroup(spec.n_neurons, full_equations(spec), threshold=spec.threshold,
                        reset=spec.reset, refractory=spec.refractory,
                        method=spec.method if spec.method else ("exact", "euler", "heun"),
                        dt=spec.dt * second, namespace=namespace,
                        codeobj_class=codeobj_class, name=name or f"{spec.name}*")
    monitors = {}
    if spec.record:
        monitors["state"] = StateMonitor(group, list(spec.record), record=True,
                                         codeobj_class=codeobj_class,
                                         name=f"{group.name}_statemonitor*")
    if spec.record_spikes:
        monitors["spikes"] = SpikeMonitor(group, record=True, codeobj_class=codeobj_class,
                                          name=f"{group.name}_spikemonitor*")
    for output in spec.online_error:
        # accumulates the error instead of recording traces: memory per neuron only
        group.run_regularly(online_error_code(spec, output), when="start",
                            codeobj_class=codeobj_class,
                            name=f"{group.name}_online_error_{output}*")
    if spec.running_code:
        # sums of residuals and sensitivities (a gradient round): memory per neuron only
        group.run_regularly(spec.running_code, when="start", codeobj_class=codeobj_class,
                            name=f"{group.name}_running_sums*")
    for variable, value in spec.constants.items():
        group.variables[variable].set_value(value)
    for variable, value in spec.param_init.items():
        if not isinstance(value, str):
            group.variables[variable].set_value(value)
    return group, monitors


def set_parameters(group, spec: SimulationSpec, parameters) -> None:
    """Write each parameter set to the n_traces neurons that simulate it."""
    for name in spec.parameter_names:
        values = np.asarray(parameters[name], dtype=float)
        group.variables[name].set_value(np.repeat(values, spec.n_traces))


def apply_string_initializers(group, spec: SimulationSpec) -> None:
    """Initial values given as expressions may depend on the parameters just set."""
    for variable, expression in spec.param_init.items():
        if isinstance(expression, str):
            group.__setattr__(variable, expression)


def collect_traces(monitor, spec: SimulationSpec) -> dict[str, np.ndarray]:
    """Recorded variables as (n_samples, n_traces, n_steps) SI arrays."""
    traces = {}
    for variable in spec.record:
        values = monitor.variables[variable].get_value()  # (n_steps, n_neurons)
        traces[variable] = np.ascontiguousarray(values.T).reshape(
            spec.n_samples, spec.n_traces, -1)[:, :, :spec.n_steps]
    return traces


def collect_result(group, monitors: dict, spec: SimulationSpec) -> SimulationResult:
    """Everything a run of ``group`` produced that ``spec`` asks for."""
    result = SimulationResult()
    if "state" in monitors:
        result.traces = collect_traces(monitors["state"], spec)
    if "spikes" in monitors:
        result.spikes = get_spikes(monitors["spikes"], spec.n_samples, spec.n_traces)
    for variable in spec.record_final:
        result.final[variable] = np.asarray(group.state(variable, use_units=False),
                                            dtype=float).copy()
    return result
