"""The attributes brian2modelfitting's fitters have, read from the fitting problem.

brian2modelfitting's fitters keep the model, the recordings and their shapes
as attributes (``dt``, ``input``, ``output_var``, ``n_neurons``, ...), and
ported scripts read them; modelfit keeps them once, in a
:class:`~modelfit_core.fitting.problem.FittingProblem`, and
:class:`ManualAttributes` shows them under the manual's names.
"""

from __future__ import annotations

from typing import Any

from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.units import with_unit


def _from_problem(name: str, doc: str) -> property:
    return property(lambda self: getattr(self.problem, name), doc=doc)


class ManualAttributes:
    """Read-only views, under brian2modelfitting's names, of a fitter's public
    ``problem`` (a FittingProblem), ``current_fit`` (a Fit or None) and
    ``n_samples``."""

    problem: Any
    current_fit: Any
    n_samples: int

    dt = _from_problem("dt", "Time step of the recordings and simulations.")
    model = _from_problem("model", "The parsed model (ModelDescription).")
    threshold = _from_problem("threshold", "Spike condition, or None.")
    reset = _from_problem("reset", "Statements executed after a spike, or None.")
    refractory = _from_problem("refractory", "Refractoriness, as given.")
    method = _from_problem("method", "Brian integration method, or None.")
    param_init = _from_problem("param_init", "Initial values and fixed parameters.")
    n_traces = _from_problem("n_traces", "Number of input traces.")

    @property
    def penalty(self) -> str | None:
        """Model variable added to the error, or None."""
        return self.problem.penalty

    @property
    def input_var(self):
        """The input variable (a list of names if there are several)."""
        names = list(self.problem.recordings.inputs)
        return names[0] if len(names) == 1 else names

    @property
    def output_var(self):
        """The output variable (a list of names if there are several)."""
        names = self.problem.output_names
        return names[0] if len(names) == 1 else names

    @property
    def n_neurons(self) -> int:
        """Neurons simulated per round: ``n_samples`` x the number of traces."""
        return self.n_samples * self.n_traces

    @property
    def parameter_names(self) -> list[str]:
        """The fitted parameters (in the order of the model's declarations)."""
        if self.current_fit is not None:
            return list(self.current_fit.space.names)
        return [n for n in self.model.parameters if n not in self.param_init]

    @property
    def duration(self):
        """Length of the recordings (a Quantity in seconds)."""
        return self.problem.n_steps * self.dt

    @property
    def input(self):
        """The input traces (n_traces, n_steps), with units: the first input variable's."""
        signal = next(iter(self.problem.recordings.inputs.values()))
        return with_unit(signal.values, signal.dim)

    @property
    def output(self) -> list:
        """The recorded outputs, one entry per output variable (spike trains in seconds)."""
        recordings = self.problem.recordings
        return [recordings.spikes if name == SPIKES else
                with_unit(recordings.traces[name].values, recordings.traces[name].dim)
                for name in self.problem.output_names]

    @property
    def output_dim(self) -> list:
        """Dimensions of each output variable (spikes: seconds)."""
        dims = self.problem.output_dims
        return [dims[name] for name in self.problem.output_names]

    @property
    def input_traces(self):
        """The first input as a Brian ``TimedArray`` over (time, trace), as the manual's
        fitters build it for their NeuronGroup."""
        from brian2 import TimedArray
        return TimedArray(self.input.T, dt=self.dt)

    @property
    def bounds(self) -> dict[str, list] | None:
        """The bounds of the last ``fit()``: ``{name: [lower, upper]}`` with units."""
        if self.current_fit is None:
            return None
        space = self.current_fit.space
        return {name: [with_unit(float(lo), dim), with_unit(float(hi), dim)]
                for name, lo, hi, dim in zip(space.names, space.lower, space.upper,
                                             space.dims)}
