"""The manual's ``setup_neuron_group`` / ``setup_simulator``: a fit's Brian network
for a script to run itself.

brian2modelfitting's fitters expose how they build their simulation: the
model's ``NeuronGroup`` for a number of neurons with the inputs wired in, and
that group with its monitors in a ``Network`` handed to a ``Simulator``.
modelfit's fits simulate through the backend plugins instead. These functions
describe the network asked for as a
:class:`~modelfit_core.contracts.simulation.SimulationSpec` of the fitting
problem, exactly as a fit would simulate it, and have the Brian backend plugin
build it: its builders are found by name among the ``modelfit.services``
entry points (``neuron_group_for_spec``, ``simulator_for_spec``), so the core
never speaks to Brian's devices.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.fitting.problem import FittingProblem
from modelfit_core.fitting.refine import sensitivity_model
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.registry.plugin_registry import Registry

NEURON_GROUP_BUILDER = "neuron_group_for_spec"
"""The export that builds a spec's ``NeuronGroup``: ``(spec, name) -> NeuronGroup``."""
SIMULATOR_BUILDER = "simulator_for_spec"
"""The export that builds a manual ``Simulator`` of a spec:
``(spec, network_name, output_var, param_init) -> Simulator``."""


def _builder(registry: Registry, name: str):
    found = registry.find_service(name)
    if found is None:
        raise ConfigurationError(
            f"setup_neuron_group and setup_simulator need a Brian backend plugin offering "
            f"{name!r} (a 'modelfit.services' entry point of modelfit-brian2's backends); "
            f"none is installed or it was disabled (MODELFIT_DISABLE_PLUGINS).")
    return found


def _spec(problem: FittingProblem, n_neurons: int, namespace: Mapping[str, Any],
          space: ParameterSpace, *, calc_gradient: bool, optimize: bool, online_error: bool,
          t_start: float, name: str):
    n_traces = problem.n_traces
    if isinstance(n_neurons, bool) or not isinstance(n_neurons, (int, np.integer)) \
            or n_neurons < n_traces or n_neurons % n_traces:
        raise ArgumentTypeError(f"n_neurons must be a positive multiple of the number of "
                                f"input traces ({n_traces}); got {n_neurons!r}.")
    n_neurons = int(n_neurons)
    if namespace is not None and not isinstance(namespace, Mapping):
        raise ArgumentTypeError(f"namespace must be a dict of the names the model uses "
                                f"(e.g. {{'El': -70*mV}}); got {namespace!r}.")
    namespace = dict(namespace or {})
    model_text = reset = extra_init = None
    if calc_gradient:
        extended = sensitivity_model(problem, space, optimize)
        model_text, reset, extra_init = extended.model_text, extended.reset, extended.init
    online = ({output: float(t_start) for output in problem.recordings.trace_outputs}
              if online_error else None)
    return problem.simulation_spec(n_neurons // n_traces, space.names, namespace, name=name,
                                   online_error=online, model_text=model_text, reset=reset,
                                   extra_init=extra_init)


def neuron_group(problem: FittingProblem, registry: Registry, n_neurons: int,
                 namespace: Mapping[str, Any], space: ParameterSpace, *,
                 calc_gradient: bool = False, optimize: bool = True,
                 online_error: bool = False, t_start: float = 0.0, name: str = "neurons"):
    """The ``NeuronGroup`` of ``n_neurons`` neurons (parameter sets x input traces).

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
    spec = _spec(problem, n_neurons, namespace, space, calc_gradient=calc_gradient,
                 optimize=optimize, online_error=online_error, t_start=t_start, name=name)
    return _builder(registry, NEURON_GROUP_BUILDER)(spec, name)


def check_output_var(problem: FittingProblem, output_var) -> None:
    """``output_var`` names outputs of the fit (``'spikes'`` included), one or a list."""
    names = [output_var] if isinstance(output_var, str) else output_var
    if not isinstance(names, (list, tuple)) or not names \
            or not all(isinstance(n, str) for n in names):
        raise ArgumentTypeError(f"output_var must name an output of the fit (one of "
                                f"{', '.join(map(repr, problem.output_names))}) or be a "
                                f"list of them; got {output_var!r}.")
    known = set(problem.output_names) | set(problem.model.equations.names)
    unknown = [n for n in names if n not in known and n != "spikes"]
    if unknown:
        raise ConfigurationError(f"output_var names {', '.join(map(repr, unknown))}, which "
                                 f"is no variable of the model; the fit's outputs are "
                                 f"{', '.join(map(repr, problem.output_names))}.")


def simulator(problem: FittingProblem, registry: Registry, network_name: str,
              n_neurons: int, output_var: str | Sequence[str],
              param_init: Mapping[str, Any] | None, namespace: Mapping[str, Any],
              space: ParameterSpace, *, calc_gradient: bool = False, optimize: bool = True,
              online_error: bool = False, t_start: float = 0.0):
    """A manual ``Simulator`` for Brian's active device, initialized with a network of
    the group of :func:`neuron_group` (named ``neurons``) and monitors of
    ``output_var`` (``statemonitor``, and ``spikemonitor`` for ``'spikes'``);
    ``param_init`` is set before every run."""
    check_output_var(problem, output_var)
    if not isinstance(network_name, str):
        raise ArgumentTypeError(f"network_name must be a string naming the network; got "
                                f"{network_name!r}.")
    if param_init is not None and not isinstance(param_init, Mapping):
        raise ArgumentTypeError(f"param_init must be a dict of initial values (or None); "
                                f"got {param_init!r}.")
    spec = _spec(problem, n_neurons, namespace, space, calc_gradient=calc_gradient,
                 optimize=optimize, online_error=online_error, t_start=t_start,
                 name="neurons")
    return _builder(registry, SIMULATOR_BUILDER)(spec, network_name, output_var, param_init)
