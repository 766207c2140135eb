"""The CPU cores this process may use, for the plugins that work on several at once
(parallel Cython builds, C++ standalone's OpenMP threads, eFEL's worker processes)."""

from __future__ import annotations

import os

__all__ = ["available_cores"]


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where there is one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
