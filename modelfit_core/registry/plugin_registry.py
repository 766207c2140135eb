"""The registry: named plugin classes of every kind, found through entry points.

Class entries (``modelfit.<kind>`` groups, see :mod:`.entry_points`) are
listed and looked up from the metadata alone; a class's module is imported
the first time :meth:`Registry.lookup` returns it, and checked against its
kind's Protocol then. Hook plugins (the ``modelfit`` group, or objects
registered in code) are registered with one :class:`pluggy.PluginManager`
per registry; their registration hooks may add classes, and they receive the
lifecycle hooks. Built-in plugins are declared exactly as third-party ones:
this module never names one.

A broken plugin never stops the others: an import that fails, a class lacking
the methods of its Protocol, a name registered twice, a misspelt hook or a
registration hook that raises is recorded in :attr:`Registry.statuses`
(``modelfit plugins`` prints it) with the plugin and its distribution, and
looking up the affected name raises a clear error.
"""

from __future__ import annotations

import difflib
import importlib
import os
from typing import Any, Iterable

from modelfit_core.contracts.errors import (DuplicatePluginError, PluginContractError,
                                            PluginLoadError, UnknownPluginError)
from modelfit_core.contracts.kinds import KIND_NAMES, KINDS, Kind, kind_named
from modelfit_core.registry.entry_points import (EXPORTS_GROUP, HOOK_GROUP, PluginEntry,
                                                 extra_for_missing, missing_requirement,
                                                 read_entries)
from modelfit_core.registry.hook_plugins import HookPlugins, Tables
from modelfit_core.registry.plugin_status import PluginStatus

DISABLE_ENV_VAR = "MODELFIT_DISABLE_PLUGINS"
"""Comma-separated entry-point or distribution names that are never loaded."""


def _disabled_from_env() -> set[str]:
    value = os.environ.get(DISABLE_ENV_VAR, "")
    return {part.strip() for part in value.split(",") if part.strip()}


class Registry:
    """Named plugin classes of every kind, read from entry points.

    Parameters
    ----------
    load_entrypoints : bool
        Read the ``modelfit`` entry-point groups (default). With False only
        plugins passed in ``plugins`` or registered later are known.
    disable : iterable of str
        Entry-point or distribution names to skip, in addition to those in
        the ``MODELFIT_DISABLE_PLUGINS`` environment variable.
    distributions : iterable of str, optional
        Read only entry points of these distributions (e.g. modelfit's own,
        to isolate tests from other installed plugins).
    plugins : iterable of modules or objects
        Hook plugins (with ``@hookimpl`` functions) to register.
    """

    def __init__(self, load_entrypoints: bool = True, disable: Iterable[str] = (),
                 distributions: Iterable[str] | None = None, plugins: Iterable[Any] = ()):
        if isinstance(disable, str):
            disable = [disable]
        self._hooks = HookPlugins()
        self._statuses: dict[str, PluginStatus] = {}
        self._entries: dict[str, PluginEntry] = {}
        self._catalog: dict[str, dict[str, list[str]]] = {kind: {} for kind in KIND_NAMES}
        self._exports: dict[str, PluginEntry] = {}
        self._objects: dict[str, Any] = {}
        self._tables: Tables | None = None
        self._rejected: dict[str, dict[str, tuple[type, str]]] = {}
        self._requirements_checked = False
        if load_entrypoints:
            self._read(set(disable) | _disabled_from_env(), distributions)
        for plugin in plugins:
            self.register(plugin)

    # -- reading the entry points ------------------------------------------------------
    def _read(self, disabled: set[str], distributions) -> None:
        seen = set()
        for entry in read_entries(disabled, distributions):
            identity = (entry.distribution, entry.group, entry.name)
            if identity in seen:
                continue  # the same distribution seen twice on sys.path
            seen.add(identity)
            if entry.group == EXPORTS_GROUP:
                self._exports.setdefault(entry.name, entry)
                continue
            key = self._free_key(entry)
            status = PluginStatus(name=key, module=entry.module,
                                  distribution=entry.distribution, loaded=True,
                                  kind=entry.kind.name if entry.kind else None)
            self._statuses[key] = status
            if entry.group == HOOK_GROUP:
                self._hooks.load(entry, status)
                self._tables = None
            else:
                self._entries[key] = entry
                self._catalog[entry.kind.name].setdefault(entry.name, []).append(key)

    def _free_key(self, entry: PluginEntry) -> str:
        """The entry's name, or ``dist:name`` when another entry has that name."""
        for key in (entry.name, f"{entry.distribution}:{entry.name}",
                    f"{entry.distribution}:{entry.group}:{entry.name}"):
            if key not in self._statuses:
                return key
        raise AssertionError(f"entry point {entry} seen twice")  # excluded by _read

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register a hook plugin (a module or any object with ``@hookimpl`` functions)."""
        status = self._hooks.register(plugin, name)
        self._statuses[status.name] = status
        self._tables = None

    @property
    def hook(self):
        """The pluggy hook relay, for calling lifecycle hooks."""
        return self._hooks.hook

    @property
    def tables(self) -> Tables:
        """kind -> name -> (class, plugin) of what hook plugins register."""
        if self._tables is None:
            self._tables, self._rejected, problems = self._hooks.tables(self._label)
            for name, status in self._statuses.items():
                if status.kind is None and status.imported:
                    status.problems = problems.get(name, [])
                    status.loaded = not status.problems
            self._mark_duplicates()
        return self._tables

    # -- providers and duplicates -------------------------------------------------------
    def _providers(self, kind: str, name: str) -> list[str]:
        """Status keys of every plugin providing ``name`` for ``kind``."""
        keys = list(self._catalog[kind].get(name, []))
        claimed = self.tables[kind].get(name)
        if claimed is not None:
            keys += claimed[1].split("\n")
        return keys

    def _duplicate_message(self, kind: Kind, name: str, keys: list[str]) -> str:
        return (f"Two plugins register the {kind.singular} name {name!r}: "
                f"{' and '.join(self._label(k) for k in keys)}. Disable one with "
                f"{DISABLE_ENV_VAR}={keys[-1]} or Registry(disable=[...]), or rename it.")

    def _mark_duplicates(self) -> None:
        for kind in KINDS:
            names = set(self._catalog[kind.name]) | set(self.tables[kind.name])
            for name in names:
                keys = self._providers(kind.name, name)
                if len(keys) < 2:
                    continue
                message = self._duplicate_message(kind, name, keys)
                self._rejected[kind.name][name] = (DuplicatePluginError, message)
                for key in keys:
                    status = self._statuses[key]
                    if message not in status.problems:
                        status.problems.append(message)
                    status.loaded = False

    def _label(self, key: str) -> str:
        status = self._statuses.get(key)
        return status.label if status is not None else repr(key)

    @property
    def statuses(self) -> dict[str, PluginStatus]:
        """Entry-point (or code-registered) plugin name -> :class:`PluginStatus`.

        Read from the metadata and what the hook plugins register: a class entry
        whose extra's packages are not installed, classes lacking their
        Protocol's methods and names registered twice are not ``loaded``.
        Nothing is imported to find out.
        """
        self.tables  # noqa: B018 - registering is what finds the problems
        if not self._requirements_checked:
            self._requirements_checked = True
            installed: dict[str, bool] = {}
            for key, entry in self._entries.items():
                missing = missing_requirement(entry, installed)
                if missing is not None and not self._statuses[key].imported:
                    status = self._statuses[key]
                    status.loaded = False
                    status.missing_package, status.extra = missing
        return self._statuses

    # -- lookup -------------------------------------------------------------------------
    def _kind(self, kind: str) -> Kind:
        found = kind_named(kind)
        if found is None:
            raise UnknownPluginError(f"Unknown plugin kind {kind!r}; kinds are "
                                     f"{', '.join(KIND_NAMES)}.")
        return found

    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind`` (one of ``optimizers``, ``metrics``,
        ``backends``, ``feedback``, ``inference``); no plugin is imported."""
        self._kind(kind)
        names = set(self._catalog[kind]) | {n for n, (cls, _) in self.tables[kind].items()
                                            if cls is not None}
        return sorted(n for n in names if n not in self._rejected.get(kind, {}))

    def lookup(self, kind: str, name: str) -> Any:
        """Return the class registered as ``name`` for ``kind``, importing its module
        the first time.

        Raises
        ------
        UnknownPluginError
            With the installed names, the closest match, and plugins of that
            kind that failed to load.
        DuplicatePluginError
            Two plugins register ``name``; both are named, with their distributions.
        PluginLoadError
            The plugin's module cannot be imported (a missing extra is named).
        PluginContractError
            The class registered as ``name`` lacks methods of its Protocol.
        """
        found = self._kind(kind)
        keys = self._providers(kind, name)
        if name in self._rejected.get(kind, {}):
            error, message = self._rejected[kind][name]
            raise error(message)
        if not keys:
            raise UnknownPluginError(self._unknown_message(found, name))
        key = keys[0]
        if key in self._entries:
            return self._load(found, name, key)
        return self.tables[kind][name][0]

    def _load(self, kind: Kind, name: str, key: str) -> Any:
        if key in self._objects:
            return self._objects[key]
        entry, status = self._entries[key], self._statuses[key]
        what = f"The {kind.singular} {name!r} of plugin {status.label}"
        missing = missing_requirement(entry)
        if missing is not None:
            status.loaded, (status.missing_package, status.extra) = False, missing
            raise PluginLoadError(f"{what} is installed but {status.describe()}.")
        try:
            cls = entry.load()
        except ModuleNotFoundError as exc:
            status.loaded, status.error = False, str(exc)
            status.missing_package = (exc.name or "").split(".")[0] or None
            status.extra = extra_for_missing(entry, status.missing_package)
            raise PluginLoadError(f"{what} is installed but {status.describe()}.") from exc
        except Exception as exc:
            status.loaded, status.error = False, f"{type(exc).__name__}: {exc}"
            raise PluginLoadError(f"{what} cannot be imported: {status.error}") from exc
        problem = kind.problem_with(cls)
        if problem is not None:
            message = f"The {kind.singular} {name!r} registered by plugin {status.label} " \
                      f"is unusable: {problem}."
            status.loaded = False
            status.problems.append(message)
            self._rejected[kind.name][name] = (PluginContractError, message)
            raise PluginContractError(message)
        status.imported = True
        self._objects[key] = cls
        return cls

    def provided_by(self) -> dict[str, list[tuple[Kind, str]]]:
        """Plugin (status key) -> the (kind, name) pairs it provides, from the metadata and
        what hook plugins register; nothing is imported."""
        provided: dict[str, list[tuple[Kind, str]]] = {}
        for kind in KINDS:
            for name, keys in self._catalog[kind.name].items():
                for key in keys:
                    provided.setdefault(key, []).append((kind, name))
            for name, (_cls, plugins) in self.tables[kind.name].items():
                for key in plugins.split("\n"):
                    provided.setdefault(key, []).append((kind, name))
        return provided

    def check_all(self) -> None:
        """Import every class entry and check it against its Protocol (``modelfit plugins
        --check``); what fails is recorded in :attr:`statuses`, never raised."""
        for kind in KINDS:
            for name, keys in self._catalog[kind.name].items():
                if len(keys) == 1:
                    try:
                        self.lookup(kind.name, name)
                    except (PluginLoadError, DuplicatePluginError):
                        pass

    def provider(self, kind: str, name: str) -> str:
        """The plugin (entry-point or code-registered name) that registers ``name``."""
        self.lookup(kind, name)
        return self._providers(kind, name)[0]

    def _unknown_message(self, kind: Kind, name: str) -> str:
        installed = self.names(kind.name)
        lowered = {n.lower(): n for n in installed}
        close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.5)
        message = f"No {kind.singular} plugin named {name!r}."
        if close:
            message += f" Did you mean {lowered[close[0]]!r}?"
        message += f" Installed {kind.name}: {', '.join(installed) or '(none)'}."
        failed = [s for s in self.statuses.values() if not s.loaded]
        if failed:
            message += " Plugins that failed to load: " + "; ".join(
                f"{s.name} ({s.describe()})" for s in failed) + "."
        return message

    # -- Python names -------------------------------------------------------------------
    def class_names(self) -> list[str]:
        """Python names of the usable registered classes (from the metadata, for class
        entries), for ``from modelfit_core import *``."""
        statuses = self.statuses
        names = set()
        for kind in KIND_NAMES:
            for name, keys in self._catalog[kind].items():
                if len(keys) == 1 and statuses[keys[0]].loaded \
                        and self._entries[keys[0]].attribute:
                    names.add(self._entries[keys[0]].attribute.split(".")[-1])
            names |= {cls.__name__ for cls, _ in self.tables[kind].values()
                      if cls is not None and hasattr(cls, "__name__")}
        return sorted(names)

    def find_class(self, class_name: str) -> Any | None:
        """The registered class whose Python name is ``class_name`` (``'NevergradOptimizer'``),
        imported now; None if no plugin registers one."""
        for kind in KIND_NAMES:
            for name, keys in self._catalog[kind].items():
                attribute = self._entries[keys[0]].attribute or ""
                if attribute.split(".")[-1] == class_name:
                    return self.lookup(kind, name)
            for cls, _ in self.tables[kind].values():
                if getattr(cls, "__name__", None) == class_name:
                    return cls
        return None

    def export_names(self) -> list[str]:
        """Further names plugins offer to ``from modelfit_core import *`` (``modelfit.exports``)."""
        return sorted(self._exports)

    def find_export(self, name: str) -> Any | None:
        """The object exported as ``name``, imported now; None if there is none."""
        entry = self._exports.get(name)
        if entry is None:
            return None
        try:
            return entry.load()
        except ImportError as exc:
            raise PluginLoadError(f"{name!r} (from distribution {entry.distribution!r}) "
                                  f"cannot be imported: {exc}") from exc


def import_object(path: str) -> Any:
    """Import ``'package.module:attribute'`` (used by config files and the CLI)."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module
