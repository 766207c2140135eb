"""The recorded data of a fitter: inputs, trace outputs and spike outputs.

Outputs are named after model variables, plus the special name ``'spikes'``
for spike trains, so one fitter can fit ``{'v': traces, 'spikes': trains}``
at once with one metric per output.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np
from brian2 import second

from modelfit_core.model.data import (as_named, check_same_shape, spike_trains, trace_array,
                                unit_name)
from modelfit_core.contracts.errors import ConfigurationError, DataError, UnitMismatchError
from modelfit_core.contracts.simulation import InputSignal

SPIKES = "spikes"


def is_spike_metric(metric) -> bool:
    """Spike metrics subclass SpikeMetric or declare ``compares = "spikes"``."""
    from modelfit_core.contracts.metric_bases import SpikeMetric
    return isinstance(metric, SpikeMetric) or getattr(metric, "compares", None) == SPIKES


@attrs.define
class Recordings:
    """Validated inputs and outputs; traces are (n_traces, n_steps) SI arrays."""

    inputs: dict[str, InputSignal]
    traces: dict[str, InputSignal]
    spikes: list[np.ndarray] | None
    output_names: list[str]
    n_traces: int
    n_steps: int

    @classmethod
    def from_user(cls, input: Any, output: Mapping[str, Any], input_var=None) -> "Recordings":
        inputs = {name: trace_array(values, name, "input")
                  for name, values in as_named(input, input_var, "input").items()}
        traces = {name: trace_array(values, name, "output")
                  for name, values in output.items() if name != SPIKES}
        n_traces, n_steps = check_same_shape(inputs, traces)
        spikes = None
        if SPIKES in output:
            spikes = spike_trains(output[SPIKES], SPIKES)
            if len(spikes) != n_traces:
                raise DataError(f"The output 'spikes' has {len(spikes)} spike trains but the "
                                f"input has {n_traces} traces; give one train per input trace.")
        return cls(inputs=inputs, traces=traces, spikes=spikes, output_names=list(output),
                   n_traces=n_traces, n_steps=n_steps)

    def output_dims(self, model) -> dict[str, Any]:
        """Dimension of each output: the model variable's, or seconds for spikes."""
        dims = {}
        for name in self.output_names:
            if name == SPIKES:
                dims[name] = second.dim
                continue
            expected = model.dimension_of(name)
            if self.traces[name].dim is not expected:
                raise UnitMismatchError(
                    f"The output {name!r} has units of {unit_name(self.traces[name].dim)}, "
                    f"but the model declares {name!r} with units of {unit_name(expected)}. "
                    f"Multiply the recorded array by the right unit, e.g. "
                    f"traces*{unit_name(expected)}.")
            dims[name] = expected
        return dims

    def check_metric_kinds(self, metrics: Mapping[str, Any], fitter_name: str) -> None:
        """Spike outputs need spike metrics and trace outputs trace metrics."""
        for name, metric in metrics.items():
            spiky = is_spike_metric(metric)
            if name == SPIKES and not spiky:
                raise ConfigurationError(
                    f"{type(metric).__name__} compares traces, but the output 'spikes' holds "
                    f"spike trains. Use a spike metric such as GammaFactor(delta=..., "
                    f"time=...).")
            if name != SPIKES and spiky:
                raise ConfigurationError(
                    f"{type(metric).__name__} compares spike trains, but {fitter_name} fits "
                    f"the trace {name!r}. Use a trace metric such as MSEMetric(), or fit "
                    f"output={{'spikes': ...}} (SpikeFitter).")

    def validate_for(self, metrics: Mapping[str, Any], dt) -> None:
        """Let metrics that can check the data (``validate_data(data, dt)``) do so up front."""
        for name, metric in metrics.items():
            check = getattr(metric, "validate_data", None)
            if callable(check):
                check(self.spikes if name == SPIKES else self.traces[name].values, dt)

    def objective_errors(self, result, metrics, dt) -> dict[str, np.ndarray]:
        """Normalized error per output, each of shape (n_samples,)."""
        errors = {}
        for name in self.output_names:
            if name in result.errors:
                errors[name] = np.asarray(result.errors[name], dtype=float)
                continue
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                if name == SPIKES:
                    values = metrics[name].calc(result.spikes, self.spikes, dt)
                else:
                    values = metrics[name].calc(result.traces[name],
                                                self.traces[name].values, dt)
            errors[name] = np.asarray(values, dtype=float)
        return errors


@attrs.define
class ErrorsWhereSimulated:
    """Turns a batch's traces and spikes into objective errors where it ran.

    A backend that simulates in other processes (dask) applies this to each
    chunk there, so that only ``n_samples`` errors per output travel back
    instead of ``n_samples × n_traces × n_steps`` values. Metrics score each
    parameter set on its own (the metric contract), so errors computed chunk
    by chunk equal those of the whole batch.
    """

    recordings: Recordings
    metrics: dict[str, Any]
    dt: Any

    def __call__(self, result, n_samples: int):
        from modelfit_core.contracts.simulation import SimulationResult
        errors = self.recordings.objective_errors(result, self.metrics, self.dt)
        kept = {name: values for name, values in result.traces.items()
                if name not in self.recordings.output_names}
        return SimulationResult(traces=kept, final=result.final, errors=errors,
                                failed=result.diverged(n_samples))
