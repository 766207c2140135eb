"""What a failed lookup says: unknown kinds and names, names registered twice,
classes that cannot be imported or lack the methods of their kind's Protocol.

Plain functions over what :class:`~.plugin_registry.Registry` knows, so that
the registry keeps only the bookkeeping and every message is written once
(hook plugins' classes are reported with the same words, see :mod:`.hook_plugins`).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable

from modelfit_core.contracts.errors import (PluginContractError, PluginLoadError,
                                            UnknownPluginError)
from modelfit_core.contracts.kinds import KIND_NAMES, Kind, kind_named
from modelfit_core.registry.entry_points import (DISABLE_ENV_VAR, PluginEntry,
                                                 extra_for_missing, missing_requirement)
from modelfit_core.registry.plugin_status import PluginStatus


def checked_kind(kind: str) -> Kind:
    """The kind named ``kind``; an unknown kind is an UnknownPluginError listing the kinds."""
    found = kind_named(kind)
    if found is None:
        raise UnknownPluginError(f"Unknown plugin kind {kind!r}; kinds are "
                                 f"{', '.join(KIND_NAMES)}.")
    return found


def unknown_message(kind: Kind, name: str, installed: list[str],
                    statuses: Iterable[PluginStatus]) -> str:
    """No plugin named ``name``: the closest installed name, all of them, and the
    plugins that failed to load (the name may be theirs)."""
    lowered = {n.lower(): n for n in installed}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.5)
    message = f"No {kind.singular} plugin named {name!r}."
    if close:
        message += f" Did you mean {lowered[close[0]]!r}?"
    message += f" Installed {kind.name}: {', '.join(installed) or '(none)'}."
    failed = [s for s in statuses if not s.loaded]
    if failed:
        message += " Plugins that failed to load: " + "; ".join(
            f"{s.name} ({s.describe()})" for s in failed) + "."
    return message


def duplicate_message(kind: Kind, name: str, keys: list[str],
                      label: Callable[[str], str]) -> str:
    """Two plugins register ``name``: both named (``label(key)``), and how to disable one."""
    return (f"Two plugins register the {kind.singular} name {name!r}: "
            f"{' and '.join(label(k) for k in keys)}. Disable one with "
            f"{DISABLE_ENV_VAR}={keys[-1]} or Registry(disable=[...]), or rename it.")


def unusable_message(kind: Kind, name: Any, plugin_label: str, problem: str) -> str:
    """A class registered as ``name`` fails its kind's Protocol check (``problem``)."""
    return (f"The {kind.singular} {name!r} registered by plugin {plugin_label} "
            f"is unusable: {problem}.")


def import_class(kind: Kind, name: str, entry: PluginEntry, status: PluginStatus) -> Any:
    """Import a class entry and check it against its kind's Protocol.

    Why it fails is recorded in ``status`` (``modelfit plugins`` prints it) and
    raised: PluginLoadError (a missing extra is named, from the metadata first,
    then from the import error) or PluginContractError.
    """
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
        message = unusable_message(kind, name, status.label, problem)
        status.loaded = False
        status.problems.append(message)
        raise PluginContractError(message)
    status.imported = True
    return cls
