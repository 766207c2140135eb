"""What a stored study records about its fit (resume must match it): the search
(model, optimizer, metric, bounds) and the data its errors were scored on."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from brian2 import Quantity, get_dimensions

from modelfit_core.contracts.units import unit_text
from modelfit_core.fitting.problem import FittingProblem
from modelfit_core.results.storage import StudyDescription
from modelfit_core.results.study_description import stable_repr


def describe_study(problem: FittingProblem, n_samples: int, *, optimizer, metric, space,
                   objective, optimizer_rounds: int = 1,
                   first_iteration: int = 0) -> StudyDescription:
    """The description of a fit of ``problem`` with ``n_samples`` requested per round
    by ``optimizer`` and ``metric`` over ``space`` (the optimizer initialized for
    ``optimizer_rounds``, the first round's ``iteration`` value ``first_iteration``)."""
    model = "\n".join([problem.model.text.strip(), f"threshold: {problem.threshold!r}",
                       f"reset: {problem.reset!r}", f"refractory: {problem.refractory!r}",
                       f"method: {problem.method!r}", f"penalty: {objective.penalty!r}",
                       f"initial values: {sorted(problem.param_init.items())!r}"])
    kind = type(optimizer)
    return StudyDescription(
        space=space, n_samples=n_samples, error_dim=objective.error_dim,
        output_names=tuple(problem.output_names), optimizer=stable_repr(optimizer),
        metric=stable_repr(metric), model=model,
        optimizer_class=f"{kind.__module__}.{kind.__qualname__}",
        seed=repr(getattr(optimizer, "seed", None)),
        optimizer_rounds=optimizer_rounds, first_iteration=first_iteration,
        objectives=tuple(getattr(objective, "objective_names", ())),
        data=data_identity(problem, objective))


def data_identity(problem: FittingProblem, objective) -> tuple[tuple[str, str], ...]:
    """Everything besides the model and the search that determines an error, as
    ``(label, text)`` pairs: each recording's shape and content hash (sha256 of its
    SI values), ``dt``, the values of the namespace's names the model uses, and each
    metric's ``t_start``, ``t_weights`` and ``normalization``.

    The namespace is resolved as the fit resolves it (the caller's names at
    creation, then now, then the explicit ``namespace``); names whose values are
    not numbers, quantities or arrays (functions, say) are left out.
    """
    recordings = problem.recordings
    pairs = [("dt", _value_text(problem.dt)),
             ("number of traces", str(recordings.n_traces))]
    for name, signal in recordings.inputs.items():
        pairs.append((f"input {name}", _array_text(signal.values)))
    for name, signal in recordings.traces.items():
        pairs.append((f"output {name}", _array_text(signal.values)))
    if recordings.spikes is not None:
        digest = hashlib.sha256()
        for train in recordings.spikes:
            digest.update(np.ascontiguousarray(train, dtype=float).tobytes() + b"|")
        pairs.append(("output spikes", f"{len(recordings.spikes)} trains, sha256 "
                                       f"{digest.hexdigest()[:16]}"))
    for name, value in sorted(problem.resolve_namespace().items()):
        text = _value_text(value)
        if text is not None:
            pairs.append((f"namespace {name}", text))
    for output, metric in getattr(objective, "metrics", {}).items():
        for option in ("t_start", "t_weights", "normalization"):
            value = getattr(metric, option, None)
            text = None if value is None else _value_text(value)
            if text is not None:
                pairs.append((f"{option} of the metric of {output}", text))
    return tuple(pairs)


def _array_text(values) -> str:
    array = np.ascontiguousarray(values, dtype=float)
    digest = hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()
    return f"{'x'.join(map(str, array.shape))} values, sha256 {digest[:16]}"


def _value_text(value: Any) -> str | None:
    """A number, quantity or array as comparable text (SI), or None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number, np.ndarray,
                                                          Quantity)):
        return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    unit = unit_text(get_dimensions(value))
    suffix = "" if unit == "1" else f" {unit}"
    if array.ndim == 0:
        return f"{float(array)!r}{suffix}"
    return _array_text(array) + suffix
