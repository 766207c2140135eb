"""A fit's results as a user reads them: with units, under the manual's names.

:class:`FitResults` is a view of a :class:`~modelfit_core.fitting.fit.Fit`:
the best parameters and errors, each output's errors, and every evaluated
point (``results()``), with Brian units unless ``use_units`` is False. The
fitters' ``best_params``, ``best_error``, ``results()``, ... and the
feedback's arguments read them here.
"""

from __future__ import annotations

from typing import Any

import attrs

from modelfit_core.contracts.units import error_quantity
from modelfit_core.fitting.fit import Fit


@attrs.frozen
class FitResults:
    """The results of ``fit``, with units unless ``use_units`` is False."""

    fit: Fit
    use_units: bool = True

    @property
    def best_params(self) -> dict[str, Any] | None:
        """Best parameter set so far (None if every simulation diverged)."""
        if not self.fit.has_best:
            return None
        return self.fit.space.to_dict(self.fit.best_vector, self.use_units)

    @property
    def best_error(self):
        """Error of :attr:`best_params` (a Quantity when it has units)."""
        value = self.fit.best_error
        if value is None:
            return None
        return error_quantity(value, self.fit.objective.error_dim) if self.use_units else value

    @property
    def best_objective_errors_normalized(self) -> dict[str, Any] | None:
        """Normalized error of each output variable for the best parameters."""
        if not self.fit.has_best:
            return None
        return self.fit.objective.normalized_errors(self.fit.history.best_objective_errors,
                                                    self.use_units)

    @property
    def best_objective_errors(self) -> dict[str, Any] | None:
        """Error of each output variable for the best parameters, before normalization."""
        if not self.fit.has_best:
            return None
        return self.fit.objective.raw_errors(self.fit.history.best_objective_errors,
                                             self.use_units)

    def results(self, format: str = "list"):
        """All evaluated parameter sets and errors, as ``'list'`` (of dicts), ``'dict'``
        (of arrays) or ``'dataframe'``; with several outputs, each output's errors
        too (see :meth:`~modelfit_core.results.history.History.results`)."""
        history = self.fit.history
        return history.results(format=format, use_units=self.use_units,
                               per_output=self.fit.objective.output_errors(history))
