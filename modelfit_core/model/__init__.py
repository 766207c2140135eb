"""Layer 2, model: a Brian 2 model and the recordings it is fitted to.

Equations and their parameters, the caller's namespace, parameter bounds,
recorded inputs and outputs, sensitivity equations. Imports only
:mod:`modelfit_core.contracts`.
"""
