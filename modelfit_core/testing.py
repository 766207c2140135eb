"""Contract checks for plugin authors (the public face of
:mod:`modelfit_core.tools.contract_checks`); needs ``hypothesis``."""

from modelfit_core.tools.contract_checks import (  # noqa: F401
    check_feedback, check_optimizer, check_registered, check_spike_metric,
    check_trace_metric, optimizer_problems, spike_cases, trace_cases)
from modelfit_core.tools.contract_checks import __all__  # noqa: F401
