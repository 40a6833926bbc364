"""Off-policy estimators of a target policy's value from logged bandit feedback.

Each estimator is a ratio of per-row sums, ``value = sum(a) / sum(b)``:

============  ===========================================  ==================
estimator     a_i                                          b_i
============  ===========================================  ==================
replay        r_i [target action == logged action]         [same]
ips           w_i r_i                                      1
snips         w_i r_i                                      w_i
dr            sum_a pi(a|x_i) q(x_i, a) + w_i (r_i - q_i)  1
============  ===========================================  ==================

with ``w_i = pi(a_i|x_i) / p_i`` (optionally clipped at ``max_weight``). For a log with decision
ids (`LoggedBandit.decision`) a slot's propensity is conditional on the slots above, and ``w_i``
is the product of those ratios over the row's slot and the slots above it; DR's model term is
then weighted by the product over the slots above (1 for slot 0); the value is then the mean
reward per slot shown (the mean over the slots of each slot's value when every decision fills
them all), and replay uses the slot-0 rows alone. The 95% interval is the
delta-method normal interval of that ratio (for IPS and DR simply the mean of the per-row
contributions plus or minus 1.96 standard errors), or a percentile bootstrap over rows (over
decisions, each with the sums of its slots, for a log with decision ids).

Every estimate carries ``warnings`` (`diagnose`) when it should not be trusted as it stands: an
effective sample size below ``MIN_ESS``, an interval that reaches values no policy can have
(outside the range of the rewards, ``[min(0, min reward), max reward]`` of the log unless
``Options.reward_range`` says otherwise), or an interval of zero width.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from decision_engine.errors import InvalidInputError
from decision_engine.evaluation.data import FloatArray, LoggedBandit, target_probabilities
from decision_engine.evaluation.reward_model import cross_fit_rewards

Interval = Literal["normal", "bootstrap"]
ESTIMATORS = ("replay", "ips", "snips", "dr")
# Below this effective sample size an estimate rests on a handful of rows.
MIN_ESS = 100.0
# Resampled row indices held at once (int64: 8 MB); one bootstrap draw at a time past that many rows.
_BOOTSTRAP_ELEMENTS = 2**20


@dataclass(frozen=True)
class PolicyValueEstimate:
    """A policy value with its interval; ``n`` rows used (replay: rows kept), ``ess`` the
    effective sample size of the importance weights, ``(sum w)^2 / sum w^2``."""

    value: float
    lower: float
    upper: float
    n: int
    ess: float | None = None
    estimator: str = ""
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, float | int | str | list[str] | None]:
        return {
            "estimator": self.estimator,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "n": self.n,
            "ess": self.ess,
            "warnings": list(self.warnings),
        }


def diagnose(
    estimate: PolicyValueEstimate, reward_range: tuple[float, float], interval: Interval = "normal"
) -> tuple[str, ...]:
    """What makes ``estimate`` untrustworthy as it stands (module docstring); empty when nothing."""
    found: list[str] = []
    if estimate.ess is not None and estimate.ess < MIN_ESS:
        found.append(
            f"effective sample size {estimate.ess:.1f} (< {MIN_ESS:.0f}) of {estimate.n:,} rows: "
            "a few rows with large weights carry the estimate; its interval is not reliable"
        )
    low, high = reward_range
    if np.isfinite(estimate.lower) and (estimate.lower < low - 1e-12 or estimate.upper > high + 1e-12):
        found.append(
            f"interval [{estimate.lower:.4g}, {estimate.upper:.4g}] leaves the possible range "
            f"[{low:.4g}, {high:.4g}] of the value: "
            + (
                "the normal approximation is poor here (try bootstrap intervals or weight clipping)"
                if interval == "normal"
                else "the estimator's per-row terms reach past it (large weights or residuals)"
            )
        )
    if np.isfinite(estimate.lower) and estimate.upper - estimate.lower <= 1e-12 * max(
        1.0, abs(estimate.value)
    ):
        found.append(
            f"interval [{estimate.lower:.4g}, {estimate.upper:.4g}] has zero width: no variation among the "
            "rows that count (e.g. no reward where the policy puts its weight), not certainty"
        )
    return tuple(found)


def reward_range(data: LoggedBandit, options: Options) -> tuple[float, float]:
    """The values a policy can have: ``options.reward_range``, else the log's reward range
    widened to include 0."""
    if options.reward_range is not None:
        return options.reward_range
    return min(0.0, float(data.reward.min())), max(0.0, float(data.reward.max()))


def _ratio_estimate(
    a: FloatArray,
    b: FloatArray,
    *,
    name: str,
    n: int,
    ess: float | None,
    level: float,
    interval: Interval,
    n_bootstrap: int,
    seed: int,
) -> PolicyValueEstimate:
    total = float(b.sum())
    if total <= 0:
        return PolicyValueEstimate(float("nan"), float("nan"), float("nan"), n, ess, name)
    value = float(a.sum()) / total
    z = float(norm.ppf(0.5 + level / 2))
    if interval == "bootstrap":
        lower, upper = _bootstrap(a, b, level, n_bootstrap, seed)
        return PolicyValueEstimate(value, lower, upper, n, ess, name)
    m = a.shape[0]
    residual = a - value * b
    # Delta method for sum(a)/sum(b), with the m/(m-1) correction of the sample variance.
    se = float(np.sqrt((residual**2).sum() * m / max(m - 1, 1))) / total
    return PolicyValueEstimate(value, value - z * se, value + z * se, n, ess, name)


def _bootstrap(
    a: FloatArray, b: FloatArray, level: float, n_bootstrap: int, seed: int
) -> tuple[float, float]:
    if n_bootstrap < 10:
        raise InvalidInputError(f"n_bootstrap must be at least 10, got {n_bootstrap}")
    rng = np.random.default_rng(seed)
    m = a.shape[0]
    batch = max(1, _BOOTSTRAP_ELEMENTS // m)
    values = []
    for start in range(0, n_bootstrap, batch):
        rows = rng.integers(0, m, size=(min(batch, n_bootstrap - start), m))
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(a[rows].sum(axis=1) / b[rows].sum(axis=1))
    draws = np.concatenate(values)
    draws = draws[np.isfinite(draws)]
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def importance_weights(
    data: LoggedBandit, pi: FloatArray, max_weight: float | None = None, *, own: bool = True
) -> FloatArray:
    """``pi(a_i|x_i) / p_i`` per row, chained over the slots above with decision ids (module
    docstring; ``own=False``: over the slots above only), clipped at ``max_weight`` when given."""
    ratios: FloatArray = pi[np.arange(data.n), data.action] / data.propensity
    weights = data.chained(ratios, own=own)
    if max_weight is not None:
        if max_weight <= 0:
            raise InvalidInputError(f"max_weight must be positive, got {max_weight}")
        weights = np.minimum(weights, max_weight)
    return weights


def _ess(weights: FloatArray) -> float:
    square = float((weights**2).sum())
    return float(weights.sum()) ** 2 / square if square > 0 else 0.0


@dataclass(frozen=True)
class Options:
    """Shared estimator settings: interval ``level``, ``interval`` kind, weight clipping."""

    level: float = 0.95
    interval: Interval = "normal"
    n_bootstrap: int = 1000
    seed: int = 0
    max_weight: float | None = None
    reward_range: tuple[float, float] | None = None  # (min, max) possible reward; default: the log's

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise InvalidInputError(f"level must be in (0, 1), got {self.level}")
        if self.interval not in ("normal", "bootstrap"):
            raise InvalidInputError(f"interval must be 'normal' or 'bootstrap', got {self.interval!r}")
        if self.max_weight is not None and not self.max_weight > 0:
            raise InvalidInputError(f"max_weight must be positive, got {self.max_weight}")
        if self.reward_range is not None and not self.reward_range[0] <= self.reward_range[1]:
            raise InvalidInputError(
                f"reward_range must be (min, max) with min <= max, got {self.reward_range}"
            )


def _finish(
    a: FloatArray,
    b: FloatArray,
    name: str,
    n: int,
    ess: float | None,
    options: Options,
    data: LoggedBandit,
    *,
    per_row: bool = True,
) -> PolicyValueEstimate:
    """The estimate from per-row terms (``per_row``: one per row of ``data``). The slots of one
    decision share their weights' factors, so with decision ids the interval treats each
    decision's sums as one sample (the value is the same)."""
    if per_row and data.decision_index is not None:
        a = np.bincount(data.decision_index, weights=a).astype(np.float64)
        b = np.bincount(data.decision_index, weights=b).astype(np.float64)
    return _checked(_ratio(a, b, name, n, ess, options), data, options)


def _checked(estimate: PolicyValueEstimate, data: LoggedBandit, options: Options) -> PolicyValueEstimate:
    found = diagnose(estimate, reward_range(data, options), options.interval)
    return replace(estimate, warnings=found) if found else estimate


def _ratio(
    a: FloatArray, b: FloatArray, name: str, n: int, ess: float | None, options: Options
) -> PolicyValueEstimate:
    return _ratio_estimate(
        a,
        b,
        name=name,
        n=n,
        ess=ess,
        level=options.level,
        interval=options.interval,
        n_bootstrap=options.n_bootstrap,
        seed=options.seed,
    )


def replay(data: LoggedBandit, target: npt.ArrayLike, options: Options | None = None) -> PolicyValueEstimate:
    """Li et al. (2011) rejection sampling: the mean reward of the rows where the target's action
    equals the logged one (``n`` = rows kept). A probabilistic target is sampled once per row
    (seeded by ``options.seed``). With 0/1 rewards the normal interval is a Wilson interval.
    Unbiased when the logging policy is uniform over the actions; otherwise it estimates the
    target's value under the logging policy's action frequencies. A log with decision ids is
    replayed on its slot-0 rows (the first slot's value)."""
    options = options or Options()
    pi = target_probabilities(data, target)
    rng = np.random.default_rng(options.seed)
    cumulative = np.cumsum(pi, axis=1)
    draws = rng.random(data.n)[:, None] * cumulative[:, -1:]
    chosen = np.minimum((cumulative <= draws).sum(axis=1), data.n_actions - 1)
    kept = chosen == data.action
    if data.decision is not None:
        # A later slot's kept rows sample the target's reward there only where every slot above
        # matched too, far fewer than at slot 0: pooled, they would tilt the mean to slot 0.
        kept &= data.position == 0
    rewards = data.reward[kept]
    binary = bool(np.isin(rewards, (0.0, 1.0)).all())
    if options.interval == "normal" and binary and rewards.size:
        # Kept rows are a plain sample of the target's rewards: the Wilson interval stays
        # sensible with few kept rows or no clicks among them, where the normal one collapses.
        return _checked(_wilson(float(rewards.mean()), rewards.size, options.level), data, options)
    # Only the kept rows enter the estimate (their mean reward), so the interval is that of a
    # sample of rewards.size rows: its variance correction and bootstrap use those rows alone.
    if rewards.size == 0:
        empty = PolicyValueEstimate(float("nan"), float("nan"), float("nan"), 0, None, "replay")
        return replace(empty, warnings=("no logged action matches the policy's: replay has no rows",))
    return _finish(rewards, np.ones(rewards.size), "replay", rewards.size, None, options, data, per_row=False)


def _wilson(rate: float, n: int, level: float) -> PolicyValueEstimate:
    z = float(norm.ppf(0.5 + level / 2))
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * float(np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)))
    return PolicyValueEstimate(rate, max(centre - half, 0.0), min(centre + half, 1.0), n, None, "replay")


def ips(data: LoggedBandit, target: npt.ArrayLike, options: Options | None = None) -> PolicyValueEstimate:
    """Inverse propensity scoring: the mean of ``w_i r_i``."""
    options = options or Options()
    weights = importance_weights(data, target_probabilities(data, target), options.max_weight)
    return _finish(weights * data.reward, np.ones(data.n), "ips", data.n, _ess(weights), options, data)


def snips(data: LoggedBandit, target: npt.ArrayLike, options: Options | None = None) -> PolicyValueEstimate:
    """Self-normalised IPS: ``sum(w r) / sum(w)``; unchanged when all weights are scaled alike."""
    options = options or Options()
    weights = importance_weights(data, target_probabilities(data, target), options.max_weight)
    return _finish(weights * data.reward, weights, "snips", data.n, _ess(weights), options, data)


def dr(
    data: LoggedBandit,
    target: npt.ArrayLike,
    options: Options | None = None,
    q: FloatArray | None = None,
) -> PolicyValueEstimate:
    """Doubly robust: the reward model's value of the target plus the IPS-weighted residual.

    ``q`` (n, n_actions) are predicted rewards; by default `cross_fit_rewards` (per-action ridge
    regression on X and position, 2-fold cross-fitting; the per-action mean without either).
    """
    options = options or Options()
    pi = target_probabilities(data, target)
    if q is None:
        q = cross_fit_rewards(data, seed=options.seed)
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (data.n, data.n_actions):
        raise InvalidInputError(f"q must have shape ({data.n}, {data.n_actions}), got {q.shape}")
    weights = importance_weights(data, pi, options.max_weight)
    above = importance_weights(data, pi, options.max_weight, own=False)
    logged_q = q[np.arange(data.n), data.action]
    contributions = above * (pi * q).sum(axis=1) + weights * (data.reward - logged_q)
    return _finish(contributions, np.ones(data.n), "dr", data.n, _ess(weights), options, data)


Estimator = Callable[[LoggedBandit, npt.ArrayLike, Options], PolicyValueEstimate]
_BY_NAME: Mapping[str, Estimator] = {"replay": replay, "ips": ips, "snips": snips, "dr": dr}


def estimate(
    data: LoggedBandit,
    target: npt.ArrayLike,
    estimators: Sequence[str] = ESTIMATORS,
    options: Options | None = None,
    q: FloatArray | None = None,
) -> dict[str, PolicyValueEstimate]:
    """Several estimators of the same target at once (the reward model is fitted once)."""
    options = options or Options()
    unknown = [name for name in estimators if name not in _BY_NAME]
    if unknown:
        raise InvalidInputError(f"unknown estimators {unknown}; known: {list(_BY_NAME)}")
    pi = target_probabilities(data, target)
    results: dict[str, PolicyValueEstimate] = {}
    for name in estimators:
        if name == "dr":
            if q is None:
                q = cross_fit_rewards(data, seed=options.seed)
            results[name] = dr(data, pi, options, q)
        else:
            results[name] = _BY_NAME[name](data, pi, options)
    return results


def on_policy(data: LoggedBandit, options: Options | None = None) -> PolicyValueEstimate:
    """The logging policy's own value: the mean logged reward with its interval."""
    options = options or Options()
    return _finish(data.reward, np.ones(data.n), "on-policy", data.n, None, options, data)
