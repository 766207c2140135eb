"""The fitting problem: a model, the recordings, and how to simulate them.

A :class:`FittingProblem` is what the fitters, ``generate``, ``refine``, the
storage and inference plugins share: the parsed model, the validated
recordings, the spiking behaviour and initial values, the namespace the
equations refer to, and the backends that simulate it. It builds
:class:`~modelfit_core.contracts.simulation.SimulationSpec` objects and keeps
one prepared simulation per configuration, so each is compiled once.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Hashable, Mapping

import attrs
import numpy as np
from brian2 import Quantity, get_dimensions, second

from modelfit_core.contracts.errors import ConfigurationError, ParameterError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.protocols import RemoteScoring, SingleRunDelegation
from modelfit_core.contracts.simulation import SimulationSpec, online_error_variable
from modelfit_core.model.equations import (ModelDescription, check_expression_names,
                                           check_param_init, check_refractory_value,
                                           check_units, describe_model, initial_values)
from modelfit_core.model.namespace import identifiers_in, select, user_namespace
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.model.recordings import Recordings
from modelfit_core.model.unit_slips import bound_slips, recording_slips, warn_unit_slips
from modelfit_core.results.history import RESULT_KEYS, clashing_result_names

GENERATE_ITERATION = 1e9
"""The ``iteration`` value of single runs (``generate``, ``refine``): high, so that a
coupling to the target that fades with the rounds is switched off."""

FIT_SIMULATION = "modelfit_fit"
"""The name of the simulation a fitter prepares for its rounds."""

REUSED_BATCH_SAMPLES = 256
"""A single run repeats its point over a fit's prepared batch of at most this many
parameter sets rather than preparing a simulation of its own (see
:meth:`FittingProblem.batch_recording`)."""


def check_time_step(dt) -> None:
    """``dt`` must be one positive, finite time with units."""
    if not isinstance(dt, Quantity) or dt.dim is not get_dimensions(second):
        raise UnitMismatchError(f"dt must be a positive time with units, e.g. "
                                f"dt=0.01*ms; got {dt!r}.")
    if np.ndim(dt) != 0:
        raise ConfigurationError(f"dt must be a single time step, e.g. dt=0.01*ms; got an "
                                 f"array of shape {np.shape(dt)}.")
    if not np.isfinite(float(dt)) or float(dt) <= 0:
        raise ConfigurationError(f"dt must be a positive, finite time, e.g. dt=0.01*ms; "
                                 f"got {dt!r}.")


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


RECORDING_COPIES = 3
"""A recorded trace is held about three times while a round is scored: Brian's
monitor, the (n_samples, n_traces, n_steps) copy, and the metric's difference."""


@attrs.define(eq=False)
class FittingProblem:
    """A model to fit to recordings, and the backends that simulate it.

    Make one with :meth:`from_user`; the fields are the validated inputs.
    """

    model: ModelDescription
    recordings: Recordings
    dt: Quantity
    """Time step of the recordings and of the simulations."""
    backend: Any
    """The :class:`~modelfit_core.contracts.protocols.SimulationBackend` of batches."""
    threshold: Any = None
    reset: Any = None
    refractory: Any = False
    method: str | None = None
    param_init: dict[str, Any] = attrs.field(factory=dict)
    """Initial values of variables, or fixed values of parameters that are not fitted."""
    penalty: str | None = None
    """A model variable added to the error (its value at the end of the run)."""
    caller_namespace: dict[str, Any] = attrs.field(factory=dict, repr=False)
    """The namespace of the code that made the problem (as Brian's ``run()`` uses it)."""
    namespace: dict[str, Any] = attrs.field(factory=dict, repr=False)
    """Names given explicitly; they win over the caller's."""
    _prepared: dict[Hashable, Any] = attrs.field(factory=dict, init=False, repr=False)
    _specs: dict[Hashable, SimulationSpec] = attrs.field(factory=dict, init=False, repr=False)

    @classmethod
    def from_user(cls, model, input, output: Mapping[str, Any], dt, *, backend,
                  input_var=None, threshold=None, reset=None, refractory=False, method=None,
                  param_init=None, penalty=None, namespace=None, level: int = 0,
                  owner: str = "TraceFitter") -> "FittingProblem":
        """Validate what a user gives a fitter (see ``TraceFitter``), before anything runs.

        ``output`` maps output names (model variables, or ``'spikes'``) to the
        recordings; ``level`` says how many frames above the first frame
        outside modelfit the namespace is looked up; ``owner`` names the
        class in messages.
        """
        check_time_step(dt)
        recordings = Recordings.from_user(input, output, input_var=input_var, dt_s=float(dt))
        description = describe_model(model, recordings.inputs, recordings.output_names,
                                     extra_code=(threshold, reset, refractory, param_init,
                                                 penalty))
        recordings.output_dims(description)  # raises on units that do not match the model
        check_refractory_value(refractory)
        caller_namespace = user_namespace(level)
        known = (set(caller_namespace) | set(namespace or {}) | set(recordings.inputs)
                 | {f"{name}_target" for name in recordings.output_names})
        check_param_init(param_init, description, known_names=known)
        warn_unit_slips(recording_slips(recordings, float(dt), param_init,
                                        description.dimension_of))
        clashing = clashing_result_names(name for name in description.parameters
                                         if name not in (param_init or {}))
        if clashing:
            raise ParameterError(
                f"The model's parameter{'s' if len(clashing) > 1 else ''} "
                f"{', '.join(map(repr, clashing))} would be fitted under a name that "
                f"results() and results.csv use for their own columns ("
                f"{', '.join(RESULT_KEYS)}, and error_*, normalized_error_*, objective_* "
                f"per output or objective), so its values would be lost. Rename it in "
                f"the equations (e.g. g_{clashing[0]}).")
        if SPIKES in recordings.output_names and threshold is None:
            raise ConfigurationError(f"Fitting spikes needs a threshold: pass threshold= "
                                     f"(e.g. threshold='v > -50*mV') to {owner}.")
        return cls(model=description, recordings=recordings, dt=dt, backend=backend,
                   threshold=threshold, reset=reset, refractory=refractory, method=method,
                   param_init=dict(param_init or {}), penalty=penalty,
                   caller_namespace=caller_namespace, namespace=dict(namespace or {}))

    # -- the recordings ---------------------------------------------------------------
    @property
    def n_traces(self) -> int:
        return self.recordings.n_traces

    @property
    def n_steps(self) -> int:
        return self.recordings.n_steps

    @property
    def output_names(self) -> list[str]:
        return self.recordings.output_names

    @property
    def output_dims(self) -> dict[str, Any]:
        """Dimension of each output: the model variable's, or seconds for spikes."""
        return self.recordings.output_dims(self.model)

    @property
    def duration(self) -> float:
        """Length of the recordings, in seconds."""
        return self.n_steps * float(self.dt)

    # -- parameters ---------------------------------------------------------------------
    @property
    def fixed_parameters(self) -> list[str]:
        """Declared parameters given a value in ``param_init``: not fitted."""
        return [name for name in self.param_init if name in self.model.parameters]

    def parameter_space(self, bounds: Mapping[str, Any]) -> ParameterSpace:
        """The fitted parameters with their ``name=[lower, upper]`` bounds (validated)."""
        space = ParameterSpace.from_bounds(self.model.parameters, bounds,
                                           fixed=self.fixed_parameters)
        warn_unit_slips(bound_slips(space))
        return space

    def free_parameters(self) -> ParameterSpace:
        """Every parameter not fixed in ``param_init``, without bounds (for single runs
        before any fit)."""
        free = [n for n in self.model.parameters if n not in self.param_init]
        return ParameterSpace(names=tuple(free),
                              dims=tuple(self.model.parameters[n] for n in free),
                              lower=np.zeros(len(free)), upper=np.zeros(len(free)))

    # -- simulating ---------------------------------------------------------------------
    def resolve_namespace(self, level: int = 0) -> dict[str, Any]:
        """The external names the model uses: the caller's at creation, then the
        caller's now (``level`` frames above it), then the explicit ``namespace``."""
        combined = dict(self.caller_namespace)
        combined.update(user_namespace(level))
        combined.update(self.namespace)
        names = set(self.model.equations.identifiers) | identifiers_in(
            self.threshold, self.reset, self.refractory, self.param_init, self.penalty)
        return select(combined, names)

    def check_initial_expressions(self, namespace: Mapping[str, Any]) -> None:
        """Every name in a ``param_init`` expression exists with ``namespace`` (the fit's,
        resolved when it starts), before anything compiles."""
        known = (set(namespace) | set(self.recordings.inputs)
                 | {f"{name}_target" for name in self.recordings.output_names})
        for name, value in self.param_init.items():
            if isinstance(value, str):
                check_expression_names(f"param_init[{name!r}]", value, self.model, known)

    def check_units(self, namespace: Mapping[str, Any]) -> None:
        """Brian's unit check of the equations with the inputs, and of the threshold,
        reset, refractoriness and method, before anything compiles (and the names of
        the initial values' expressions)."""
        self.check_initial_expressions(namespace)
        check_units(self.model, self.recordings.inputs, self._targets({}), namespace,
                    threshold=self.threshold, reset=self.reset, refractory=self.refractory,
                    method=self.method)

    def _targets(self, online: Mapping[str, float]) -> dict[str, Any]:
        traces = self.recordings.traces
        targets = {n: traces[n] for n in self.model.uses_targets if n in traces}
        targets.update({n: traces[n] for n in online})
        return targets

    def simulation_spec(self, n_samples: int, parameter_names, namespace: Mapping[str, Any], *,
                        name: str, record=(), record_spikes: bool = False, record_final=(),
                        online_error: Mapping[str, float] | None = None,
                        param_init: Mapping[str, Any] | None = None,
                        model_text: str | None = None, reset: Any = None,
                        extra_init: Mapping[str, Any] | None = None) -> SimulationSpec:
        """What a backend prepares to simulate ``n_samples`` parameter sets on every trace.

        ``param_init`` replaces the problem's initial values; ``model_text``,
        ``reset`` and ``extra_init`` extend the model (``refine``'s sensitivities).
        """
        fitted = set(parameter_names)
        initial, constants = initial_values(self.param_init if param_init is None
                                            else param_init, self.model, fitted)
        initial.update(extra_init or {})
        online_error = dict(online_error or {})
        record_final = tuple(record_final) + tuple(online_error_variable(n)
                                                   for n in online_error)
        return SimulationSpec(
            model=self.model.text if model_text is None else model_text,
            parameter_names=tuple(parameter_names), n_samples=n_samples,
            n_traces=self.n_traces, n_steps=self.n_steps, dt=float(self.dt),
            inputs=self.recordings.inputs, record=tuple(record), record_spikes=record_spikes,
            method=self.method, threshold=self.threshold,
            reset=self.reset if reset is None else reset, refractory=self.refractory,
            param_init=initial, namespace=dict(namespace), constants=constants,
            targets=self._targets(online_error), uses_iteration=self.model.uses_iteration,
            record_final=record_final, name=name, online_error=online_error)

    def check_memory(self, n_samples: int, record, *, remote: bool = False) -> None:
        """Refuse, before anything is allocated, a round whose recorded traces do not fit
        in the memory available (8 bytes per value, held ~3 times while scored).

        ``remote``: the backend records and scores in other processes (dask), whose
        memory is not known here; nothing is checked.
        """
        if remote or not record:
            return
        values = len(tuple(record)) * n_samples * self.n_traces * self.n_steps
        needed = 8 * values * RECORDING_COPIES
        available = available_memory()
        if available is None or needed <= available:
            return
        raise ConfigurationError(
            f"A round would record {len(tuple(record))} variable(s) x {n_samples} samples x "
            f"{self.n_traces} traces x {self.n_steps} steps, about {needed / 2**30:.1f} GiB "
            f"while it is scored, but only {available / 2**30:.1f} GiB of memory is "
            f"available. Use fewer samples (n_samples), online_error=True (nothing is "
            f"recorded, the error is accumulated while simulating), a machine with more "
            f"memory, or backend='dask' to spread the samples over workers.")

    @property
    def single_run_backend(self):
        """The backend of single runs: the batch backend's choice
        (:class:`~modelfit_core.contracts.protocols.SingleRunDelegation`), else itself."""
        if isinstance(self.backend, SingleRunDelegation):
            return self.backend.single_run_backend()
        return self.backend

    def prepared(self, key: Hashable, make_spec: Callable[[], SimulationSpec],
                 backend=None):
        """The simulation prepared for ``key``, built with ``make_spec()`` on ``backend``
        (default: the batch backend) the first time and kept for later calls."""
        simulation = self._prepared.get(key)
        if simulation is None:
            backend = self.backend if backend is None else backend
            spec = make_spec()
            simulation = backend.prepare(spec)
            self._prepared[key] = simulation
            self._specs[key] = spec
        return simulation

    def batch_recording(self, record, record_spikes: bool, parameter_names,
                        param_init: Mapping[str, Any]):
        """The fit's prepared simulation, if it records ``record`` (and spikes if
        asked) for these fitted parameters and initial values, runs in this process
        and simulates at most ``REUSED_BATCH_SAMPLES`` sets: ``(simulation,
        n_samples)``, else None.

        A single run (``generate``) then repeats its point over the batch instead of
        preparing, and on a new machine compiling, a simulation of its own.
        """
        initial, constants = initial_values(param_init, self.model, set(parameter_names))
        wanted = (tuple(parameter_names), repr(sorted(initial.items(), key=str)),
                  repr(sorted(constants.items())))
        for key, spec in self._specs.items():
            simulation = self._prepared.get(key)
            if (spec.name != FIT_SIMULATION or spec.n_samples > REUSED_BATCH_SAMPLES
                    or simulation is None or isinstance(simulation, RemoteScoring)):
                continue  # another purpose, too large, or scored where it ran
            found = (tuple(spec.parameter_names), repr(sorted(spec.param_init.items(),
                                                              key=str)),
                     repr(sorted(spec.constants.items())))
            if found == wanted and set(record) <= set(spec.record) and (
                    spec.record_spikes or not record_spikes):
                return simulation, spec.n_samples
        return None

    def release(self, key: Hashable) -> None:
        """Close and forget the simulation prepared for ``key`` (if any)."""
        simulation = self._prepared.pop(key, None)
        self._specs.pop(key, None)
        if simulation is not None:
            simulation.close()

    @property
    def prepared_keys(self) -> list[Hashable]:
        """Keys of the simulations prepared so far."""
        return list(self._prepared)
