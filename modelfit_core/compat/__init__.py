"""brian2modelfitting's module layout, for scripts ported from it.

Every module-level name of the brian2modelfitting API reference is offered by
``from modelfit_core import *``. A script that imports from a submodule
changes only the package part of the import:

===========================================  =========================================
brian2modelfitting                           modelfit
===========================================  =========================================
``from brian2modelfitting.fitter import``      ``from modelfit_core.compat.fitter import``
``from brian2modelfitting.inferencer import``  ``from modelfit_core.compat.inferencer import``
``from brian2modelfitting.metric import``      ``from modelfit_core.compat.metric import``
``from brian2modelfitting.optimizer import``   ``from modelfit_core.compat.optimizer import``
``from brian2modelfitting.simulator import``   ``from modelfit_core.compat.simulator import``
``from brian2modelfitting.utils import``       ``from modelfit_core.compat.utils import``
``from brian2modelfitting.tests import run``   ``from modelfit_core.compat.tests import run``
===========================================  =========================================

This package is a face above the core's layers (it may use any of them, and
nothing in the core uses it). The names that live in plugins (optimizers,
metrics, the Inferencer, and helpers such as ``firing_rate``) are found
through the registry when first used, so importing a compat module imports
no plugin library. docs/compatibility.md lists every name and how it
differs from brian2modelfitting, if at all.
"""

MODULES = ("fitter", "inferencer", "metric", "optimizer", "simulator", "tests", "utils")
"""The submodules, named after those of brian2modelfitting."""
