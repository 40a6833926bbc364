"""Off-policy evaluation of a policy that keeps learning ("progressive" or online replay).

The log is walked in time order in chunks. For each chunk the bandit, in its current state,
gives its first-slot action probabilities for the chunk's contexts
(`Bandit.action_probabilities`); only then is it updated with the chunk's logged
``(X, action, reward)``. Every chunk is thus scored by a policy that has not seen that
chunk's rewards, so IPS, SNIPS and DR over all chunks estimate the mean value of the sequence
of policies the bandit goes through while learning from the logging policy's data. (It learns
from the logged actions, not from its own: the trajectory differs from a live deployment,
which only the replay estimator's accepted rows would mimic.) A log without decision ids
(`LoggedBandit.decision`, e.g. OBD's) has its positions ignored by the bandit: the first-slot
distribution scores every position. With decision ids a slot-k row is scored by the bandit's
distribution given the decision's logged picks above (`LoggedBandit.eligible_given_above`),
as the engine picks and logs each slot; chunks then end between decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from decision_engine._core import Bandit
from decision_engine.errors import InvalidInputError
from decision_engine.evaluation.data import FloatArray, LoggedBandit
from decision_engine.evaluation.estimators import ESTIMATORS, Options, PolicyValueEstimate, estimate


class BanditLike(Protocol):
    """What the evaluation needs of `decision_engine.Bandit`."""

    def action_probabilities(
        self, X: npt.NDArray[Any], eligible: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float64]: ...

    def update(
        self, X: npt.NDArray[Any], arms: npt.NDArray[np.int64], rewards: npt.NDArray[np.float64]
    ) -> None: ...


def _contexts(data: LoggedBandit, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    if data.X is None:
        return np.zeros((rows.shape[0], 0), dtype=np.float32)
    return np.ascontiguousarray(data.X[rows], dtype=np.float32)


def _chunks(data: LoggedBandit, chunk_size: int) -> list[npt.NDArray[np.int64]]:
    """The rows in time order, in chunks of about ``chunk_size`` that keep each decision whole."""
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be at least 1, got {chunk_size}")
    order = data.time_order()
    starts = data.decision_starts(order)
    chunks = []
    begin = 0
    while begin < data.n:
        at = int(np.searchsorted(starts, begin + chunk_size))
        end = int(starts[at]) if at < starts.shape[0] else data.n
        chunks.append(order[begin:end])
        begin = end
    return chunks


def learn(bandit: BanditLike, data: LoggedBandit, chunk_size: int = 1000) -> None:
    """Updates ``bandit`` with the whole log, in time order and in chunks."""
    for rows in _chunks(data, chunk_size):
        bandit.update(_contexts(data, rows), data.action[rows], data.reward[rows])


def progressive_probabilities(bandit: BanditLike, data: LoggedBandit, chunk_size: int = 1000) -> FloatArray:
    """The bandit's action probabilities for every row (in the log's row order), each chunk
    scored before the bandit learns from it; ``bandit`` ends up updated with the whole log."""
    pi = np.empty((data.n, data.n_actions))
    given_above = None if data.decision is None else data.eligible_given_above()
    for rows in _chunks(data, chunk_size):
        X = _contexts(data, rows)
        eligible = data.mask if given_above is None else given_above
        eligible = None if eligible is None else np.ascontiguousarray(eligible[rows])
        chunk = np.asarray(bandit.action_probabilities(X, eligible=eligible), dtype=np.float64)
        if chunk.shape != (rows.shape[0], data.n_actions):
            raise InvalidInputError(
                f"the bandit gave probabilities of shape {chunk.shape}, expected "
                f"({rows.shape[0]}, {data.n_actions}); does it have n_arms = {data.n_actions}?"
            )
        pi[rows] = chunk
        bandit.update(X, data.action[rows], data.reward[rows])
    return pi


def evaluate_policy(
    bandit_factory: Callable[[], BanditLike],
    data: LoggedBandit,
    estimators: Sequence[str] = ESTIMATORS,
    *,
    chunk_size: int = 1000,
    options: Options | None = None,
) -> dict[str, PolicyValueEstimate]:
    """Estimates of a learning policy's value on ``data``: a fresh bandit from
    ``bandit_factory`` is scored chunk by chunk and updated after each chunk (module docstring)."""
    pi = progressive_probabilities(bandit_factory(), data, chunk_size)
    return estimate(data, pi, estimators, options)


def evaluate_trained(
    bandit_factory: Callable[[], BanditLike],
    data: LoggedBandit,
    train_fraction: float = 0.5,
    estimators: Sequence[str] = ESTIMATORS,
    *,
    chunk_size: int = 1000,
    options: Options | None = None,
) -> dict[str, PolicyValueEstimate]:
    """Trains a fresh bandit on the first ``train_fraction`` of the log (in time order, cut
    between decisions), then evaluates it on the rest progressively (it keeps learning there,
    chunk after chunk)."""
    train, test = data.split_in_time(train_fraction)
    bandit = bandit_factory()
    learn(bandit, train, chunk_size)
    pi = progressive_probabilities(bandit, test, chunk_size)
    return estimate(test, pi, estimators, options)


def engine_bandit(policy: Mapping[str, Any], n_arms: int, n_features: int, seed: int = 0) -> BanditLike:
    """A `decision_engine.Bandit` for ``policy`` (a catalog policy mapping)."""
    bandit: BanditLike = Bandit(dict(policy), n_arms, n_features, seed)
    return bandit


def evaluate_on_obd(
    policy: Mapping[str, Any],
    data: LoggedBandit,
    train_fraction: float = 0.5,
    *,
    seed: int = 0,
    chunk_size: int = 1000,
    options: Options | None = None,
) -> dict[str, PolicyValueEstimate]:
    """One of our policies (a ``policy`` mapping for `decision_engine.Bandit`) trained on the first
    part of an OBD log (e.g. the uniform random one, `load_obd`) and evaluated on the rest."""
    n_features = 0 if data.X is None else data.X.shape[1]

    def factory() -> BanditLike:
        return engine_bandit(policy, data.n_actions, n_features, seed)

    return evaluate_trained(factory, data, train_fraction, chunk_size=chunk_size, options=options)
