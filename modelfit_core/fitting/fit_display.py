"""What a fit with storage keeps for its dashboard, taken from the fit as it runs.

:class:`FitDisplay` is handed to the storage's session
(``FitStore.session(display=...)``). When the rounds start it writes the
study's details (backend, time step, units of the outputs) and, once per
study, its recordings; with each round whose best point beats every earlier
one it gives the storage that point's simulated traces, taken from the
round's simulation result, or, where the result holds no traces (online
errors, batches scored on dask workers, asynchronous rounds), from one
simulation of that point in this process (``generate``'s single run: the
traces travel only for the points the dashboard shows). All of it is thinned
and bounded (:mod:`~modelfit_core.results.display_tables`).

Nothing here may stop a fit: an unexpected failure is warned about once and
then ignored.
"""

from __future__ import annotations

import sqlite3
import warnings
from typing import Any, Callable

import numpy as np

from modelfit_core.fitting.generation import generate_outputs
from modelfit_core.version import __version__
from modelfit_core.results import display_tables
from modelfit_core.results.display_tables import DisplayTrace, outputs_for_display
from modelfit_core.results.history import RoundRecord
from modelfit_core.results.study_description import dimension_json, stable_repr


class FitDisplay:
    """The dashboard's data of one fit: ``problem`` is its FittingProblem, ``state_of()``
    returns its current FitState (whose ``last_result`` is the round's simulation)."""

    def __init__(self, problem, state_of: Callable[[], Any]):
        self.problem = problem
        self.state_of = state_of
        self._best: float | None = None
        self._warned = False

    def details(self) -> dict[str, str]:
        """The study's details: what the dashboard says about the fit besides the study row."""
        problem = self.problem
        details = {"backend": stable_repr(problem.backend), "dt": repr(float(problem.dt)),
                   "n_steps": str(problem.n_steps), "n_traces": str(problem.n_traces),
                   "modelfit": __version__}
        for name, dim in problem.output_dims.items():
            details[f"unit:{name}"] = dimension_json(dim)
        return details

    def recordings(self) -> list[DisplayTrace]:
        """The recordings the fit is fitted to, thinned for display."""
        recordings = self.problem.recordings
        return outputs_for_display({name: signal.values
                                    for name, signal in recordings.traces.items()},
                                   recordings.spikes)

    def write_study(self, connection: sqlite3.Connection, study: str) -> None:
        """Write the details, and the recordings if the study has none yet (inside the
        transaction that starts the rounds)."""
        display_tables.write_details(connection, study, self.details())
        if not display_tables.has_recordings(connection, study):
            display_tables.write_recordings(connection, study, self.recordings())

    def best_traces(self, record: RoundRecord) -> tuple[int, list[DisplayTrace]] | None:
        """``(sample, traces)`` of the round's best point when it beats every earlier
        one and the round's result holds its traces; else None."""
        try:
            return self._best_traces(record)
        except Exception as exc:  # the fit goes on without what it could not keep
            if not self._warned:
                self._warned = True
                warnings.warn(f"The traces of the best points cannot be stored for the "
                              f"dashboard ({type(exc).__name__}: {exc}); the fit goes on "
                              f"without them.", RuntimeWarning, stacklevel=2)
            return None

    def _best_traces(self, record: RoundRecord):
        state = self.state_of()
        if self._best is None:
            self._best = min((_lowest(r) for r in state.history.rounds), default=np.inf)
        sample = _best_sample(record)
        if sample is None or record.errors[sample] >= self._best:
            return None
        self._best = float(record.errors[sample])
        result = state.last_result
        problem = self.problem
        wanted = problem.recordings.trace_outputs
        spiking = display_tables.SPIKES in problem.output_names
        if result is not None and all(name in result.traces for name in wanted) and (
                not spiking or result.spikes is not None) and \
                len(record.errors) == _rows(result, wanted):
            traces = {name: result.traces[name][sample] for name in wanted}
            spikes = result.spikes[sample] if spiking and result.spikes is not None else None
        else:
            # the round's traces are not here (scored where it ran, online errors, an
            # asynchronous round): simulate the new best point once, in this process
            outputs = generate_outputs(problem, state.space, record.parameters[sample],
                                       output_var=list(problem.output_names),
                                       iteration=record.iteration, use_units=False)
            traces = {name: np.asarray(outputs[name]) for name in wanted}
            spikes = outputs.get(display_tables.SPIKES) if spiking else None
        shown = outputs_for_display(traces, spikes)
        return (sample, shown) if shown else None


def _rows(result, names) -> int:
    """Parameter sets in ``result``'s traces (the round's, if it is the round's result)."""
    return len(result.traces[names[0]]) if names else len(result.spikes or ())


def _usable(record: RoundRecord) -> np.ndarray:
    return np.isfinite(record.errors) & ~np.asarray(record.diverged, dtype=bool)


def _lowest(record: RoundRecord) -> float:
    usable = _usable(record)
    return float(record.errors[usable].min()) if usable.any() else np.inf


def _best_sample(record: RoundRecord) -> int | None:
    usable = _usable(record)
    if not usable.any():
        return None
    return int(np.argmin(np.where(usable, record.errors, np.inf)))
