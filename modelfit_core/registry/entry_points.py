"""Reading the ``modelfit`` entry points and distribution metadata, importing nothing.

Entry-point groups (see CONTRIBUTING.md, "How plugins are found"):

* ``modelfit.<kind>`` (``modelfit.optimizers``, ``modelfit.metrics``, ...):
  ``name = "package.module:Class [extra]"``, one named class each. Listed and
  looked up without importing; the module is imported when the class is first
  used. ``[extra]`` names the distribution's extra that the class needs.
* ``modelfit.exports``: ``name = "package.module:object"``, further names
  that ``from modelfit_core import *`` offers (helper functions of plugins).
* ``modelfit``: hook plugins, modules with ``@hookimpl`` functions
  (lifecycle listeners, or registration hooks for classes made at run time).
  They are imported when a registry is built.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
from typing import Iterable, Iterator

import attrs

from modelfit_core.contracts.kinds import KINDS, PROJECT, Kind

DISTRIBUTION = "modelfit-brian2"
"""The distribution of modelfit's core and built-in plugins."""

HOOK_GROUP = PROJECT
EXPORTS_GROUP = f"{PROJECT}.exports"
SERVICES_GROUP = f"{PROJECT}.services"
"""Objects the core finds by name (e.g. the Brian network builders behind the manual's
``setup_neuron_group``), not offered to users as exports are."""
_KIND_OF_GROUP = {kind.entry_point_group: kind for kind in KINDS}

DISABLE_ENV_VAR = "MODELFIT_DISABLE_PLUGINS"
"""Comma-separated entry-point or distribution names that are never loaded."""


@attrs.frozen
class PluginEntry:
    """One entry point of a ``modelfit`` group, as read from the metadata."""

    entry_point: importlib.metadata.EntryPoint
    distribution: str

    @property
    def name(self) -> str:
        return self.entry_point.name

    @property
    def group(self) -> str:
        return self.entry_point.group

    @property
    def kind(self) -> Kind | None:
        """The kind of a class entry; None for hook plugins and exports."""
        return _KIND_OF_GROUP.get(self.group)

    @property
    def module(self) -> str:
        return self.entry_point.module

    @property
    def attribute(self) -> str | None:
        """The object's name in its module (a class name for class entries)."""
        return self.entry_point.attr

    @property
    def extras(self) -> tuple[str, ...]:
        return tuple(self.entry_point.extras)

    def load(self):
        """Import the module and return the object (this is where the import happens)."""
        return self.entry_point.load()


def read_entries(disabled: Iterable[str] = (),
                 distributions: Iterable[str] | None = None) -> list[PluginEntry]:
    """Every entry point of the ``modelfit`` groups, modelfit's own first.

    ``disabled`` holds entry-point or distribution names to leave out;
    ``distributions``, if given, the only distributions to read.
    """
    disabled = set(disabled)
    wanted = set(distributions) if distributions is not None else None
    entries = [PluginEntry(ep, dist) for dist, eps in _scan(tuple(sys.path))
               if dist not in disabled and (wanted is None or dist in wanted)
               for ep in eps if ep.name not in disabled]
    # the built-ins first: they keep their plain names when another distribution clashes
    return sorted(entries, key=lambda e: e.distribution != DISTRIBUTION)


@functools.lru_cache(maxsize=4)
def _scan(path: tuple[str, ...]) -> tuple[tuple[str, tuple], ...]:
    """``(distribution, its modelfit entry points)`` of every installed distribution
    with some, read once per process (and again when ``sys.path``, given as
    ``path``, changes): scanning every distribution's metadata is what a registry
    costs."""
    groups = {HOOK_GROUP, EXPORTS_GROUP, SERVICES_GROUP, *_KIND_OF_GROUP}
    found = []
    for distribution in importlib.metadata.distributions(path=list(path)):
        ours = tuple(ep for ep in distribution.entry_points if ep.group in groups)
        if ours:  # most distributions: their name (a METADATA parse) is not needed
            found.append((distribution.name, ours))
    return tuple(found)


def scan_entry_points() -> tuple[tuple[str, tuple], ...]:
    """``(distribution, its modelfit entry points)`` of every installed distribution
    with some (read once per process)."""
    return _scan(tuple(sys.path))


def kind_of_group(group: str) -> Kind | None:
    """The plugin kind whose entry-point group is ``group`` (None for the others)."""
    return _KIND_OF_GROUP.get(group)


def disabled_from_env() -> set[str]:
    """The names listed in ``MODELFIT_DISABLE_PLUGINS``."""
    value = os.environ.get(DISABLE_ENV_VAR, "")
    return {part.strip() for part in value.split(",") if part.strip()}


def keyed_entries(entries: Iterable[PluginEntry]) -> Iterator[tuple[str, PluginEntry]]:
    """Each entry once, with the name a registry knows its plugin by.

    A distribution found twice on sys.path is read once. The name is the entry
    point's, or ``dist:name`` (then ``dist:group:name``) when an earlier entry
    has taken it; exports keep their plain name and take none (they have no status).
    """
    seen, taken = set(), set()
    for entry in entries:
        identity = (entry.distribution, entry.group, entry.name)
        if identity in seen:
            continue
        seen.add(identity)
        if entry.group in (EXPORTS_GROUP, SERVICES_GROUP):
            yield entry.name, entry
            continue
        key = next(key for key in (entry.name, f"{entry.distribution}:{entry.name}",
                                   f"{entry.distribution}:{entry.group}:{entry.name}")
                   if key not in taken)
        taken.add(key)
        yield key, entry


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0].split("[")[0]
    for separator in "<>=!~ (":
        name = name.split(separator)[0]
    return name.strip()


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def extra_requirements(entry: PluginEntry) -> dict[str, list[str]]:
    """Requirement names of each extra the entry needs: its ``[extras]``, or an extra
    named like the entry point (``efel`` for the entry point ``efel``)."""
    dist = getattr(entry.entry_point, "dist", None)
    if dist is None:
        return {}
    provided = dist.metadata.get_all("Provides-Extra") or []
    extras = [e for e in entry.extras if e in provided] or \
        ([entry.name] if entry.name in provided else [])
    needs: dict[str, list[str]] = {extra: [] for extra in extras}
    for requirement in dist.requires or []:
        _, _, marker = requirement.partition(";")
        for extra in extras:
            if "extra" in marker and (f'"{extra}"' in marker or f"'{extra}'" in marker):
                needs[extra].append(_requirement_name(requirement))
    return needs


def base_requirements(entry: PluginEntry) -> list[str]:
    """Names of what the entry's distribution requires without a condition."""
    dist = getattr(entry.entry_point, "dist", None)
    return [_requirement_name(r) for r in (dist.requires or []) if ";" not in r] \
        if dist is not None else []


def missing_requirement(entry: PluginEntry,
                        known: dict[str, bool] | None = None) -> tuple[str, str | None] | None:
    """``(package, extra)`` of the first requirement of the entry (its distribution's
    own requirements, then its extras') that is not installed, according to the
    distributions' metadata; None if all are. ``extra`` is None for a requirement
    of the distribution itself. ``known`` caches what is installed across calls."""
    known = {} if known is None else known
    needs = {None: base_requirements(entry), **extra_requirements(entry)}
    for extra, names in needs.items():
        for name in names:
            key = _normalized(name)
            if key == _normalized(entry.distribution):
                continue
            if key not in known:
                known[key] = _installed(name)
            if not known[key]:
                return name, extra
    return None


def extra_for_missing(entry: PluginEntry, missing_package: str | None) -> str | None:
    """The extra of the entry's distribution that brings ``missing_package`` (an import
    name, e.g. ``efel``), found in the distribution's metadata."""
    needs = extra_requirements(entry)
    if needs and missing_package is None:
        return next(iter(needs))
    dist = getattr(entry.entry_point, "dist", None)
    if dist is None or missing_package is None:
        return None
    wanted = _normalized(missing_package)
    for requirement in dist.requires or []:
        _, _, marker = requirement.partition(";")
        if _normalized(_requirement_name(requirement)) == wanted and "extra ==" in marker:
            return marker.split("extra ==")[1].strip().strip("'\"")
    return next(iter(needs), None)


def install_hint(distribution: str, extra: str | None, package: str | None) -> str:
    """``pip install 'dist[extra]'``, or ``pip install package`` when no extra brings it."""
    if extra:
        return f"pip install '{distribution}[{extra}]'"
    return f"pip install {package}" if package else f"pip install {distribution}"
