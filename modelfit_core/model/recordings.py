"""The recorded data of a fitter: inputs, trace outputs and spike outputs.

Outputs are named after model variables, plus the special name ``'spikes'``
for spike trains, so one fitter can fit ``{'v': traces, 'spikes': trains}``
at once with one metric per output.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np
from brian2 import get_dimensions, second

from modelfit_core.contracts.errors import DataError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.simulation import InputSignal
from modelfit_core.contracts.units import unit_name
from modelfit_core.model.data import as_named, check_same_shape, spike_trains, trace_array


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
    def from_user(cls, input: Any, output: Mapping[str, Any], input_var=None,
                  dt_s: float | None = None) -> "Recordings":
        """Validate the user's data; ``dt_s`` (seconds) lets spike times be checked
        against the length of the recordings."""
        inputs = {name: trace_array(values, name, "input")
                  for name, values in as_named(input, input_var, "input").items()}
        traces = {name: trace_array(values, name, "output")
                  for name, values in output.items() if name != SPIKES}
        n_traces, n_steps = check_same_shape(inputs, traces)
        spikes = None
        if SPIKES in output:
            spikes = spike_trains(output[SPIKES], SPIKES,
                                  duration=None if dt_s is None else n_steps * dt_s)
            if len(spikes) != n_traces:
                raise DataError(f"The output 'spikes' has {len(spikes)} spike trains but the "
                                f"input has {n_traces} traces; give one train per input trace.")
        return cls(inputs=inputs, traces=traces, spikes=spikes, output_names=list(output),
                   n_traces=n_traces, n_steps=n_steps)

    @property
    def trace_outputs(self) -> list[str]:
        """The recorded outputs that are traces (not spike trains)."""
        return [name for name in self.output_names if name != SPIKES]

    def output_dims(self, model) -> dict[str, Any]:
        """Dimension of each output: the model variable's, or seconds for spikes."""
        dims = {}
        for name in self.output_names:
            if name == SPIKES:
                dims[name] = get_dimensions(second)
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
