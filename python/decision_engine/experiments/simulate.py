"""A realistic decision and outcome log for a universal-holdout experiment, to try the report on.

Customers (a few very active, most occasional) arrive over several days, more by day than by
night, at three placements. The experiment's salted hash puts ``holdout_share`` of them in
the holdout, which always gets a non-personalized default banner; the others get offers
picked by a personalized policy, each offer with its own conversion rate, averaging
``personalized_rate``. With ``rate_spread`` > 0 customers also differ in how readily they
convert (a gamma multiplier of mean 1 and that coefficient of variation), so one customer's
decisions are correlated, as they are in real logs. Conversions arrive after an exponential
delay; the log is cut at the end of the last day, so the latest decisions have not had their
whole window yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from decision_engine.decision_log.format import DecisionLogWriter, OutcomeLogWriter
from decision_engine.experiments.assignment import Experiment

DAY = 86_400.0
PLACEMENTS = np.array(["web_home_hero", "app_feed", "email_weekly"])
PLACEMENT_WEIGHTS = np.array([0.5, 0.35, 0.15])
# Personalized offers: how often the policy picks them, relative conversion rate, value.
OFFERS = np.array(
    ["gold_card", "travel_insurance", "robo_advisor", "savings_boost", "personal_loan", "cashback"]
)
OFFER_WEIGHTS = np.array([0.25, 0.2, 0.2, 0.15, 0.1, 0.1])
OFFER_RELATIVE_RATES = np.array([1.5, 1.2, 1.0, 0.8, 0.6, 0.5])
OFFER_VALUES = np.array([120.0, 60.0, 40.0, 25.0, 200.0, 15.0])
DEFAULT_OFFER, DEFAULT_VALUE = "default_banner", 40.0


@dataclass(frozen=True)
class SimulatedLog:
    decisions_path: Path
    outcomes_path: Path
    experiment: Experiment
    true_rates: dict[str, float]
    decisions: int
    outcomes: int


def _arrival_seconds(rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
    """Seconds into a day, twice as many arrivals at the busiest hour as at the quietest."""
    hours = np.arange(24)
    intensity = 1.0 + 0.5 * np.sin((hours - 9) / 24 * 2 * np.pi)
    hour = rng.choice(24, size=size, p=intensity / intensity.sum())
    return (hour + rng.random(size)) * 3600.0


def simulate_experiment_log(
    decisions_path: str | os.PathLike[str],
    outcomes_path: str | os.PathLike[str],
    *,
    days: int = 14,
    customers: int = 50_000,
    decisions_per_day: int = 20_000,
    holdout_share: float = 0.05,
    holdout_rate: float = 0.03,
    personalized_rate: float = 0.04,
    mean_delay_days: float = 0.5,
    lost_holdout_customers: float = 0.0,
    rate_spread: float = 0.0,
    holdout_value: float = DEFAULT_VALUE,
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC),
    seed: int = 0,
    experiment_id: str = "universal_holdout",
) -> SimulatedLog:
    """Writes the two Parquet files and returns what the simulation knew.

    ``lost_holdout_customers`` drops that fraction of holdout customers from the log, the
    kind of logging bug a sample-ratio-mismatch check should catch. ``holdout_value`` is the
    mean value of a holdout conversion.
    """
    if rate_spread < 0 or holdout_value < 0:
        raise ValueError("rate_spread and holdout_value must not be negative")
    rng = np.random.default_rng(seed)
    experiment = Experiment.create(
        experiment_id,
        {"holdout": holdout_share, "personalized": 1.0 - holdout_share},
        salt=f"{experiment_id}-2026",
        control="holdout",
    )
    ids = np.array([f"c{i:07d}" for i in range(customers)])
    groups = experiment.groups_of(ids.tolist())
    activity = rng.pareto(1.5, customers) + 1.0
    visible = ~((groups == "holdout") & (rng.random(customers) < lost_holdout_customers))
    activity = np.where(visible, activity, 0.0) / np.where(visible, activity, 0.0).sum()
    shape = 1 / rate_spread**2 if rate_spread > 0 else 0.0
    propensity = rng.gamma(shape, 1 / shape, customers) if rate_spread > 0 else np.ones(customers)
    offer_rates = OFFER_RELATIVE_RATES * personalized_rate / (OFFER_WEIGHTS @ OFFER_RELATIVE_RATES)
    end = start.timestamp() + days * DAY

    next_id, outcomes = 1, 0
    with (
        DecisionLogWriter(decisions_path, [experiment]) as decisions,
        OutcomeLogWriter(outcomes_path) as results,
    ):
        for day in range(days):
            n = decisions_per_day
            who = rng.choice(customers, size=n, p=activity)
            times = np.sort(start.timestamp() + day * DAY + _arrival_seconds(rng, n))
            holdout = groups[who] == "holdout"
            pick = rng.choice(len(OFFERS), size=n, p=OFFER_WEIGHTS)
            offer = np.where(holdout, DEFAULT_OFFER, OFFERS[pick])
            p_convert = np.minimum(np.where(holdout, holdout_rate, offer_rates[pick]) * propensity[who], 1.0)
            value = np.where(holdout, holdout_value, OFFER_VALUES[pick])
            decision_ids = np.arange(next_id, next_id + n, dtype=np.uint64)
            next_id += n
            decisions.append(
                {
                    "decision_id": decision_ids,
                    "time": times,
                    "profile_id": ids[who],
                    "placement": rng.choice(PLACEMENTS, size=n, p=PLACEMENT_WEIGHTS),
                    "experiment": np.full(n, experiment_id),
                    "group": groups[who],
                    "offer_id": offer,
                    "slot": np.zeros(n, dtype=np.int32),
                    "propensity": np.where(holdout, 1.0, OFFER_WEIGHTS[pick]),
                }
            )
            converted = rng.random(n) < p_convert
            when = times + rng.exponential(mean_delay_days * DAY, n)
            logged = converted & (when < end)
            outcomes += int(logged.sum())
            results.append(
                {
                    "decision_id": decision_ids[logged],
                    "offer_id": offer[logged],
                    "time": when[logged],
                    "reward": np.ones(int(logged.sum())),
                    "value": (value * rng.lognormal(-0.125, 0.5, n))[logged].round(2),
                }
            )
    rates = {"holdout": holdout_rate, "personalized": personalized_rate}
    return SimulatedLog(Path(decisions_path), Path(outcomes_path), experiment, rates, next_id - 1, outcomes)
