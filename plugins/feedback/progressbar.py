"""Feedback as a tqdm progress bar with the best error so far."""

from __future__ import annotations

from .workers_busy import workers_busy


class ProgressBarFeedback:
    """A tqdm bar over the rounds of a fit, showing the best error and, on a backend
    spread over workers, how busy each worker was in the last round."""

    def __init__(self, **tqdm_options):
        self.tqdm_options = tqdm_options
        self._bar = None

    def start(self, n_rounds: int) -> None:
        from tqdm.auto import tqdm
        options = {"desc": "fitting", "unit": "round", **self.tqdm_options}
        self._bar = tqdm(total=n_rounds, **options)

    def __call__(self, params, errors, best_params, best_error, index, additional_info=None):
        if self._bar is None:
            self.start(n_rounds=None)
        info = additional_info or {}
        self._bar.set_postfix_str(f"best error {best_error}"
                                  f"{workers_busy(info.get('workers'), info.get('round_seconds'))}",
                                  refresh=False)
        self._bar.update(1)
        return False

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
