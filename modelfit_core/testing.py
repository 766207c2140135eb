"""Contract checks for plugin authors (the public face of
:mod:`modelfit_core.tools.contract_checks` and
:mod:`modelfit_core.tools.multiobjective_checks`); needs ``hypothesis``."""

from modelfit_core.tools import contract_checks, multiobjective_checks
from modelfit_core.tools.contract_checks import (  # noqa: F401
    check_feedback, check_optimizer, check_registered, check_spike_metric,
    check_trace_metric, optimizer_problems, spike_cases, trace_cases)
from modelfit_core.tools.multiobjective_checks import (  # noqa: F401
    check_multiobjective_optimizer, objective_problems)

__all__ = [*contract_checks.__all__, *multiobjective_checks.__all__]
