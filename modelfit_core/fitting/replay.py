"""Rebuilding an optimizer from the rounds it produced, without unpickling anything.

A resumed fit gets the optimizer the original fit was given (same class,
options and seed: the user passes it again, as they must anyway), initializes
it exactly as the original fit did, then replays every stored round: ask for
``n_samples`` points, check that they are the stored ones, tell the stored
errors as the loop told them. A deterministic optimizer is then in the very
state it had after the last stored round, so the resumed fit continues exactly
as an uninterrupted one. One that proposes other points cannot be replayed;
the error says so, and how to opt into pickling instead.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, StorageError
from modelfit_core.contracts.protocols import GradientOptimizer
from modelfit_core.model.parameters import ParameterSpace


def initialize_optimizer(optimizer, space: ParameterSpace, n_samples: int, rounds: int) -> int:
    """``optimizer.initialize`` as every fit calls it (a replay must call it identically).

    Returns the population size the optimizer says it will use (the manual's
    contract: "does not always correspond to popsize"), or ``n_samples`` when it
    says nothing usable.
    """
    used = optimizer.initialize(list(space.names), popsize=n_samples, rounds=rounds,
                                **space.bounds_dict())
    if isinstance(used, (int, np.integer)) and not isinstance(used, bool) and used >= 1:
        return int(used)
    return n_samples


@attrs.frozen
class AskedPoints:
    """What an optimizer's ``ask`` returned, and the same points as an SI matrix."""

    as_given: list
    """Told back to the optimizer as they were asked (vectors, or parameter dicts)."""
    matrix: np.ndarray
    """(n_samples, n_parameters), ordered as the parameter space."""


def _vector(point, space: ParameterSpace) -> np.ndarray:
    if isinstance(point, Mapping):  # brian2modelfitting's optimizers may ask dicts
        missing = [n for n in space.names if n not in point]
        if missing:
            raise ConfigurationError(f"The optimizer asked a parameter dict without "
                                     f"{', '.join(map(repr, missing))}; it must give every "
                                     f"fitted parameter ({', '.join(space.names)}).")
        return np.array([float(np.asarray(point[n])) for n in space.names])
    vector = np.asarray(point, dtype=float).ravel()
    if vector.size != len(space.names):
        raise ConfigurationError(f"The optimizer asked a point of {vector.size} values; "
                                 f"give one per fitted parameter ({', '.join(space.names)}).")
    return vector


def ask_points(optimizer, n_samples: int, space: ParameterSpace) -> AskedPoints:
    """``n_samples`` points of ``optimizer``, as the loop asks and tells them."""
    as_given = list(optimizer.ask(n_samples))
    matrix = np.vstack([_vector(point, space) for point in as_given]) if as_given else \
        np.empty((0, len(space.names)))
    return AskedPoints(as_given=as_given, matrix=matrix)


def replay_rounds(optimizer, space: ParameterSpace, n_samples: int, rounds: int,
                  records: Sequence, *, source: str,
                  error_type: type[Exception] = StorageError,
                  as_they_came: bool = False) -> int:
    """Initialize ``optimizer`` and tell it ``records`` again, checking each round;
    returns the population size it uses (see :func:`initialize_optimizer`).

    Parameters
    ----------
    n_samples : int
        The population size the fit asked for (what ``initialize`` was given).
    rounds : int
        The ``rounds`` the optimizer was first initialized with.
    records : sequence of RoundRecord
        With ``told_errors``: what the optimizer was told in each round.
    source : str
        Where the rounds come from, for messages ("study 'hh' in fit.db").
    error_type : type
        Raised (with an explanation) when the optimizer proposes other points
        (default :class:`StorageError`: the rounds came from a database).
    as_they_came : bool
        The rounds were evaluated asynchronously: their points are told without
        being asked for again (the optimizer is then warm-started with every
        evaluation, not rebuilt to the bit).
    """
    used = initialize_optimizer(optimizer, space, n_samples, rounds)
    if as_they_came:
        # an asynchronous fit asked in chunks, interleaved with its tells, in an order
        # that the finishing times decided: tell the evaluations, ask nothing
        for record in records:
            if record.told_errors is None:
                raise error_type(f"Round {record.index} of {source} lacks the errors its "
                                 f"optimizer was told, so the optimizer cannot be rebuilt.")
            optimizer.tell(list(record.parameters), np.asarray(record.told_errors, float))
        return used
    for record in records:
        points = ask_points(optimizer, used, space)
        asked = points.matrix
        stored = record.parameters
        # a deterministic optimizer repeats itself to the last bit; the tolerance only
        # absorbs a float32 detour in a third-party optimizer
        if asked.shape != stored.shape or not np.allclose(asked, stored, rtol=1e-12, atol=0):
            raise error_type(_mismatch(record.index, asked, stored, space, optimizer, source))
        if record.told_errors is None:
            raise error_type(f"Round {record.index} of {source} lacks the errors its "
                             f"optimizer was told, so the optimizer cannot be rebuilt.")
        if isinstance(optimizer, GradientOptimizer) and record.normal_equations is None:
            raise error_type(f"Round {record.index} of {source} lacks the normal equations "
                             f"its gradient optimizer was told, so the optimizer cannot be "
                             f"rebuilt; start again with restart=True.")
        tell_round(optimizer, points.as_given, record)
    return used


def tell_round(optimizer, as_given, record) -> None:
    """Tell ``optimizer`` a finished round as the loop tells it: the told errors, and
    the normal equations to a :class:`GradientOptimizer` (when the round has them)."""
    told = np.asarray(record.told_errors, dtype=float)
    if record.normal_equations is not None and isinstance(optimizer, GradientOptimizer):
        optimizer.tell_gradients(as_given, told, record.normal_equations)
    else:
        optimizer.tell(as_given, told)


def _mismatch(index: int, asked: np.ndarray, stored: np.ndarray, space: ParameterSpace,
              optimizer, source: str) -> str:
    if asked.shape != stored.shape:
        detail = f"{asked.shape[0]} points instead of the {stored.shape[0]} stored"
    else:
        sample, column = np.argwhere(~np.isclose(asked, stored, rtol=1e-12, atol=0))[0]
        detail = (f"sample {sample}: {space.names[column]} = {asked[sample, column]!r} "
                  f"instead of the stored {stored[sample, column]!r}")
    return (f"Cannot rebuild the optimizer from {source}: replaying round {index}, "
            f"{optimizer!r} proposed other parameters ({detail}). Replay needs the "
            f"optimizer of the original fit (same class, options and seed) and one that is "
            f"deterministic: create it with the same seed= as the first fit. An optimizer "
            f"that cannot repeat itself can be stored pickled instead: create the fitter "
            f"with storage=FitStore(url, study, pickle_optimizer=True) from the first fit "
            f"on (only for databases you trust: loading a pickle runs code), or start "
            f"again with restart=True.")
