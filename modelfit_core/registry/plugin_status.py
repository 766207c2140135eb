"""What is known of each plugin: loaded, failed (and why), imported or not."""

from __future__ import annotations

from typing import Mapping

import attrs

from modelfit_core.contracts.kinds import KINDS, Kind
from modelfit_core.registry.entry_points import PluginEntry, install_hint, missing_requirement

CODE = "(registered in code)"
"""The distribution of plugins registered in code (``Registry.register``)."""


@attrs.define
class PluginStatus:
    """What is known of one entry point (or plugin registered in code)."""

    name: str
    module: str
    distribution: str
    loaded: bool
    """Usable as far as is known: imported and checked, or (for a class entry not
    imported yet) its requirements are installed."""
    imported: bool = False
    kind: str | None = None
    """The kind of a class entry; None for hook plugins."""
    error: str | None = None
    missing_package: str | None = None
    extra: str | None = None
    problems: list[str] = attrs.field(factory=list)
    """What is wrong with what the plugin registers (a class lacking its Protocol's
    methods, a name another plugin registers too, a misspelt hook); a plugin with
    problems is not ``loaded``, though its other names stay usable."""

    def describe(self) -> str:
        if self.loaded:
            return "ok" if self.imported or self.kind is None else "ok (imported when used)"
        if self.missing_package:
            hint = install_hint(self.distribution, self.extra, self.missing_package)
            return f"not loaded: missing package {self.missing_package!r} ({hint})"
        if self.error is None and self.problems:
            return "; ".join(self.problems)
        return f"not loaded: {self.error}"

    @property
    def label(self) -> str:
        """``'name' (distribution 'dist')``, for messages."""
        if self.distribution == CODE:
            return f"{self.name!r} {CODE}"
        return f"{self.name!r} (distribution {self.distribution!r})"


def entry_status(key: str, entry: PluginEntry) -> PluginStatus:
    """The status of an entry point just read: loaded as far as is known."""
    return PluginStatus(name=key, module=entry.module, distribution=entry.distribution,
                        loaded=True, kind=entry.kind.name if entry.kind else None)


def mark_hook_problems(statuses: Mapping[str, PluginStatus],
                       problems: Mapping[str, list[str]]) -> None:
    """Imported hook plugins have the problems their registration hooks showed (and
    are ``loaded`` when they have none): asked anew whenever the tables are made."""
    for name, status in statuses.items():
        if status.kind is None and status.imported:
            status.problems = problems.get(name, [])
            status.loaded = not status.problems


def mark_missing_requirements(entries: Mapping[str, PluginEntry],
                              statuses: Mapping[str, PluginStatus]) -> None:
    """Class entries not imported yet whose requirements the metadata says are not
    installed are not ``loaded`` (with the package and the extra that brings it)."""
    installed: dict[str, bool] = {}
    for key, entry in entries.items():
        missing = missing_requirement(entry, installed)
        if missing is not None and not statuses[key].imported:
            status = statuses[key]
            status.loaded = False
            status.missing_package, status.extra = missing


def record_problem(statuses: Mapping[str, PluginStatus], keys: list[str], message: str) -> None:
    """Each of these plugins has a problem (once) and is not ``loaded``."""
    for key in keys:
        status = statuses[key]
        if message not in status.problems:
            status.problems.append(message)
        status.loaded = False


def providers(catalog: Mapping[str, Mapping[str, list[str]]], tables: Mapping,
              kind: str, name: str) -> list[str]:
    """Status keys of every plugin providing ``name`` for ``kind``: class entries
    first, then the hook plugins that register it (joined by newlines in ``tables``)."""
    keys = list(catalog[kind].get(name, []))
    claimed = tables[kind].get(name)
    if claimed is not None:
        keys += claimed[1].split("\n")
    return keys


def provided_by(catalog: Mapping[str, Mapping[str, list[str]]],
                tables: Mapping) -> dict[str, list[tuple[Kind, str]]]:
    """Plugin (status key) -> the (kind, name) pairs it provides: class entries from
    the ``catalog`` (kind -> name -> keys), classes from the hook plugins' ``tables``
    (kind -> name -> (class, plugins joined by newlines))."""
    provided: dict[str, list[tuple[Kind, str]]] = {}
    for kind in KINDS:
        for name, keys in catalog[kind.name].items():
            for key in keys:
                provided.setdefault(key, []).append((kind, name))
        for name, (_cls, plugins) in tables[kind.name].items():
            for key in plugins.split("\n"):
                provided.setdefault(key, []).append((kind, name))
    return provided
