"""Ctrl-C held back while a round must happen whole.

Asking an optimizer for points, and telling-storing-recording a round, must
happen whole or not at all: a round half told to the optimizer, or in memory
but not on disk, could not be continued exactly. :func:`interrupts_deferred`
holds SIGINT back inside such a block; the fit re-raises it once the round is
complete everywhere.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class DeferredInterrupt:
    """Whether Ctrl-C came while it was held back (see :func:`interrupts_deferred`)."""

    def __init__(self):
        self.received = False

    def reraise(self) -> None:
        """Raise the KeyboardInterrupt that was held back, if any."""
        if self.received:
            self.received = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) back inside the block; yields a :class:`DeferredInterrupt`
    whose ``reraise()`` raises it once the caller is ready.

    Asking, and telling-storing-recording a round, must happen whole or not at
    all: a round half told to the optimizer, or in memory but not on disk, could
    not be continued exactly. Signals reach only the main thread; elsewhere
    (and where SIGINT is ignored or not handled by Python) nothing is held back.
    """
    deferred = DeferredInterrupt()
    previous = signal.getsignal(signal.SIGINT)
    # SIGINT ignored, left to the OS, or handled outside Python: nothing to hold back
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield deferred
        return

    def hold(signum, frame):
        deferred.received = True

    signal.signal(signal.SIGINT, hold)
    try:
        yield deferred
    finally:
        signal.signal(signal.SIGINT, previous)
