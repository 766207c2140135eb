"""Discovery and lookup of plugins through the ``modelfit`` entry-point group.

A :class:`Registry` wraps one :class:`pluggy.PluginManager`. Each Pipeline
owns one, so two differently configured pipelines can live side by side.
Built-in plugins are found through the same entry points as third-party
ones: this module never imports a plugin by name.

A broken plugin never stops the others: an import that fails, a registered
class lacking the methods of its Protocol (:data:`PROTOCOL_METHODS`), a name
registered by two plugins, a misspelt hook or a registration hook that raises
is recorded in :attr:`Registry.statuses` (``modelfit plugins`` prints it) with
the plugin and its distribution, and looking up the affected name raises.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
from typing import Any, Iterable

import attrs
import pluggy

from modelfit_core.contracts import hookspecs
from modelfit_core.contracts.kinds import KIND_NAMES, KINDS, PROJECT, kind_named
from modelfit_core.contracts.errors import (DuplicatePluginError, PluginContractError,  # noqa: F401
                                  PluginLoadError, UnknownPluginError)


ENTRY_POINT_GROUP = PROJECT
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
    problems: list[str] = attrs.field(factory=list)
    """What is wrong with what the plugin registers (a class lacking its Protocol's
    methods, a name another plugin registers too, a misspelt hook); a plugin with
    problems is not ``loaded``, though its other names stay usable."""

    def describe(self) -> str:
        if self.loaded:
            return "ok"
        if self.missing_package:
            hint = f"pip install 'modelfit[{self.extra}]'" if self.extra else \
                f"pip install {self.missing_package}"
            return f"not loaded: missing package {self.missing_package!r} ({hint})"
        if self.error is None and self.problems:
            return "; ".join(self.problems)
        return f"not loaded: {self.error}"

    @property
    def label(self) -> str:
        """``'name' (distribution 'dist')``, for messages."""
        if self.distribution == "(registered in code)":
            return f"{self.name!r} (registered in code)"
        return f"{self.name!r} (distribution {self.distribution!r})"


SINGULAR = {kind.name: kind.singular for kind in KINDS}


def protocol_problem(kind: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be registered for ``kind``, or None (see :meth:`Kind.problem_with`)."""
    return kind_named(kind).problem_with(obj)


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


BUILT_IN_DISTRIBUTION = "modelfit"


def _dist_name(ep) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


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
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._statuses: dict[str, PluginStatus] = {}
        self._load_problems: dict[str, list[str]] = {}
        self._tables: dict[str, dict[str, tuple[type, str]]] | None = None
        self._rejected: dict[str, dict[str, tuple[type, str]]] = {}
        disabled = set(disable) | _disabled_from_env()
        if load_entrypoints:
            wanted = set(distributions) if distributions is not None else None
            self._load_entrypoints(disabled, wanted)
        for plugin in plugins:
            self.register(plugin)

    # -- loading -------------------------------------------------------------
    def _load_entrypoints(self, disabled: set[str], wanted: set[str] | None) -> None:
        entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                              key=lambda ep: _dist_name(ep) != BUILT_IN_DISTRIBUTION)
        for ep in entry_points:  # the built-ins first: they keep their plain names
            dist = _dist_name(ep)
            if ep.name in disabled or dist in disabled:
                continue
            if wanted is not None and dist not in wanted:
                continue
            key = ep.name
            if key in self._statuses:
                if self._statuses[key].distribution == dist:
                    continue  # the same distribution seen twice on sys.path
                # another distribution's plugin of the same name: loaded under
                # 'distribution:name'; what it registers is checked like any other
                key = f"{dist}:{ep.name}"
                if key in self._statuses:
                    continue
            status = PluginStatus(name=key, module=ep.value, distribution=dist,
                                  loaded=False)
            try:
                plugin = ep.load()
                self._pm.register(plugin, name=key)
            except ModuleNotFoundError as exc:
                status.error = str(exc)
                status.missing_package = (exc.name or "").split(".")[0] or None
                status.extra = _extra_for(ep, status.missing_package)
            except Exception as exc:  # a broken plugin must not break the others
                # (ImportError of a name inside an installed package lands here too,
                # and pluggy's PluginValidationError for a hook with wrong arguments)
                status.error = f"{type(exc).__name__}: {exc}"
            else:
                status.loaded = True
                self._check_hook_names(plugin, key)
            self._statuses[key] = status
        self._tables = None

    def _check_hook_names(self, plugin: Any, name: str) -> None:
        """Record ``@hookimpl`` functions that match no modelfit hook (a typo such as
        ``modelfit_register_optimizer``): pluggy would silently never call them."""
        specs = [n for n in dir(hookspecs) if n.startswith("modelfit_")]
        for caller in self._pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
            if impls and all(i.optionalhook for i in impls):
                continue
            close = difflib.get_close_matches(caller.name, specs, n=1)
            self._load_problems.setdefault(name, []).append(
                f"@hookimpl {caller.name}() matches no modelfit hook and would never be "
                f"called" + (f"; did you mean {close[0]}()?" if close else
                             f" (hooks: {', '.join(specs)})"))

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register a plugin object (a module or any object with hook functions)."""
        self._pm.register(plugin, name=name)
        label = name or self._pm.get_name(plugin)
        self._statuses[label] = PluginStatus(
            name=label, module=getattr(plugin, "__name__", repr(plugin)),
            distribution="(registered in code)", loaded=True)
        self._check_hook_names(plugin, label)
        self._tables = None

    @property
    def statuses(self) -> dict[str, PluginStatus]:
        """Entry-point (or code-registered) plugin name -> :class:`PluginStatus`.

        Up to date with what the plugins register: classes lacking their
        Protocol's methods and names registered twice are listed in the
        statuses' ``problems``.
        """
        self.tables  # noqa: B018 - registering is what finds the problems
        return self._statuses

    @property
    def hook(self):
        """The pluggy hook relay, for calling lifecycle hooks."""
        return self._pm.hook

    # -- lookup --------------------------------------------------------------
    def _build_tables(self) -> dict[str, dict[str, tuple[type, str]]]:
        """Ask every plugin what it registers. A class lacking its Protocol's methods,
        a name registered by two plugins, or a registration hook that raises is
        recorded (in ``statuses`` and for :meth:`lookup`), never fatal to the others."""
        problems: dict[str, list[str]] = {n: list(p) for n, p in self._load_problems.items()}
        self._rejected = {kind: {} for kind in KIND_NAMES}
        tables: dict[str, dict[str, tuple[type, str]]] = {}
        for kind in KIND_NAMES:
            claims: dict[str, list[tuple[Any, str]]] = {}
            caller = getattr(self._pm.hook, f"modelfit_register_{kind}")
            for impl in caller.get_hookimpls():
                plugin = impl.plugin_name
                try:
                    provided = dict(impl.function() or {})
                except Exception as exc:
                    problems.setdefault(plugin, []).append(
                        f"modelfit_register_{kind}() failed: {type(exc).__name__}: {exc} "
                        f"(it must return a dict {{name: class}})")
                    continue
                for key, cls in provided.items():
                    problem = protocol_problem(kind, cls)
                    if problem is None and not isinstance(key, str):
                        problem = f"the name {key!r} is not a string"
                    if problem is not None:
                        message = (f"The {SINGULAR[kind]} {key!r} registered by plugin "
                                   f"{self._label(plugin)} is unusable: {problem}.")
                        problems.setdefault(plugin, []).append(message)
                        self._rejected[kind][key] = (PluginContractError, message)
                        continue
                    providers = claims.setdefault(key, [])
                    if not any(cls is c for c, _ in providers):
                        providers.append((cls, plugin))
            table: dict[str, tuple[type, str]] = {}
            for key, providers in claims.items():
                if len(providers) == 1:
                    table[key] = providers[0]
                    self._rejected[kind].pop(key, None)
                    continue
                plugins = [plugin for _, plugin in providers]
                message = (f"Two plugins register the {SINGULAR[kind]} name {key!r}: "
                           f"{' and '.join(self._label(p) for p in plugins)}. Disable one "
                           f"with {DISABLE_ENV_VAR}={plugins[-1]} or Registry(disable=[...]), "
                           f"or rename it.")
                self._rejected[kind][key] = (DuplicatePluginError, message)
                for plugin in plugins:
                    problems.setdefault(plugin, []).append(message)
            tables[kind] = table
        for name, status in self._statuses.items():
            if status.problems or name in problems:  # imported, so loaded unless problems
                status.problems = problems.get(name, [])
                status.loaded = not status.problems
        return tables

    def _label(self, plugin: str) -> str:
        status = self._statuses.get(plugin)
        return status.label if status is not None else repr(plugin)

    @property
    def tables(self) -> dict[str, dict[str, tuple[type, str]]]:
        if self._tables is None:
            self._tables = self._build_tables()
        return self._tables

    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind`` (one of ``KIND_NAMES``)."""
        return sorted(self.tables[kind])

    def lookup(self, kind: str, name: str) -> type:
        """Return the class registered as ``name`` for ``kind``.

        Raises
        ------
        UnknownPluginError
            With the installed names, the closest match, and plugins of that
            kind that failed to load.
        DuplicatePluginError
            Two plugins register ``name``; both are named, with their distributions.
        PluginContractError
            The class registered as ``name`` lacks methods of its Protocol.
        """
        if kind not in KIND_NAMES:
            raise UnknownPluginError(f"Unknown plugin kind {kind!r}; kinds are "
                                     f"{', '.join(KIND_NAMES)}.")
        table = self.tables[kind]
        if name in table:
            return table[name][0]
        if name in self._rejected.get(kind, {}):
            error, message = self._rejected[kind][name]
            raise error(message)
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
        failed = [s for s in self._statuses.values() if not s.loaded]
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
