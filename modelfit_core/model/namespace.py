"""Finding the external constants a model refers to (``El``, ``Cm``, ...).

Like Brian's ``run()``, fitters look the names up in the caller's frame. Only
the names the model actually uses are kept, so the namespace stays small and
can be sent to other processes.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

from brian2.utils.stringtools import get_identifiers


def caller_namespace(level: int = 0) -> dict[str, Any]:
    """Globals and locals of the frame ``level`` frames above the caller's caller."""
    frame = sys._getframe(level + 2)
    namespace = dict(frame.f_globals)
    namespace.update(frame.f_locals)
    return namespace


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
