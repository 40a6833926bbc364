"""Logged bandit feedback, checked once so the estimators can trust it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
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

    ``decision`` (any integer id per row, with ``position``) groups the slots of one decision.
    With it, the propensity of a slot-k row is the probability of that pick *given the picks of
    the slots above* (the engine's log: the probability of the first k+1 picks is the product of
    their propensities), every decision must have its slots 0..m-1, and the estimators weight a
    slot's reward by the product of the target-to-logging ratios of its slot and those above
    (`chained`); the target's probabilities of a slot-k row must then be its distribution at
    that slot given the logged picks above (`eligible_given_above`). Without it every row stands
    alone and its propensity is the marginal probability of the action at its position (the
    Open Bandit Dataset's meaning).
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
    decision: npt.NDArray[np.integer[Any]] | None = None

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
        if self.decision is not None:
            set_(self, "decision", self._checked_decisions(n))
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

    def _checked_decisions(self, n: int) -> npt.NDArray[np.integer[Any]]:
        """The decision ids (any integers, uint64 too), checked to hold each decision's slots
        0..m-1 once."""
        ids = np.ascontiguousarray(self.decision)
        if ids.ndim != 1 or ids.shape[0] != n:
            raise InvalidInputError(f"decision must be a 1-d array of {n} ids, got shape {ids.shape}")
        if ids.dtype.kind not in "iu":
            raise InvalidInputError(f"decision must hold integer ids, got dtype {ids.dtype}")
        if self.position is None:
            raise InvalidInputError("decision groups the slots of a decision: it needs position too")
        codes = _codes(ids)
        order = np.lexsort((self.position, codes))
        grouped = codes[order]
        start = np.r_[True, grouped[1:] != grouped[:-1]]
        first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
        rank = np.arange(n) - first
        bad = self.position[order] != rank
        if bad.any():
            row = int(order[int(np.argmax(bad))])
            slots = sorted(int(p) for p in self.position[codes == codes[row]])
            raise InvalidInputError(
                f"decision {ids[row]} has slots {slots}, expected 0..{len(slots) - 1} once each: a "
                "slot's propensity is conditional on the slots above, so every slot above must be logged"
            )
        return ids

    @cached_property
    def decision_index(self) -> IntArray | None:
        """Each row's decision as 0..d-1, in the order of the ids (None without ``decision``)."""
        return None if self.decision is None else _codes(self.decision)

    def _slot_order(self) -> tuple[IntArray, IntArray]:
        """Row indices sorted by (decision, position), and each sorted row's slot."""
        assert self.decision is not None and self.position is not None
        order = np.lexsort((self.position, self.decision)).astype(np.int64)
        return order, self.position[order]

    def chained(self, ratios: FloatArray, *, own: bool = True) -> FloatArray:
        """Per row, the product of ``ratios`` over its decision's slots above it, and its own
        unless ``own=False`` (without ``decision``: ``ratios``, or ones)."""
        if self.decision is None:
            return ratios.copy() if own else np.ones_like(ratios)
        order, slot = self._slot_order()
        product = ratios[order]  # up to and including the row's slot, in (decision, slot) order
        for k in range(1, int(slot.max()) + 1):
            at = np.flatnonzero(slot == k)  # the row of the slot above sits just before it
            product[at] *= product[at - 1]
        if not own:
            above = np.ones_like(product)
            later = np.flatnonzero(slot > 0)
            above[later] = product[later - 1]
            product = above
        out = np.empty_like(ratios)
        out[order] = product
        return out

    def eligible_given_above(self) -> BoolArray:
        """The actions each row's slot could still pick: ``mask`` (all actions without one)
        less the actions logged at the slots above in the same decision."""
        n = self.n
        eligible = np.ones((n, self.n_actions), dtype=bool) if self.mask is None else self.mask.copy()
        if self.decision is None:
            return eligible
        order, slot = self._slot_order()
        taken = np.zeros((n, self.n_actions), dtype=bool)  # in (decision, position) order
        for k in range(1, int(slot.max()) + 1):
            at = np.flatnonzero(slot == k)
            taken[at] = taken[at - 1]
            taken[at, self.action[order[at - 1]]] = True
        eligible[order] &= ~taken
        return eligible

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
            decision=pick(self.decision),
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
        """Row indices in time order (stable; the row order when there are no times); with
        ``decision`` a decision's slots are adjacent, in slot order."""
        if self.decision is None:
            if self.time is None:
                return np.arange(self.n, dtype=np.int64)
            return np.argsort(self.time, kind="stable").astype(np.int64)
        assert self.position is not None
        time = np.arange(self.n) if self.time is None else self.time
        # A decision sorts at the time of its first row, so its slots stay together.
        codes = _codes(self.decision)
        first = np.full(int(codes.max()) + 1, np.inf)
        np.minimum.at(first, codes, np.asarray(time, dtype=np.float64))
        return np.lexsort((self.position, codes, first[codes])).astype(np.int64)

    def decision_starts(self, order: IntArray) -> IntArray:
        """The indices into ``order`` (e.g. `time_order`) where a new decision begins: every
        index without ``decision``. A split or chunk of the log at one of them keeps each
        decision whole."""
        if self.decision is None:
            return np.arange(order.shape[0], dtype=np.int64)
        grouped = self.decision[order]
        return np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]).astype(np.int64)

    def split_in_time(self, fraction: float) -> tuple[LoggedBandit, LoggedBandit]:
        """The first ``fraction`` of the rows in time order and the rest, cut between decisions."""
        if not 0 < fraction < 1:
            raise InvalidInputError(f"train_fraction must be in (0, 1), got {fraction}")
        order = self.time_order()
        starts = self.decision_starts(order)
        wanted = round(self.n * fraction)
        cut = int(starts[np.argmin(np.abs(starts - wanted))])
        if wanted in (0, self.n) or cut == 0:
            raise InvalidInputError(f"train_fraction {fraction} leaves no rows to train on or to evaluate")
        return self.take(order[:cut]), self.take(order[cut:])


def _codes(ids: npt.NDArray[np.integer[Any]]) -> IntArray:
    _, codes = np.unique(ids, return_inverse=True)
    out: IntArray = codes.astype(np.int64).reshape(-1)
    return out


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
