"""Hook plugins: objects with ``@hookimpl`` functions, registered with pluggy.

The ``modelfit`` entry-point group and ``Registry.register`` bring them. They
receive the lifecycle hooks, and their registration hooks may add classes
(made at run time) to the registry's names. One :class:`HookPlugins` (one
:class:`pluggy.PluginManager`) per registry.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

import pluggy

from modelfit_core.contracts import hookspecs
from modelfit_core.contracts.errors import PluginContractError
from modelfit_core.contracts.kinds import KINDS, PROJECT
from modelfit_core.registry.entry_points import PluginEntry, extra_for_missing
from modelfit_core.registry.lookup_errors import unusable_message
from modelfit_core.registry.plugin_status import CODE, PluginStatus

Tables = dict[str, dict[str, tuple[Any, str]]]
"""kind -> name -> (class, plugin); a name two plugins register has the class None
and the plugins joined by newlines."""


class HookPlugins:
    """The hook plugins of one registry and what their registration hooks provide."""

    def __init__(self):
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.problems: dict[str, list[str]] = {}
        """Plugin name -> problems found when it was registered (misspelt hooks)."""

    @property
    def hook(self):
        """The pluggy hook relay, for calling lifecycle hooks."""
        return self._pm.hook

    def load(self, entry: PluginEntry, status: PluginStatus) -> None:
        """Import an entry point of the ``modelfit`` group and register it; failures
        are recorded in ``status``, never raised."""
        status.loaded = False
        try:
            plugin = entry.load()
            self._pm.register(plugin, name=status.name)
        except ModuleNotFoundError as exc:
            status.error = str(exc)
            status.missing_package = (exc.name or "").split(".")[0] or None
            status.extra = extra_for_missing(entry, status.missing_package)
        except Exception as exc:  # a broken plugin must not break the others
            # (ImportError of a name inside an installed package lands here too,
            # and pluggy's PluginValidationError for a hook with wrong arguments)
            status.error = f"{type(exc).__name__}: {exc}"
        else:
            status.loaded = status.imported = True
            self._check_hook_names(plugin, status.name)

    def register(self, plugin: Any, name: str | None = None) -> PluginStatus:
        """Register an object with ``@hookimpl`` functions; its status."""
        self._pm.register(plugin, name=name)
        label = name or self._pm.get_name(plugin) or repr(plugin)
        self._check_hook_names(plugin, label)
        return PluginStatus(name=label, module=getattr(plugin, "__name__", repr(plugin)),
                            distribution=CODE, loaded=True, imported=True)

    def _check_hook_names(self, plugin: Any, name: str) -> None:
        """Record ``@hookimpl`` functions that match no modelfit hook (a typo such as
        ``modelfit_register_optimizer``): pluggy would silently never call them."""
        specs = [n for n in dir(hookspecs) if n.startswith(f"{PROJECT}_")]
        for caller in self._pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
            if impls and all(i.optionalhook for i in impls):
                continue
            close = difflib.get_close_matches(caller.name, specs, n=1)
            self.problems.setdefault(name, []).append(
                f"@hookimpl {caller.name}() matches no modelfit hook and would never be "
                f"called" + (f"; did you mean {close[0]}()?" if close else
                             f" (hooks: {', '.join(specs)})"))


    def tables(self, label: Callable[[str], str]) -> tuple[Tables, dict, dict[str, list[str]]]:
        """Ask every hook plugin what it registers: ``(tables, rejected, problems)``.

        A class lacking its Protocol's methods or a registration hook that
        raises is recorded (``rejected``: kind -> name -> (error type, message);
        ``problems``: plugin -> messages), never fatal; ``label(plugin)`` names a
        plugin in messages.
        """
        problems: dict[str, list[str]] = {n: list(p) for n, p in self.problems.items()}
        rejected: dict[str, dict[str, tuple[type, str]]] = {kind.name: {} for kind in KINDS}
        tables: Tables = {}
        for kind in KINDS:
            table: dict[str, tuple[Any, str]] = {}
            for impl in getattr(self._pm.hook, kind.hook).get_hookimpls():
                plugin = impl.plugin_name
                try:
                    provided = dict(impl.function() or {})
                except Exception as exc:
                    problems.setdefault(plugin, []).append(
                        f"{kind.hook}() failed: {type(exc).__name__}: {exc} "
                        f"(it must return a dict {{name: class}})")
                    continue
                for key, cls in provided.items():
                    problem = kind.problem_with(cls)
                    if problem is None and not isinstance(key, str):
                        problem = f"the name {key!r} is not a string"
                    if problem is not None:
                        message = unusable_message(kind, key, label(plugin), problem)
                        problems.setdefault(plugin, []).append(message)
                        rejected[kind.name][key] = (PluginContractError, message)
                        continue
                    if key in table and table[key][0] is not cls:
                        table[key] = (None, table[key][1] + "\n" + plugin)  # a duplicate
                    else:
                        table.setdefault(key, (cls, plugin))
            tables[kind.name] = table
        return tables, rejected, problems
