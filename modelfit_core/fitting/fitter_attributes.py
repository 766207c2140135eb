"""The manual's attributes of a fitter, read from its fitting problem.

brian2modelfitting's fitters keep the model, the recordings and their shapes
as attributes (``dt``, ``input``, ``output_var``, ``n_neurons``, ...); modelfit
keeps them once, in a :class:`~modelfit_core.fitting.problem.FittingProblem`,
and :class:`ProblemAttributes` shows them under the manual's names.
"""

from __future__ import annotations

from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.units import with_unit


def _from_problem(name: str, doc: str) -> property:
    return property(lambda self: getattr(self.problem, name), doc=doc)


class ProblemAttributes:
    """Read-only views of ``self.problem`` (and of ``self.space`` once a fit started)
    under the names the manual documents for the fitters and the Inferencer."""

    dt = _from_problem("dt", "Time step of the recordings and simulations.")
    model = _from_problem("model", "The parsed model (ModelDescription).")
    threshold = _from_problem("threshold", "Spike condition, or None.")
    reset = _from_problem("reset", "Statements executed after a spike, or None.")
    refractory = _from_problem("refractory", "Refractoriness, as given.")
    method = _from_problem("method", "Brian integration method, or None.")
    param_init = _from_problem("param_init", "Initial values and fixed parameters.")
    backend = _from_problem("backend", "The backend that simulates the rounds.")
    recordings = _from_problem("recordings", "Validated inputs and outputs.")
    output_names = _from_problem("output_names", "Output variables, 'spikes' included.")
    output_dims = _from_problem("output_dims", "Dimensions of each output.")
    n_traces = _from_problem("n_traces", "Number of input traces.")

    @property
    def simulator(self):
        """The simulation prepared for fitting (None before the first ``fit()``): its
        ``run(parameters, iteration)`` simulates a batch. Not a brian2modelfitting
        ``Simulator``; :meth:`setup_simulator` makes one of those."""
        return getattr(self, "simulation", None)

    @property
    def penalty(self) -> str | None:
        """Model variable added to the error, or None."""
        return self.problem.penalty

    @property
    def input_signals(self):
        return self.problem.recordings.inputs

    @property
    def output_signals(self):
        """Recorded trace outputs (not spikes) by name."""
        return self.problem.recordings.traces

    @property
    def input_var(self):
        names = list(self.input_signals)
        return names[0] if len(names) == 1 else names

    @property
    def output_var(self):
        names = self.output_names
        return names[0] if len(names) == 1 else names

    @property
    def n_neurons(self) -> int:
        return self.n_samples * self.n_traces

    @property
    def parameter_names(self) -> list[str]:
        """The fitted parameters (in the order of the model's declarations)."""
        if self.space is not None:
            return list(self.space.names)
        return [n for n in self.model.parameters if n not in self.param_init]

    @property
    def duration(self):
        """Length of the recordings (a Quantity in seconds)."""
        return self.problem.n_steps * self.dt

    @property
    def input(self):
        """The input traces (n_traces, n_steps), with units: the first input variable's."""
        signal = next(iter(self.input_signals.values()))
        return with_unit(signal.values, signal.dim)

    @property
    def output(self) -> list:
        """The recorded outputs, one entry per output variable (spike trains in seconds)."""
        return [self.recordings.spikes if name == SPIKES else
                with_unit(self.output_signals[name].values, self.output_signals[name].dim)
                for name in self.output_names]

    @property
    def output_dim(self) -> list:
        """Dimensions of each output variable (spikes: seconds)."""
        return [self.output_dims[name] for name in self.output_names]

    @property
    def input_traces(self):
        """The first input as a Brian ``TimedArray`` over (time, trace), as the manual's
        fitters build it for their NeuronGroup."""
        from brian2 import TimedArray
        return TimedArray(self.input.T, dt=self.dt)

    @property
    def bounds(self) -> dict[str, list] | None:
        """The bounds of the last ``fit()``: ``{name: [lower, upper]}`` with units."""
        if self.space is None:
            return None
        return {name: [with_unit(float(lo), dim), with_unit(float(hi), dim)]
                for name, lo, hi, dim in zip(self.space.names, self.space.lower,
                                             self.space.upper, self.space.dims)}
