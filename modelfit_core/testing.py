"""Contract checks for plugin authors (the public face of
:mod:`modelfit_core.tools.contract_checks` and
:mod:`modelfit_core.tools.multiobjective_checks`); needs ``hypothesis``."""

from modelfit_core.tools.contract_checks import (
    check_feedback, check_optimizer, check_registered, check_spike_metric,
    check_trace_metric, optimizer_problems, spike_cases, trace_cases)
from modelfit_core.tools.multiobjective_checks import (
    check_multiobjective_optimizer, objective_problems)

# written out for type checkers; tests/test_public_names.py checks it against the tools'
__all__ = ["check_feedback", "check_multiobjective_optimizer", "check_optimizer",
           "check_registered", "check_spike_metric", "check_trace_metric", "objective_problems",
           "optimizer_problems", "spike_cases", "trace_cases"]
