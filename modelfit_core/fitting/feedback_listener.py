"""The feedback of a ``fit()`` call, as a listener of the fit's events.

The manual's feedback is a callable ``(params, errors, best_params,
best_error, index, additional_info)`` returning True to stop, or the name of
a feedback plugin (``'text'``, ``'progressbar'``); some also have
``start(n_rounds)`` and ``finish()``. :class:`FeedbackListener` hears the
fit's lifecycle events (:mod:`~modelfit_core.fitting.events`) as any hook
plugin does and calls the feedback as the manual says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from modelfit_core.contracts.units import error_quantity
from modelfit_core.fitting.fit import Fit
from modelfit_core.fitting.fit_arguments import feedback_arity
from modelfit_core.fitting.fit_results import FitResults
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results.history import RoundRecord


class RoundParameters(Sequence):
    """The parameter sets of a round as ``{name: value}`` dicts, made when read.

    A feedback gets this instead of a list: a round of 2000 sets with units costs
    tens of milliseconds to convert, which a progress bar that never reads them
    should not pay. Indexing, slicing, iteration and ``len`` work as on a list;
    ``list(params)`` makes one.
    """

    def __init__(self, space: ParameterSpace, matrix: np.ndarray, use_units: bool):
        self._space, self._matrix, self._use_units = space, matrix, use_units

    def __len__(self) -> int:
        return len(self._matrix)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._space.to_dict(row, self._use_units) for row in self._matrix[index]]
        return self._space.to_dict(self._matrix[index], self._use_units)

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, RoundParameters)) \
            else NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))


class FeedbackListener:
    """Calls ``feedback`` after each round of ``fit`` with the manual's arguments
    (parameters and errors with units unless ``use_units`` is False)."""

    def __init__(self, feedback, fit: Fit, use_units: bool):
        self.feedback = feedback
        self.fit = fit
        self.use_units = use_units

    def modelfit_fit_started(self, n_rounds: int) -> None:
        start = getattr(self.feedback, "start", None)
        if callable(start):
            start(n_rounds)

    def modelfit_round_finished(self, round_record: RoundRecord) -> bool:
        fit, use_units = self.fit, self.use_units
        results = FitResults(fit, use_units)
        params = RoundParameters(fit.space, round_record.parameters, use_units)
        dim = fit.objective.error_dim
        # the round's errors as one array, a Quantity with units, as brian2modelfitting
        # passes them (refine() passes the errors of every evaluation so far, alike)
        values = np.asarray(round_record.errors, dtype=float)
        errors = error_quantity(values, dim) if use_units else values
        names = fit.problem.output_names
        raw = results.best_objective_errors or {}
        normalized = results.best_objective_errors_normalized or {}
        best = fit.best_vector
        info = {"objective_errors": tuple(raw.get(n) for n in names),
                "objective_errors_normalized": tuple(normalized.get(n) for n in names),
                "output_var": list(names),
                "best_params_text": fit.space.describe(best)
                if best is not None else "(none yet: all diverged)",
                "diverged": round_record.diverged,
                "round_objective_errors": round_record.objective_errors,
                "round_seconds": round_record.duration_s,
                "workers": round_record.workers}
        arguments = (params, errors, results.best_params, results.best_error,
                     round_record.index, info)
        # the manual's own example callback takes five arguments (no additional_info)
        return bool(self.feedback(*arguments[:feedback_arity(self.feedback)]))

    def modelfit_fit_finished(self) -> None:
        finish = getattr(self.feedback, "finish", None)
        if callable(finish):
            finish()
