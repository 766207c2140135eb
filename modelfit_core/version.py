"""modelfit's version: the one source (the package, the distribution's metadata and
what a study records all read it)."""

__version__ = "0.2.0"
