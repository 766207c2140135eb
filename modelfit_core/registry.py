"""Discovery and lookup of plugins through the ``modelfit`` entry-point group.

A :class:`Registry` wraps one :class:`pluggy.PluginManager`. Each Pipeline
owns one, so two differently configured pipelines can live side by side.
Built-in plugins are found through the same entry points as third-party
ones: this module never imports a plugin by name.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
from typing import Any, Iterable

import attrs
import pluggy

from modelfit_core import hookspecs
from modelfit_core.hookspecs import SINGULAR
from modelfit_core.errors import (DuplicatePluginError, PluginLoadError,
                                  UnknownPluginError)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
DISABLE_ENV_VAR = "MODELFIT_DISABLE_PLUGINS"
"""Comma-separated entry-point or distribution names that are never loaded."""


@attrs.define
class PluginStatus:
    """What happened when one entry point was loaded."""

    name: str
    module: str
    distribution: str
    loaded: bool
    error: str | None = None
    missing_package: str | None = None
    extra: str | None = None

    def describe(self) -> str:
        if self.loaded:
            return "ok"
        if self.missing_package:
            hint = f"pip install 'modelfit[{self.extra}]'" if self.extra else \
                f"pip install {self.missing_package}"
            return f"not loaded: missing package {self.missing_package!r} ({hint})"
        return f"not loaded: {self.error}"


def _extra_for(ep, missing: str | None) -> str | None:
    """The distribution's extra that brings what ``ep`` misses.

    Entry-point references cannot name extras in pyproject.toml, so the extra is
    found in the distribution's metadata: one named like the entry point, or
    one whose requirements name the missing package.
    """
    if ep.dist is None:
        return None
    extras = ep.dist.metadata.get_all("Provides-Extra") or []
    if ep.name in extras:
        return ep.name
    if missing:
        wanted = missing.lower().replace("_", "-")
        for requirement in ep.dist.requires or []:
            name, _, marker = requirement.partition(";")
            base = name.split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
            if base.lower().replace("_", "-") == wanted and "extra ==" in marker:
                return marker.split("extra ==")[1].strip().strip("'\"")
    return None


def _disabled_from_env() -> set[str]:
    value = os.environ.get(DISABLE_ENV_VAR, "")
    return {part.strip() for part in value.split(",") if part.strip()}


class Registry:
    """Named plugin classes of every kind, read from entry points.

    Parameters
    ----------
    load_entrypoints : bool
        Read the ``modelfit`` entry-point group (default). With False only
        plugins passed in ``plugins`` or registered later are known.
    disable : iterable of str
        Entry-point or distribution names to skip, in addition to those in
        the ``MODELFIT_DISABLE_PLUGINS`` environment variable.
    distributions : iterable of str, optional
        Load only entry points provided by these distributions (e.g.
        ``["modelfit"]`` to isolate tests from other installed plugins).
    plugins : iterable of modules or objects
        Extra plugin objects (with ``@hookimpl`` functions) to register.
    """

    def __init__(self, load_entrypoints: bool = True, disable: Iterable[str] = (),
                 distributions: Iterable[str] | None = None,
                 plugins: Iterable[Any] = ()):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self.statuses: dict[str, PluginStatus] = {}
        self._tables: dict[str, dict[str, tuple[type, str]]] | None = None
        disabled = set(disable) | _disabled_from_env()
        if load_entrypoints:
            wanted = set(distributions) if distributions is not None else None
            self._load_entrypoints(disabled, wanted)
        for plugin in plugins:
            self.register(plugin)

    # -- loading -------------------------------------------------------------
    def _load_entrypoints(self, disabled: set[str], wanted: set[str] | None) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "?"
            if ep.name in disabled or dist in disabled:
                continue
            if wanted is not None and dist not in wanted:
                continue
            if ep.name in self.statuses:  # the same distribution seen twice on sys.path
                continue
            status = PluginStatus(name=ep.name, module=ep.value, distribution=dist,
                                  loaded=False)
            try:
                plugin = ep.load()
            except ModuleNotFoundError as exc:
                status.error = str(exc)
                status.missing_package = (exc.name or "").split(".")[0] or None
                status.extra = _extra_for(ep, status.missing_package)
            except Exception as exc:  # a broken plugin must not break the others
                # (ImportError of a name inside an installed package lands here too)
                status.error = f"{type(exc).__name__}: {exc}"
            else:
                self._pm.register(plugin, name=ep.name)
                status.loaded = True
            self.statuses[ep.name] = status
        self._tables = None

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register a plugin object (a module or any object with hook functions)."""
        self._pm.register(plugin, name=name)
        label = name or self._pm.get_name(plugin)
        self.statuses[label] = PluginStatus(
            name=label, module=getattr(plugin, "__name__", repr(plugin)),
            distribution="(registered in code)", loaded=True)
        self._tables = None

    @property
    def hook(self):
        """The pluggy hook relay, for calling lifecycle hooks."""
        return self._pm.hook

    # -- lookup --------------------------------------------------------------
    def _build_tables(self) -> dict[str, dict[str, tuple[type, str]]]:
        tables: dict[str, dict[str, tuple[type, str]]] = {}
        for kind in hookspecs.KINDS:
            table: dict[str, tuple[type, str]] = {}
            caller = getattr(self._pm.hook, f"modelfit_register_{kind}")
            for impl in caller.get_hookimpls():
                provided = impl.function() or {}
                for key, cls in provided.items():
                    if key in table:
                        raise DuplicatePluginError(
                            f"Two plugins register the {SINGULAR[kind]} name {key!r}: "
                            f"{table[key][1]!r} and {impl.plugin_name!r}. Disable one "
                            f"with {DISABLE_ENV_VAR}={impl.plugin_name} or "
                            f"Registry(disable=[...]).")
                    table[key] = (cls, impl.plugin_name)
            tables[kind] = table
        return tables

    @property
    def tables(self) -> dict[str, dict[str, tuple[type, str]]]:
        if self._tables is None:
            self._tables = self._build_tables()
        return self._tables

    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind`` (one of ``hookspecs.KINDS``)."""
        return sorted(self.tables[kind])

    def lookup(self, kind: str, name: str) -> type:
        """Return the class registered as ``name`` for ``kind``.

        Raises
        ------
        UnknownPluginError
            With the installed names, the closest match, and plugins of that
            kind that failed to load.
        """
        if kind not in hookspecs.KINDS:
            raise UnknownPluginError(f"Unknown plugin kind {kind!r}; kinds are "
                                     f"{', '.join(hookspecs.KINDS)}.")
        table = self.tables[kind]
        if name in table:
            return table[name][0]
        raise UnknownPluginError(self._unknown_message(kind, name, table))

    def provider(self, kind: str, name: str) -> str:
        """The plugin (entry-point) name that registered ``name``."""
        self.lookup(kind, name)
        return self.tables[kind][name][1]

    def _unknown_message(self, kind: str, name: str, table: dict) -> str:
        installed = sorted(table)
        lowered = {n.lower(): n for n in installed}
        close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.5)
        message = f"No {SINGULAR[kind]} plugin named {name!r}."
        if close:
            message += f" Did you mean {lowered[close[0]]!r}?"
        message += f" Installed {kind}: {', '.join(installed) or '(none)'}."
        failed = [s for s in self.statuses.values() if not s.loaded]
        if failed:
            message += " Plugins that failed to load: " + "; ".join(
                f"{s.name} ({s.describe()})" for s in failed) + "."
        return message

    def find_class(self, class_name: str) -> type | None:
        """Find a registered class by its Python name (``'NevergradOptimizer'``)."""
        for table in self.tables.values():
            for cls, _provider in table.values():
                if getattr(cls, "__name__", None) == class_name:
                    return cls
        return None

    def class_names(self) -> list[str]:
        """Python names of every registered class, for ``from modelfit_core import *``."""
        return sorted({cls.__name__ for table in self.tables.values()
                       for cls, _ in table.values() if hasattr(cls, "__name__")})

    def require_loaded(self, name: str) -> None:
        """Raise :class:`PluginLoadError` if the entry point ``name`` failed to load."""
        status = self.statuses.get(name)
        if status is not None and not status.loaded:
            raise PluginLoadError(f"Plugin {name!r} is installed but {status.describe()}.")


def import_object(path: str) -> Any:
    """Import ``'package.module:attribute'`` (used by config files and the CLI)."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module
