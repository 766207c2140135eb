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

from typing import Sequence

import numpy as np

from modelfit_core.contracts.errors import StorageError
from modelfit_core.model.parameters import ParameterSpace


def initialize_optimizer(optimizer, space: ParameterSpace, n_samples: int, rounds: int) -> None:
    """``optimizer.initialize`` as every fit calls it (a replay must call it identically)."""
    optimizer.initialize(list(space.names), popsize=n_samples, rounds=rounds,
                         **space.bounds_dict())


def ask_vectors(optimizer, n_samples: int) -> list[np.ndarray]:
    """``n_samples`` points of ``optimizer``, as the loop asks and tells them."""
    return [np.asarray(v, dtype=float) for v in optimizer.ask(n_samples)]


def replay_rounds(optimizer, space: ParameterSpace, n_samples: int, rounds: int,
                  records: Sequence, *, source: str,
                  error_type: type[Exception] = StorageError) -> None:
    """Initialize ``optimizer`` and tell it ``records`` again, checking each round.

    Parameters
    ----------
    rounds : int
        The ``rounds`` the optimizer was first initialized with.
    records : sequence of RoundRecord
        With ``told_errors``: what the optimizer was told in each round.
    source : str
        Where the rounds come from, for messages ("study 'hh' in fit.db").
    error_type : type
        Raised (with an explanation) when the optimizer proposes other points
        (default :class:`StorageError`: the rounds came from a database).
    """
    initialize_optimizer(optimizer, space, n_samples, rounds)
    for record in records:
        vectors = ask_vectors(optimizer, n_samples)
        asked = np.vstack(vectors)
        stored = record.parameters
        # a deterministic optimizer repeats itself to the last bit; the tolerance only
        # absorbs a float32 detour in a third-party optimizer
        if asked.shape != stored.shape or not np.allclose(asked, stored, rtol=1e-12, atol=0):
            raise error_type(_mismatch(record.index, asked, stored, space, optimizer, source))
        if record.told_errors is None:
            raise error_type(f"Round {record.index} of {source} lacks the errors its "
                             f"optimizer was told, so the optimizer cannot be rebuilt.")
        optimizer.tell(vectors, np.asarray(record.told_errors, dtype=float))


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
