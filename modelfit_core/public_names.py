"""Names that ``modelfit_core`` and ``modelfit_core.compat.*`` offer from plugins.

A public module lists its names in an explicit ``__all__``, the same whatever
extras are installed, and resolves those that plugins provide when they are
first used (PEP 562 ``__getattr__``, through the registry). ``from m import *``
asks for every name of ``__all__``: one that cannot be used here (its extra is
not installed, its plugin is disabled or broken) must not break the whole
import, so it is bound to an :class:`UnavailableName`, which raises the
registry's error, with its ``pip install`` hint, when it is used.

Names of third-party plugins are not in ``__all__`` (it would change with what
is installed); they are found by the same ``__getattr__``.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, NoReturn

from modelfit_core.contracts.errors import PluginLoadError


class UnavailableName:
    """Stands in for a public name whose plugin cannot be used in this environment.

    Calling it (making an instance of the class it stands for), subclassing it
    or reading one of its attributes raises the :class:`PluginLoadError` that
    says why (e.g. ``pip install 'modelfit-brian2[efel]'``).

    Parameters
    ----------
    name : str
        The public name (``'FeatureMetric'``).
    error : PluginLoadError
        What the registry said when the name was looked up.
    """

    def __init__(self, name: str, error: PluginLoadError):
        self.__name__ = self.__qualname__ = name
        self.error = error

    def _raise(self) -> NoReturn:
        raise PluginLoadError(f"{self.__name__} cannot be used: {self.error}") from self.error

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._raise()

    def __mro_entries__(self, bases: tuple) -> NoReturn:
        self._raise()

    def __getattr__(self, attribute: str) -> Any:
        # special names stay AttributeErrors: inspect, pickle, pytest and help() probe them
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        self._raise()

    def __repr__(self) -> str:
        return f"<{self.__name__}: unavailable ({self.error})>"


def offered_name(module: str, name: str, offered: Collection[str],
                 find: Callable[[str], Any]) -> Any:
    """The object a public module offers as ``name``: ``find(name)`` (a plugin's class or
    export, None if no plugin provides it), or an :class:`UnavailableName` for a name of
    ``offered`` (the module's ``__all__``) that cannot be used here.

    Raises
    ------
    AttributeError
        ``name`` is neither offered nor provided by a plugin.
    PluginLoadError
        A plugin provides ``name`` (not one of ``offered``) but cannot be used.
    """
    try:
        found = find(name)
    except PluginLoadError as exc:
        if name not in offered:
            raise
        return UnavailableName(name, exc)
    if found is not None:
        return found
    if name in offered:
        return UnavailableName(name, PluginLoadError(
            f"no plugin registered in this process provides {name!r} (is its plugin "
            f"disabled by MODELFIT_DISABLE_PLUGINS? `modelfit plugins` lists the plugins and "
            f"what each needs)"))
    raise AttributeError(f"module {module!r} has no attribute {name!r}")
