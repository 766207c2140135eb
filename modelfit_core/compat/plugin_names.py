"""The names of a compat module that plugins provide, found through the registry.

brian2modelfitting's ``metric`` module holds the metric classes and helpers
such as ``firing_rate``; here those live in plugins. A compat module stands
for one plugin kind and offers, under their Python names:

* the registered classes of that kind (``MSEMetric`` for ``metrics``);
* the ``modelfit.exports`` objects defined in a package that holds plugins of
  that kind (``firing_rate`` sits next to the metric plugins).

A compat module's ``__all__`` is written out in it (the same whatever is
installed, see :mod:`modelfit_core.public_names`); third-party classes and
exports of its kind are found here too, but are not in ``__all__``.
"""

from __future__ import annotations

from typing import Any, Collection

from modelfit_core.contracts.kinds import kind_called
from modelfit_core.public_names import offered_name
from modelfit_core.registry.plugin_registry import Registry, shared_registry


def _package(module: str) -> str:
    return module.rpartition(".")[0]


def _kind_packages(registry: Registry, kind: str) -> set[str]:
    return {_package(status.module) for status in registry.statuses.values()
            if status.kind == kind}


def _is_of_kind(obj: Any, kind: str) -> bool:
    return isinstance(obj, type) and kind_called(kind).problem_with(obj) is None


def find_plugin_name(kind: str, name: str) -> Any | None:
    """The class of ``kind`` or the export next to plugins of ``kind`` called ``name``.

    Parameters
    ----------
    kind : str
        A plugin kind (``'metrics'``, ``'optimizers'``, ``'inference'``).
    name : str
        The Python name (``'MSEMetric'``, ``'firing_rate'``).

    Returns
    -------
    object or None
        None if no installed plugin offers ``name`` for this kind.

    Raises
    ------
    PluginLoadError
        The plugin is installed but cannot be used (a missing extra is named).
    """
    if name.startswith("_"):
        return None
    registry = shared_registry()
    found = registry.find_class(name)
    if found is not None:
        return found if _is_of_kind(found, kind) else None
    found = registry.find_export(name)
    if found is not None and _package(getattr(found, "__module__", "") or "") in \
            _kind_packages(registry, kind):
        return found
    return None


def plugin_names(kind: str) -> list[str]:
    """Python names :func:`find_plugin_name` resolves for ``kind`` (imports the plugin
    modules of that kind, none of their libraries)."""
    registry = shared_registry()
    names = []
    for name in registry.class_names() + registry.export_names():
        try:
            if find_plugin_name(kind, name) is not None:
                names.append(name)
        except ImportError:  # listed as usable, yet broken: leave it to the lookup to say
            continue
    return sorted(set(names))


def module_getattr(module_name: str, kind: str, name: str, offered: Collection[str] = ()
                   ) -> Any:
    """The body of a compat module's ``__getattr__``: a plugin name, a stand-in for one of
    ``offered`` (the module's ``__all__``) that cannot be used here, or AttributeError."""
    return offered_name(module_name, name, offered,
                        lambda wanted: find_plugin_name(kind, wanted))
