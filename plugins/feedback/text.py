"""Feedback that prints the best parameters and error after each round."""

from __future__ import annotations

import sys

from .workers_busy import workers_busy


class TextFeedback:
    """Print ``Round N: best <params> with error <error>`` after each round."""

    def __init__(self, stream=None):
        self.stream = stream

    def __call__(self, params, errors, best_params, best_error, index, additional_info=None):
        stream = self.stream or sys.stdout
        described = (additional_info or {}).get("best_params_text")
        if described is None:
            described = ", ".join(f"{k}={v}" for k, v in best_params.items())
        info = additional_info or {}
        print(f"Round {index}: best {described} with error: {best_error}"
              f"{workers_busy(info.get('workers'), info.get('round_seconds'))}", file=stream)
        return False
