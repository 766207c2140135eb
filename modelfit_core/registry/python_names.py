"""The Python names of registered classes and exports, for ``from modelfit_core import *``.

``modelfit_core/__init__.py`` and :mod:`modelfit_core.compat` resolve names such
as ``NevergradOptimizer`` through the registry's methods; these functions do
the work, over the registry's catalog (kind -> name -> status keys), its class
entries (status key -> :class:`~.entry_points.PluginEntry`), and the tables
of what hook plugins register. Class entries are named from the metadata,
without importing them.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from modelfit_core.contracts.errors import PluginLoadError
from modelfit_core.contracts.kinds import KIND_NAMES
from modelfit_core.registry.entry_points import PluginEntry
from modelfit_core.registry.plugin_status import PluginStatus

Catalog = Mapping[str, Mapping[str, list[str]]]
"""kind -> name -> the status keys of the class entries providing it."""


def class_names(catalog: Catalog, entries: Mapping[str, PluginEntry],
                statuses: Mapping[str, PluginStatus], tables: Mapping) -> list[str]:
    """Python names of the usable classes: class entries provided once and loaded
    (their attribute, from the metadata), and classes hook plugins register."""
    names = set()
    for kind in KIND_NAMES:
        for name, keys in catalog[kind].items():
            attribute = entries[keys[0]].attribute
            if len(keys) == 1 and statuses[keys[0]].loaded and attribute:
                names.add(attribute.split(".")[-1])
        names |= {cls.__name__ for cls, _ in tables[kind].values()
                  if cls is not None and hasattr(cls, "__name__")}
    return sorted(names)


def find_class(class_name: str, catalog: Catalog, entries: Mapping[str, PluginEntry],
               tables: Callable[[], Mapping], lookup: Callable[[str, str], Any]) -> Any | None:
    """The class whose Python name is ``class_name``, through ``lookup(kind, name)``
    for a class entry; None if there is none.

    Kind by kind, class entries before what hook plugins register; ``tables()``
    is asked only when no class entry of the kinds before matched.
    """
    for kind in KIND_NAMES:
        for name, keys in catalog[kind].items():
            attribute = entries[keys[0]].attribute or ""
            if attribute.split(".")[-1] == class_name:
                return lookup(kind, name)
        for cls, _ in tables()[kind].values():
            if getattr(cls, "__name__", None) == class_name:
                return cls
    return None


def find_export(exports: Mapping[str, PluginEntry], name: str) -> Any | None:
    """The object exported as ``name`` (``modelfit.exports``), imported now; None if
    there is none. An import error is a PluginLoadError naming the distribution."""
    entry = exports.get(name)
    if entry is None:
        return None
    try:
        return entry.load()
    except ImportError as exc:
        raise PluginLoadError(f"{name!r} (from distribution {entry.distribution!r}) "
                              f"cannot be imported: {exc}") from exc
