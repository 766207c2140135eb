"""Layer 1, contracts: what the core and every plugin agree on.

Errors, units helpers, the Protocols of each plugin kind and their
description (:mod:`.kinds`), the pluggy hook specifications, the simulation
specification a backend prepares, and the metric base classes. Modules here
import nothing else of modelfit.
"""
