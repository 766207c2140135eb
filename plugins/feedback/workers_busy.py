"""How busy each worker of a distributed backend was, as a feedback shows it."""

from __future__ import annotations


def workers_busy(workers, round_seconds) -> str:
    """`` | workers busy 97% 95%``: each worker's share of the round spent simulating
    (nothing without workers)."""
    if not workers or not round_seconds:
        return ""
    shares = " ".join(f"{min(w.busy_s / round_seconds, 1.0):.0%}" for w in workers)
    return f" | workers busy {shares}"
