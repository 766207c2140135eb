"""Exception types raised by modelfit.

Every error a user can trigger with bad input derives from
:class:`ModelfitError`, so ``except ModelfitError`` catches them all, and each
one also derives from the built-in type a Python user would expect
(``ValueError``, ``KeyError``, ``TypeError``) so existing handlers keep working.
"""


class ModelfitError(Exception):
    """Base class of all errors raised by modelfit itself."""


class ConfigurationError(ModelfitError, ValueError):
    """Bad arguments to a fitter, pipeline or plugin, found before any simulation."""


class ParameterError(ConfigurationError):
    """A fitted parameter is missing, unknown, or has bad bounds."""


class DataError(ConfigurationError):
    """Input or output data have the wrong shape, contain NaN, or do not match."""


class ModelDefinitionError(ConfigurationError):
    """The model equations cannot be used as given (e.g. they define the input)."""


class UnknownPluginError(ModelfitError, KeyError):
    """No installed plugin provides the requested name."""

    def __str__(self):  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ArgumentTypeError(ConfigurationError, TypeError):
    """A required argument is missing, or an argument is of the wrong type (also a
    ``TypeError``, as Python raises for such calls), e.g. an optimizer without
    ``ask``/``tell`` or ``GammaFactor()`` without ``delta``."""


class PluginLoadError(ModelfitError, ImportError):
    """A plugin is installed but cannot be imported (usually a missing extra)."""


class PluginContractError(PluginLoadError, TypeError):
    """A plugin registers a class that lacks the methods of its kind's Protocol."""


class DuplicatePluginError(ModelfitError, ValueError):
    """Two plugins register the same name for the same kind."""


class FitStateError(ModelfitError, RuntimeError):
    """A method was called at the wrong moment, e.g. ``generate`` before ``fit``."""


class SimulationError(ModelfitError, RuntimeError):
    """The simulation backend failed for a reason other than divergence."""


class StorageError(ModelfitError, OSError):
    """A fit database cannot be used: missing, corrupted, read-only, of another
    schema, another fit's study, or owned by another running fit."""
