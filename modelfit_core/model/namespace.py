"""Finding the external constants a model refers to (``El``, ``Cm``, ...).

Like Brian's ``run()``, fitters look the names up in the caller's frame. Only
the names the model actually uses are kept, so the namespace stays small and
can be sent to other processes.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

from brian2.utils.stringtools import get_identifiers


_OWN_PACKAGES = ("modelfit_core", "modelfit_plugins")


def _first_frame_outside_modelfit(frame):
    """The first frame from ``frame`` outwards whose module is not modelfit's (its core
    or its plugins), and its depth counted from ``frame`` as 1."""
    depth = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_OWN_PACKAGES):
        frame, depth = frame.f_back, depth + 1
    return frame, depth


def user_namespace(level: int = 0) -> dict[str, Any]:
    """Globals and locals of the user's frame: the first frame outside modelfit
    (its core and its plugins), then ``level`` frames further up.

    ``level`` is the argument of the manual's methods (``fit(level=1)`` from a
    helper function looks one frame above the helper).
    """
    frame, _ = _first_frame_outside_modelfit(sys._getframe(1))
    for _ in range(level):
        if frame is not None and frame.f_back is not None:
            frame = frame.f_back
    if frame is None:
        return {}
    namespace = dict(frame.f_globals)
    namespace.update(frame.f_locals)
    return namespace


def user_stacklevel() -> int:
    """The ``stacklevel`` of a warning issued here that points at the user's line: the
    first frame outside modelfit, however deep inside modelfit the warning is raised."""
    return _first_frame_outside_modelfit(sys._getframe(1))[1]


def identifiers_in(*codes: Any) -> set[str]:
    """Identifiers used in model strings (``None`` and non-strings are skipped)."""
    found: set[str] = set()
    for code in codes:
        if isinstance(code, str):
            found |= get_identifiers(code)
        elif isinstance(code, dict):
            found |= identifiers_in(*code.values())
    return found


def select(namespace: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The subset of ``namespace`` that the model refers to."""
    return {name: namespace[name] for name in names if name in namespace
            and not isinstance(namespace[name], type(sys))}
