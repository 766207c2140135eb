"""The manual's building blocks of a round, for scripts that drive a fit themselves.

brian2modelfitting documents ``optimization_iter`` (one round: ask, simulate,
score, tell), ``calc_errors`` (score the last round), ``setup_neuron_group``
and ``setup_simulator`` (the fit's Brian network). :class:`RoundBuildingBlocks`
is one of the bases of :class:`~modelfit_core.fitting.fitter.Fitter`; it uses
``self.rounds_of_fit``, ``self.state``, ``self.problem``, ``self.space`` and
``self.objective_for``.
"""

from __future__ import annotations

import numpy as np

from modelfit_core.contracts.errors import FitStateError
from modelfit_core.fitting import brian_networks


class RoundBuildingBlocks:
    """``optimization_iter``, ``calc_errors``, ``setup_neuron_group``, ``setup_simulator``."""

    def optimization_iter(self, optimizer, metric=None, penalty=None):
        """Run one round of the current fit, driven by the caller: ask, simulate,
        score, tell (the round joins the history, as in ``fit()``).

        Call ``fit(optimizer, metric, n_rounds=0, **bounds)`` first: it
        initializes the optimizer with the bounds and prepares the simulation.

        Returns
        -------
        results : list
            The optimizer's recommended parameters (``optimizer.recommend()``).
        parameters : list of list
            The parameter sets simulated (SI values, one list per set).
        errors : ndarray
            Their errors (the sum over outputs, plus the penalty).
        """
        if self.state is None:
            raise FitStateError("optimization_iter() runs a round of a started fit: call "
                                "fit(optimizer, metric, n_rounds=0, **bounds) first.")
        self.rounds_of_fit(optimizer=optimizer, metric=metric, n_rounds=1, callback=None,
                           penalty=penalty)
        record = self.history.rounds[-1]
        return optimizer.recommend(), record.parameters.tolist(), np.array(record.errors)

    def calc_errors(self, metric=None):
        """The errors of the last round's simulations under ``metric`` (default: the
        fit's): an array (n_outputs, n_samples) of normalized errors, one row per
        output variable in ``output_var`` order, without the penalty."""
        last = self.state.last_result if self.state is not None else None
        if last is None:
            raise FitStateError("No simulated round to score: call fit() or "
                                "optimization_iter() first.")
        if metric is None or metric is self.state.metric:
            objective = self.state.objective
        elif last.errors:
            raise FitStateError(f"The last round was scored where it was simulated "
                                f"({self.problem.backend!r}): its traces are not here, so "
                                f"calc_errors() can only return the fit's own errors "
                                f"(call it without a metric).")
        else:
            objective = self.objective_for(metric, None)
        scores = objective.score(last, len(self.history.rounds[-1].errors))
        return np.array([scores.per_output[name] for name in self.output_names])

    def setup_neuron_group(self, n_neurons, namespace, calc_gradient=False, optimize=True,
                           online_error=False, name="neurons"):
        """The model's ``NeuronGroup`` for ``n_neurons`` neurons (a multiple of the
        number of input traces), inputs wired in, constants and numeric initial
        values set; see :func:`~modelfit_core.fitting.brian_networks.neuron_group_for`.
        ``namespace``: the constants the model refers to."""
        return brian_networks.neuron_group_for(
            self.problem, n_neurons, namespace, self.space or self.problem.free_parameters(),
            calc_gradient=calc_gradient, optimize=optimize, online_error=online_error,
            t_start=float(getattr(self, "t_start", 0.0)), name=name)

    def setup_simulator(self, network_name, n_neurons, output_var, param_init,
                        calc_gradient=False, optimize=True, online_error=False, level=1):
        """A ``Simulator`` (runtime or C++ standalone, as Brian's active device) with
        the network of :meth:`setup_neuron_group` and its monitors ``statemonitor``
        / ``spikemonitor`` for ``output_var``; ``param_init`` is set before each
        run. ``level=1`` (the default) takes the constants from the caller's
        namespace, higher values from frames further up."""
        namespace = self.problem.resolve_namespace(max(int(level) - 1, 0))
        return brian_networks.simulator_for(
            self.problem, network_name, n_neurons, output_var, param_init, namespace,
            self.space or self.problem.free_parameters(), calc_gradient=calc_gradient,
            optimize=optimize, online_error=online_error,
            t_start=float(getattr(self, "t_start", 0.0)))
