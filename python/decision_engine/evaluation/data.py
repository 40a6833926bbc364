"""Logged bandit feedback, checked once so the estimators can trust it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from decision_engine.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_PROBABILITY_TOLERANCE = 1e-6
_COLUMN = re.compile(r"^(.*)\[\d+\]$")


def _base(column: str) -> str:
    """``f[3]`` -> ``f``: the feature a column of a multi-column feature belongs to."""
    match = _COLUMN.match(column)
    return match.group(1) if match else column


def _vector(values: Any, name: str, dtype: type[Any], n: int | None) -> npt.NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be a 1-d array, got shape {array.shape}")
    if n is not None and array.shape[0] != n:
        raise InvalidInputError(f"{name} must have {n} rows (one per logged decision), got {array.shape[0]}")
    if dtype is np.int64 and array.size and array.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must hold integers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


@dataclass(frozen=True)
class LoggedBandit:
    """One row per logged decision (or per slot of one): what the logging policy did and got.

    ``action`` indexes ``0..n_actions-1``; ``propensity`` is the logging policy's probability of
    that action (at that position), in (0, 1]. Optional: a context matrix ``X`` (n, d), an
    eligibility ``mask`` (n, n_actions), the ``position`` (slot, 0-based) and ``time`` (any
    sortable number, e.g. unix seconds) of each row, ``action_ids`` naming the actions and
    ``feature_names`` naming the columns of ``X`` (a one-hot or hashed feature spread over
    several columns names them ``feature[k]``).
    Arrays are converted (float64 / int64 / bool) and checked on construction; a problem raises
    `InvalidInputError` saying what was expected.
    """

    reward: FloatArray
    action: IntArray
    propensity: FloatArray
    n_actions: int
    X: FloatArray | None = None
    mask: BoolArray | None = None
    position: IntArray | None = None
    time: FloatArray | None = None
    action_ids: tuple[str, ...] | None = field(default=None)
    feature_names: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        reward = _vector(self.reward, "reward", np.float64, None)
        n = reward.shape[0]
        if n == 0:
            raise InvalidInputError("the log is empty: need at least one logged decision")
        if not np.all(np.isfinite(reward)):
            raise InvalidInputError("reward must be finite (no NaN or inf)")
        set_(self, "reward", reward)
        if int(self.n_actions) < 1:
            raise InvalidInputError(f"n_actions must be at least 1, got {self.n_actions}")
        set_(self, "n_actions", int(self.n_actions))
        action = _vector(self.action, "action", np.int64, n)
        bad = (action < 0) | (action >= self.n_actions)
        if bad.any():
            raise InvalidInputError(
                f"action must be in 0..{self.n_actions - 1} (n_actions={self.n_actions}); "
                f"row {int(np.argmax(bad))} has {int(action[np.argmax(bad)])}"
            )
        set_(self, "action", action)
        propensity = _vector(self.propensity, "propensity", np.float64, n)
        bad = ~((propensity > 0) & (propensity <= 1))
        if bad.any():
            row = int(np.argmax(bad))
            raise InvalidInputError(
                f"propensity must be in (0, 1] (the logging policy's probability of the logged action); "
                f"row {row} has {propensity[row]!r}"
            )
        set_(self, "propensity", propensity)
        self._check_optional(n)

    def _check_optional(self, n: int) -> None:
        set_ = object.__setattr__
        if self.X is not None:
            X = np.asarray(self.X, dtype=np.float64)
            if X.ndim != 2 or X.shape[0] != n:
                raise InvalidInputError(f"X must have shape ({n}, n_features), got {X.shape}")
            if not np.all(np.isfinite(X)):
                raise InvalidInputError("X must be finite (no NaN or inf)")
            set_(self, "X", np.ascontiguousarray(X))
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=np.bool_)
            if mask.shape != (n, self.n_actions):
                raise InvalidInputError(f"mask must have shape ({n}, {self.n_actions}), got {mask.shape}")
            unseen = ~mask[np.arange(n), self.action]
            if unseen.any():
                row = int(np.argmax(unseen))
                raise InvalidInputError(f"row {row}: the logged action {self.action[row]} is not eligible")
            set_(self, "mask", mask)
        if self.position is not None:
            position = _vector(self.position, "position", np.int64, n)
            if (position < 0).any():
                raise InvalidInputError("position must be 0-based (>= 0)")
            set_(self, "position", position)
        if self.time is not None:
            set_(self, "time", _vector(self.time, "time", np.float64, n))
        if self.action_ids is not None:
            ids = tuple(str(a) for a in self.action_ids)
            if len(ids) != self.n_actions:
                raise InvalidInputError(f"action_ids must name {self.n_actions} actions, got {len(ids)}")
            set_(self, "action_ids", ids)
        if self.feature_names is not None:
            names = tuple(str(f) for f in self.feature_names)
            width = 0 if self.X is None else self.X.shape[1]
            if len(names) != width:
                raise InvalidInputError(f"feature_names must name the {width} columns of X, got {len(names)}")
            set_(self, "feature_names", names)

    @property
    def n(self) -> int:
        return int(self.reward.shape[0])

    def take(self, rows: npt.NDArray[Any] | slice) -> LoggedBandit:
        """The log restricted to ``rows`` (indices, a boolean mask or a slice)."""

        def pick(array: npt.NDArray[Any] | None) -> Any:
            return None if array is None else array[rows]

        return LoggedBandit(
            reward=self.reward[rows],
            action=self.action[rows],
            propensity=self.propensity[rows],
            n_actions=self.n_actions,
            X=pick(self.X),
            mask=pick(self.mask),
            position=pick(self.position),
            time=pick(self.time),
            action_ids=self.action_ids,
            feature_names=self.feature_names,
        )

    def features(self) -> list[str]:
        """The features of ``X`` by name, each once (``f[0]``, ``f[1]``, ... count as ``f``)."""
        seen: dict[str, None] = {}
        for name in self.feature_names or ():
            seen[_base(name)] = None
        return list(seen)

    def select_features(self, names: Sequence[str]) -> LoggedBandit:
        """The log with ``X`` restricted to the columns of the named features, in that order.

        Raises `InvalidInputError` when a name is not a feature of the log, or when the log does
        not name its columns: a policy's ``features`` must not fall silently on other columns.
        """
        if self.X is None:
            raise InvalidInputError(f"features {list(names)} asked for, but the log has no feature vectors")
        if self.feature_names is None:
            raise InvalidInputError(
                f"features {list(names)} asked for, but the log does not name its {self.X.shape[1]} "
                "feature columns (give the catalog it was logged with)"
            )
        known = self.features()
        missing = [n for n in names if n not in known]
        if missing:
            shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
            raise InvalidInputError(
                f"the log has no feature {missing[0]!r} (asked for {list(names)}); it has: {shown}"
            )
        columns = [j for n in names for j, c in enumerate(self.feature_names) if _base(c) == n]
        return replace(
            self, X=self.X[:, columns], feature_names=tuple(self.feature_names[j] for j in columns)
        )

    def time_order(self) -> IntArray:
        """Row indices in time order (stable; the row order when there are no times)."""
        if self.time is None:
            return np.arange(self.n, dtype=np.int64)
        return np.argsort(self.time, kind="stable").astype(np.int64)


def target_probabilities(data: LoggedBandit, target: npt.ArrayLike) -> FloatArray:
    """The target policy as probabilities (n, n_actions): ``target`` is either that matrix
    (rows summing to 1, no mass on ineligible actions) or one deterministic action per row."""
    pi = np.asarray(target)
    if pi.ndim == 1:
        actions = _vector(pi, "target actions", np.int64, data.n)
        if ((actions < 0) | (actions >= data.n_actions)).any():
            raise InvalidInputError(f"target actions must be in 0..{data.n_actions - 1}")
        one_hot = np.zeros((data.n, data.n_actions))
        one_hot[np.arange(data.n), actions] = 1.0
        pi = one_hot
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (data.n, data.n_actions):
        raise InvalidInputError(
            f"target probabilities must have shape (n, n_actions) = ({data.n}, {data.n_actions}) "
            f"or be one action per row, got shape {pi.shape}"
        )
    if not np.all(np.isfinite(pi)) or (pi < 0).any():
        raise InvalidInputError("target probabilities must be finite and non-negative")
    sums = pi.sum(axis=1)
    off = np.abs(sums - 1.0) > _PROBABILITY_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise InvalidInputError(f"target probabilities must sum to 1 per row; row {row} sums to {sums[row]}")
    if data.mask is not None:
        leak = (pi * ~data.mask).sum(axis=1) > _PROBABILITY_TOLERANCE
        if leak.any():
            raise InvalidInputError(
                f"the target policy puts probability on ineligible actions (row {int(np.argmax(leak))})"
            )
    return pi
