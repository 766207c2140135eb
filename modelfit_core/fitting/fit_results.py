"""A fit's results under the manual's names, and what its feedback receives.

:class:`FitResults` is one of the bases of
:class:`~modelfit_core.fitting.fitter.Fitter`; it reads ``self.state`` (the
:class:`~modelfit_core.fitting.loop.FitState`, None before a fit),
``self.space``, ``self.history``, ``self.use_units`` and ``self.output_names``.
"""

from __future__ import annotations

from typing import Any

from modelfit_core.contracts.errors import FitStateError
from modelfit_core.contracts.units import error_quantity
from modelfit_core.fitting.fit_arguments import feedback_arity
from modelfit_core.results.history import RoundRecord


class FitResults:
    """Best parameters and errors, every evaluation (``results()``), feedback calls."""

    def has_best(self) -> bool:
        """Whether a fit found a best parameter set (not every simulation diverged)."""
        return self.state is not None and self.state.history.best_vector is not None

    def require_fit(self) -> None:
        """Raise :class:`FitStateError` unless a fit found a best parameter set."""
        if not self.has_best():
            raise FitStateError("No fit result yet: call fit() first (and check that not "
                                "every simulation diverged).")

    @property
    def best_params(self) -> dict[str, Any] | None:
        """Best parameter set so far, with units unless ``use_units=False``."""
        if not self.has_best():
            return None
        return self.space.to_dict(self.history.best_vector, self.use_units)

    @property
    def best_error(self):
        """Error of :attr:`best_params` (a Quantity when it has units)."""
        if not self.has_best():
            return None
        value = self.history.best_error
        return error_quantity(value, self.state.objective.error_dim) if self.use_units else value

    @property
    def best_objective_errors_normalized(self) -> dict[str, Any] | None:
        """Normalized error of each output variable for the best parameters."""
        if not self.has_best():
            return None
        return self.state.objective.normalized_errors(self.history.best_objective_errors,
                                                      self.use_units)

    @property
    def best_objective_errors(self) -> dict[str, Any] | None:
        """Error of each output variable for the best parameters, before normalization."""
        if not self.has_best():
            return None
        return self.state.objective.raw_errors(self.history.best_objective_errors,
                                               self.use_units)

    def results(self, format="list", use_units=None):
        """All evaluated parameter sets and errors, as ``'list'`` (of dicts), ``'dict'``
        (of arrays) or ``'dataframe'``; with several outputs, each output's errors
        too (see :meth:`~modelfit_core.results.history.History.results`)."""
        if self.history is None:
            raise FitStateError("No results yet: call fit() first.")
        return self.history.results(
            format=format, use_units=self.use_units if use_units is None else use_units,
            per_output=self.state.objective.output_errors(self.history))

    def notify_feedback(self, feedback, record: RoundRecord) -> bool:
        """Call the feedback as the manual says: ``(params, errors, best_params,
        best_error, index, additional_info)``, ``errors`` a list."""
        params = [self.space.to_dict(row, self.use_units) for row in record.parameters]
        history = self.history
        dim = self.state.objective.error_dim
        errors = [error_quantity(float(e), dim) if self.use_units else float(e)
                  for e in record.errors]
        raw = self.best_objective_errors or {}
        normalized = self.best_objective_errors_normalized or {}
        info = {"objective_errors": tuple(raw.get(n) for n in self.output_names),
                "objective_errors_normalized": tuple(normalized.get(n)
                                                     for n in self.output_names),
                "output_var": list(self.output_names),
                "best_params_text": self.space.describe(history.best_vector)
                if history.best_vector is not None else "(none yet: all diverged)",
                "diverged": record.diverged,
                "round_objective_errors": record.objective_errors}
        arguments = (params, errors, self.best_params, self.best_error, record.index, info)
        # the manual's own example callback takes five arguments (no additional_info)
        return bool(feedback(*arguments[:feedback_arity(feedback)]))
