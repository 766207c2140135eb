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

import contextlib
import difflib
import importlib
import warnings
from typing import Any, Iterable

from modelfit_core.contracts.errors import (DuplicatePluginError, PluginContractError,
                                            PluginLoadError, UnknownPluginError)
from modelfit_core.contracts.kinds import KIND_NAMES, KINDS, Kind
from modelfit_core.registry.entry_points import (EXPORTS_GROUP, HOOK_GROUP, SERVICES_GROUP,
                                                 kind_of_group, scan_entry_points,
                                                 PluginEntry,
                                                 disabled_from_env, keyed_entries,
                                                 read_entries)
from modelfit_core.registry.hook_plugins import HookPlugins, Tables
from modelfit_core.registry.lookup_errors import (checked_kind, duplicate_message,
                                                  import_class, unknown_message)
from modelfit_core.registry.plugin_status import (PluginStatus, entry_status,
                                                  mark_hook_problems, mark_missing_requirements,
                                                  provided_by, providers, record_problem)
from modelfit_core.registry.python_names import class_names, find_class, find_export

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
        self._services: dict[str, PluginEntry] = {}
        self._objects: dict[str, Any] = {}
        self._tables: Tables | None = None
        self._rejected: dict[str, dict[str, tuple[type, str]]] = {}
        self._requirements_checked = False
        self._disabled: dict[tuple[str, str], str] = {}  # (kind, name) -> what disabled it
        if load_entrypoints:
            disabled = set(disable) | disabled_from_env()
            self._read(disabled, distributions)
            self._note_disabled(disabled)
        for plugin in plugins:
            self.register(plugin)

    # -- reading the entry points ------------------------------------------------------
    def _read(self, disabled: set[str], distributions) -> None:
        for key, entry in keyed_entries(read_entries(disabled, distributions)):
            if entry.group == EXPORTS_GROUP:
                self._exports.setdefault(entry.name, entry)
                continue
            if entry.group == SERVICES_GROUP:
                self._services.setdefault(entry.name, entry)
                continue
            status = self._statuses[key] = entry_status(key, entry)
            if entry.group == HOOK_GROUP:
                self._hooks.load(entry, status)
                self._tables = None
            elif entry.kind is not None:  # a class entry (the group of a kind)
                self._entries[key] = entry
                self._catalog[entry.kind.name].setdefault(entry.name, []).append(key)

    def _note_disabled(self, disabled: set[str]) -> None:
        """Remember what ``disabled`` left out (a lookup then says so), and warn about
        names that match no installed distribution or entry point (a typo disables
        nothing)."""
        if not disabled:
            return
        known: set[str] = set()
        for distribution, entry_points in scan_entry_points():
            known.add(distribution)
            for entry_point in entry_points:
                known.add(entry_point.name)
                kind = kind_of_group(entry_point.group)
                if kind is not None and (distribution in disabled
                                         or entry_point.name in disabled):
                    why = distribution if distribution in disabled else entry_point.name
                    self._disabled.setdefault((kind.name, entry_point.name), why)
        for name in sorted(disabled - known):
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            warnings.warn(f"disable_plugins names {name!r}, which is no installed plugin "
                          f"distribution or entry point, so it disables nothing.{hint} "
                          f"'modelfit plugins' lists them.", UserWarning, stacklevel=4)

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
            mark_hook_problems(self._statuses, problems)
            self._mark_duplicates()
        return self._tables

    # -- providers and duplicates -------------------------------------------------------
    def _providers(self, kind: str, name: str) -> list[str]:
        """Status keys of every plugin providing ``name`` for ``kind``."""
        return providers(self._catalog, self.tables, kind, name)

    def _mark_duplicates(self) -> None:
        """A name two plugins provide is rejected, and both plugins have the problem."""
        for kind in KINDS:
            for name in set(self._catalog[kind.name]) | set(self.tables[kind.name]):
                keys = self._providers(kind.name, name)
                if len(keys) > 1:
                    message = duplicate_message(kind, name, keys, self._label)
                    self._rejected[kind.name][name] = (DuplicatePluginError, message)
                    record_problem(self._statuses, keys, message)

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
            mark_missing_requirements(self._entries, self._statuses)
        return self._statuses

    # -- lookup -------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind`` (one of ``optimizers``, ``metrics``,
        ``backends``, ``feedback``, ``inference``, ``dashboards``); no plugin is imported."""
        checked_kind(kind)
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
        found = checked_kind(kind)
        keys = self._providers(kind, name)
        if name in self._rejected.get(kind, {}):
            error, message = self._rejected[kind][name]
            raise error(message)
        if not keys:
            why = self._disabled.get((found.name, name))
            if why is not None:
                raise UnknownPluginError(
                    f"The {found.singular} plugin {name!r} is installed but disabled (by "
                    f"{why!r} in disable_plugins or MODELFIT_DISABLE_PLUGINS). Remove it "
                    f"from there to use it, or choose another: "
                    f"{', '.join(self.names(kind)) or '(none)'}.")
            raise UnknownPluginError(unknown_message(found, name, self.names(kind),
                                                     self.statuses.values()))
        key = keys[0]
        if key in self._entries:
            return self._load(found, name, key)
        return self.tables[kind][name][0]

    def _load(self, kind: Kind, name: str, key: str) -> Any:
        """The class of a class entry, imported and checked once; a class that fails
        its Protocol stays rejected for later lookups."""
        if key not in self._objects:
            try:
                self._objects[key] = import_class(kind, name, self._entries[key],
                                                  self._statuses[key])
            except PluginContractError as exc:
                self._rejected[kind.name][name] = (PluginContractError, str(exc))
                raise
        return self._objects[key]

    def provided_by(self) -> dict[str, list[tuple[Kind, str]]]:
        """Plugin (status key) -> the (kind, name) pairs it provides, from the metadata and
        what hook plugins register; nothing is imported."""
        return provided_by(self._catalog, self.tables)

    def check_all(self) -> None:
        """Import every class entry and check it against its Protocol (``modelfit plugins
        --check``); what fails is recorded in :attr:`statuses`, never raised."""
        for kind in KINDS:
            for name, keys in self._catalog[kind.name].items():
                if len(keys) == 1:
                    with contextlib.suppress(PluginLoadError, DuplicatePluginError):
                        self.lookup(kind.name, name)

    def provider(self, kind: str, name: str) -> str:
        """The plugin (entry-point or code-registered name) that registers ``name``."""
        self.lookup(kind, name)
        return self._providers(kind, name)[0]

    # -- Python names (modelfit_core.__init__ and compat resolve names through these) ---
    def class_names(self) -> list[str]:
        """Python names of the usable registered classes (from the metadata, for class
        entries), for ``from modelfit_core import *``."""
        return class_names(self._catalog, self._entries, self.statuses, self.tables)

    def find_class(self, class_name: str) -> Any | None:
        """The registered class whose Python name is ``class_name`` (``'NevergradOptimizer'``),
        imported now; None if no plugin registers one."""
        return find_class(class_name, self._catalog, self._entries, lambda: self.tables,
                          self.lookup)

    def export_names(self) -> list[str]:
        """Further names plugins offer to ``from modelfit_core import *`` (``modelfit.exports``)."""
        return sorted(self._exports)

    def find_export(self, name: str) -> Any | None:
        """The object exported as ``name``, imported now; None if there is none."""
        return find_export(self._exports, name)

    def find_service(self, name: str) -> Any | None:
        """The object a plugin offers the core as ``name`` (``modelfit.services``),
        imported now; None if there is none."""
        return find_export(self._services, name)


_shared: Registry | None = None


def shared_registry() -> Registry:
    """The process's registry: behind ``modelfit_core``'s names, the compat modules and
    every fitter or Pipeline that does not bring a registry (or options) of its own.
    Made on first use; the installed distributions are scanned once per process."""
    global _shared
    if _shared is None:
        _shared = Registry()
    return _shared


def forget_shared_registry() -> None:
    """Make the next :func:`shared_registry` read the entry points again (after
    installing a plugin into a running process, or changing
    ``MODELFIT_DISABLE_PLUGINS``)."""
    global _shared
    _shared = None


def import_object(path: str) -> Any:
    """Import ``'package.module:attribute'`` (used by config files and the CLI)."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module
