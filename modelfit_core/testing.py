"""Contract checks for plugin authors (the public face of
:mod:`modelfit_core.tools.contract_checks`,
:mod:`modelfit_core.tools.multiobjective_checks`,
:mod:`modelfit_core.tools.problem_checks` and
:mod:`modelfit_core.tools.simulation_checks`); needs ``hypothesis``."""

from modelfit_core.tools.contract_checks import (
    check_feedback, check_optimizer, check_registered,
    check_spike_metric, check_trace_metric, optimizer_problems, spike_cases, trace_cases)
from modelfit_core.tools.gradient_optimizer_checks import check_gradient_optimizer
from modelfit_core.tools.multiobjective_checks import (
    check_multiobjective_optimizer, objective_problems)
from modelfit_core.tools.problem_checks import check_problem
from modelfit_core.tools.simulation_checks import check_backend, check_inference

# written out, for type checkers (tests/test_public_names.py)
__all__ = ["check_backend", "check_feedback", "check_gradient_optimizer", "check_inference",
           "check_multiobjective_optimizer", "check_optimizer", "check_problem",
           "check_registered",
           "check_spike_metric", "check_trace_metric", "objective_problems",
           "optimizer_problems", "spike_cases", "trace_cases"]
