"""A fitting problem as a Brian network that a script runs itself.

brian2modelfitting's fitters expose how they build their simulation:
``setup_neuron_group`` (the model's ``NeuronGroup`` for a number of neurons,
inputs wired in) and ``setup_simulator`` (that group with its monitors in a
``Network``, handed to a :class:`~.brian_simulators.Simulator`). modelfit's
fits simulate through the backend plugins instead; these functions build the
same objects from the problem's :class:`~modelfit_core.contracts.simulation.SimulationSpec`
with the backend's :class:`~modelfit_core.contracts.protocols.BuildsBrianGroups`
capability, so that the network is the one a fit would simulate.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.protocols import BuildsBrianGroups
from modelfit_core.fitting.brian_simulators import Simulator, simulator_for_device
from modelfit_core.fitting.problem import FittingProblem
from modelfit_core.fitting.refine import sensitivity_model
from modelfit_core.model.parameters import ParameterSpace


def group_builder(problem: FittingProblem) -> BuildsBrianGroups:
    """The problem's backend, or its single-run backend, if it builds Brian groups."""
    for backend in (problem.backend, problem.single_run_backend):
        if isinstance(backend, BuildsBrianGroups):
            return backend
    raise ConfigurationError(
        f"The backend {problem.backend!r} does not build Brian groups in this process "
        f"(it has no neuron_group()); setup_neuron_group and setup_simulator need a Brian "
        f"backend such as backend='runtime'.")


def neuron_group_for(problem: FittingProblem, n_neurons: int, namespace: Mapping[str, Any],
                     space: ParameterSpace, *, calc_gradient: bool = False,
                     optimize: bool = True, online_error: bool = False,
                     t_start: float = 0.0, name: str = "neurons"):
    """The ``NeuronGroup`` of ``n_neurons`` neurons (parameter sets × input traces).

    Parameters
    ----------
    n_neurons : int
        A multiple of the number of input traces: neuron ``i`` is driven by
        trace ``i % n_traces``.
    namespace : dict
        The constants the model refers to.
    space : ParameterSpace
        The fitted parameters (set per neuron before each run).
    calc_gradient, optimize : bool
        Add the sensitivity equations of the model's variables to the
        parameters (those that stay zero left out if ``optimize``).
    online_error : bool
        Accumulate each trace output's mean squared error from ``t_start``
        (seconds) in ``total_error_<output>`` while simulating.
    name : str
        The group's name.
    """
    n_traces = problem.n_traces
    if not isinstance(n_neurons, int) or n_neurons < n_traces or n_neurons % n_traces:
        raise ConfigurationError(f"n_neurons must be a positive multiple of the number of "
                                 f"input traces ({n_traces}); got {n_neurons!r}.")
    model_text = reset = extra_init = None
    if calc_gradient:
        extended = sensitivity_model(problem, space, optimize)
        model_text, reset, extra_init = extended.model_text, extended.reset, extended.init
    online = ({output: float(t_start) for output in problem.recordings.trace_outputs}
              if online_error else None)
    spec = problem.simulation_spec(n_neurons // n_traces, space.names, namespace, name=name,
                                   online_error=online, model_text=model_text, reset=reset,
                                   extra_init=extra_init)
    return group_builder(problem).neuron_group(spec, name)


def simulator_for(problem: FittingProblem, network_name: str, n_neurons: int,
                  output_var: str | Sequence[str], param_init: Mapping[str, Any] | None,
                  namespace: Mapping[str, Any], space: ParameterSpace,
                  **group_options) -> Simulator:
    """A :class:`Simulator` for Brian's active device, initialized with a network of
    the group (named ``neurons``), a ``StateMonitor`` of the trace variables in
    ``output_var`` (named ``statemonitor``) and, for ``'spikes'``, a ``SpikeMonitor``
    (named ``spikemonitor``); ``param_init`` is set before every run."""
    from brian2 import Network, SpikeMonitor, StateMonitor
    names = [output_var] if isinstance(output_var, str) else list(output_var)
    traces = [n for n in names if n != SPIKES]
    group = neuron_group_for(problem, n_neurons, namespace, space, name="neurons",
                             **group_options)
    objects = [group]
    if traces:
        objects.append(StateMonitor(group, traces, record=True, name="statemonitor"))
    if SPIKES in names:
        objects.append(SpikeMonitor(group, record=True, name="spikemonitor"))
    simulator = simulator_for_device()
    simulator.initialize(Network(*objects), dict(param_init or {}), name=network_name)
    return simulator
