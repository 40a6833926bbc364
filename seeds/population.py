"""The synthetic customer population behind ``seeds.generator``.

``sample_columns`` draws every feature the generator knows, one float64 column
per feature name, with categories as codes into ``CATEGORY_VALUES``. The
columns are correlated the way a retail bank's customers are: life stage
drives age, income, dependents and mortgages; segment follows income; spend,
products and credit follow segment; app usage follows device and age; churn
follows tenure, engagement and service calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

__all__ = ["CATEGORY_VALUES", "RECENT_DEFAULT", "sample_columns"]

F64 = npt.NDArray[np.float64]

# Category vocabularies the population is drawn from, in code order.
CATEGORY_VALUES: Mapping[str, tuple[str, ...]] = {
    "life_stage": ("student", "young_professional", "family", "established", "retired"),
    "region": ("north", "south", "east", "west", "capital"),
    "segment": ("basic", "silver", "gold", "platinum"),
    "device": ("ios", "android", "desktop", "other"),
    "preferred_channel": ("web", "app", "email", "push"),
}

_STUDENT, _YOUNG, _FAMILY, _ESTABLISHED, _RETIRED = range(5)
_CAPITAL = 4
_GOLD = 2
_EMAIL = 2
# days_since_visit of a customer with no visit in 90 days (the demo catalog's default)
RECENT_DEFAULT = 90.0


def sigmoid(x: F64) -> F64:
    """Logistic function."""
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _money(x: F64) -> F64:
    """Round to cents."""
    return np.asarray(np.round(x, 2), dtype=np.float64)


def _bernoulli(rng: np.random.Generator, p: F64) -> F64:
    return (rng.random(p.shape) < p).astype(np.float64)


def _categorical(rng: np.random.Generator, probs: npt.ArrayLike, n: int) -> F64:
    """Sample one code per row from row probabilities, shape (k,) or (n, k)."""
    p = np.broadcast_to(np.asarray(probs, dtype=np.float64), (n, np.shape(probs)[-1]))
    cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    codes = np.asarray((rng.random((n, 1)) > cumulative).sum(axis=1), dtype=np.float64)
    return np.asarray(np.minimum(codes, p.shape[1] - 1), dtype=np.float64)


def _demographics(c: dict[str, F64], n: int, rng: np.random.Generator) -> None:
    stage = _categorical(rng, [0.10, 0.22, 0.30, 0.23, 0.15], n)
    st = stage.astype(np.int64)
    age_mean = np.array([21.5, 29.0, 40.0, 52.0, 72.0])[st]
    age_sd = np.array([2.2, 4.0, 7.0, 7.0, 6.0])[st]
    age_lo = np.array([18, 21, 24, 35, 60])[st]
    age_hi = np.array([26, 40, 62, 67, 95])[st]
    age = np.clip(np.round(rng.normal(age_mean, age_sd)), age_lo, age_hi)
    region = _categorical(rng, [0.20, 0.22, 0.18, 0.18, 0.22], n)
    income = np.array([900.0, 3100.0, 4200.0, 4800.0, 2600.0])[st]
    income = income * np.where(region == _CAPITAL, 1.25, 1.0)
    income = income * rng.lognormal(0.0, 0.45, n)
    # Segment follows income, with noise.
    wealth = np.log(income) + rng.normal(0.0, 0.3, n)
    segment = np.digitize(wealth, np.log([3600.0, 5800.0, 9500.0]))
    dependents = np.where(st == _FAMILY, 1, 0)
    dependents += rng.poisson(np.array([0.02, 0.2, 0.9, 0.8, 0.05])[st])
    c["life_stage"], c["age"], c["region"] = stage, age, region
    c["income_monthly"] = _money(income)
    c["segment"] = segment.astype(np.float64)
    c["dependents"] = np.minimum(dependents, 6).astype(np.float64)


def _banking(c: dict[str, F64], n: int, rng: np.random.Generator) -> None:
    st, age, seg = c["life_stage"], c["age"], c["segment"]
    income = c["income_monthly"]
    tenure = np.floor(rng.exponential(40 + 2.5 * (age - 18)))
    tenure = np.clip(tenure, 1, np.maximum((age - 17) * 12, 1))
    working = np.isin(st, (_YOUNG, _FAMILY, _ESTABLISHED))
    p_salary = 0.25 + 0.35 * working + 0.002 * np.minimum(tenure, 120)
    direct_deposit = _bernoulli(rng, np.clip(p_salary, 0.05, 0.95))
    score = 595 + 18 * seg + 0.8 * (age - 18) + 0.15 * np.minimum(tenure, 240)
    score = np.clip(np.round(score + rng.normal(0.0, 55.0, n)), 300, 850)

    card_logit = -0.9 + 0.6 * seg + (score - 650) / 60 - 1.0 * (st == _STUDENT)
    card = _bernoulli(rng, sigmoid(card_logit))
    limit = np.round(income * rng.lognormal(math.log(1.5), 0.35, n), -2)
    util = np.clip(rng.beta(2.0, 4.0, n) + 0.15 * (score < 600), 0.0, 1.0)
    spend = 3 * income * rng.lognormal(np.log(0.45 + 0.05 * seg), 0.35)
    travel = np.clip(rng.beta(1.2, 12.0, n) * (1 + 0.4 * seg), 0.0, 0.95)

    settled = np.isin(st, (_FAMILY, _ESTABLISHED, _RETIRED))
    savings = _bernoulli(rng, sigmoid(-0.6 + 0.5 * seg + 0.3 * settled))
    invests = _bernoulli(rng, sigmoid(-2.2 + 0.9 * seg + 0.02 * (age - 40)))
    p_mortgage = np.array([0.01, 0.15, 0.55, 0.50, 0.20])[st.astype(np.int64)]
    mortgage = _bernoulli(rng, np.clip(p_mortgage * (1 + 0.1 * seg), 0.0, 0.95))
    p_loan = 0.16 + 0.08 * np.isin(st, (_YOUNG, _FAMILY)) - 0.02 * seg
    loan = _bernoulli(rng, p_loan)
    products = 1 + card + savings + invests + mortgage + loan + rng.poisson(0.3, n)

    c["tenure_months"] = tenure
    c["direct_deposit"] = direct_deposit
    c["credit_score"] = score
    c["owns_credit_card"], c["card_limit"] = card, card * limit
    c["credit_utilization"] = card * np.round(util, 3)
    c["spend_90d"] = _money(spend)
    c["travel_spend_share"] = np.round(travel, 3)
    c["balance_checking"] = _money(income * rng.lognormal(math.log(0.8), 0.7, n))
    c["owns_savings"] = savings
    saved = _money(income * rng.lognormal(math.log(3.0), 0.9, n))
    c["balance_savings"] = savings * saved
    c["has_investments"] = invests
    invested = _money(income * rng.lognormal(math.log(8.0), 1.0, n))
    c["investment_balance"] = invests * invested
    c["owns_mortgage"], c["has_personal_loan"] = mortgage, loan
    c["loan_balance"] = loan * _money(rng.lognormal(math.log(8000.0), 0.6, n))
    c["num_products"] = np.minimum(products, 10)


def _digital(c: dict[str, F64], n: int, rng: np.random.Generator) -> None:
    age, seg = c["age"], c["segment"]
    ones = np.ones(n)
    p_desktop = np.clip(0.08 + 0.006 * (age - 18), 0.08, 0.5)
    p_ios = (0.95 - p_desktop) * (0.42 + 0.12 * (seg >= _GOLD))
    device_p = np.column_stack([p_ios, 0.95 - p_desktop - p_ios, p_desktop, 0.05 * ones])
    device = _categorical(rng, device_p, n)
    p_app = np.array([0.85, 0.85, 0.4, 0.3])[device.astype(np.int64)] - 0.003 * (age - 18)
    app = _bernoulli(rng, np.clip(p_app, 0.05, 0.95))
    old = np.clip((age - 18) / 60, 0.0, 1.0)
    channel_p = np.where(
        app[:, None] == 1,
        np.column_stack([0.25 * ones, 0.45 - 0.2 * old, 0.15 + 0.2 * old, 0.15 * ones]),
        np.column_stack([0.55 - 0.2 * old, 0.0 * ones, 0.40 + 0.2 * old, 0.05 * ones]),
    )
    preferred = _categorical(rng, channel_p, n)
    # A latent engagement level drives visits, sessions and logins.
    engagement = rng.gamma(2.0, 0.5, n)
    last_login = np.minimum(np.round(rng.exponential(12 / (engagement + 0.2))), 365)
    open_a = 1.5 + 1.5 * (preferred == _EMAIL) + 0.8 * old
    support = rng.poisson(0.35 + 0.3 * (c["credit_utilization"] > 0.7), n)
    churn = (
        -0.6
        - 0.012 * np.minimum(c["tenure_months"], 240)
        + 0.03 * last_login
        + 0.5 * support
        - 0.3 * (c["num_products"] - 1)
        - 0.5 * c["direct_deposit"]
        + rng.normal(0.0, 0.5, n)
    )
    c["device"], c["app_installed"], c["preferred_channel"] = device, app, preferred
    c["visits_90d"] = rng.poisson(engagement * (8 + 20 * app)).astype(np.float64)
    c["app_sessions_30d"] = app * rng.poisson(engagement * 12)
    c["days_since_last_login"] = last_login
    c["email_open_rate"] = np.round(rng.beta(open_a, 6.0), 3)
    c["support_calls_90d"] = support.astype(np.float64)
    c["churn_score"] = np.round(sigmoid(churn), 4)


def _recent_visits(c: dict[str, F64], n: int, rng: np.random.Generator) -> None:
    """What the channels' visit events add up to (the catalog computes these from events):
    visits arrive as a Poisson process at the customer's 90-day rate, so the last 7 days hold
    Poisson(7 x rate) of them, and the last one lies uniformly within those days, or, with none,
    an exponential wait further back; 90 days (the catalog's default) means none in 90 days.
    Drawn after every other column, so those stay as they were."""
    rate = c["visits_90d"] / 90.0  # per day
    week = rng.poisson(7.0 * rate)
    latest = 7.0 * rng.beta(1.0, np.maximum(week, 1).astype(np.float64))  # min of `week` uniforms
    older = 7.0 + rng.exponential(1.0 / np.maximum(rate, 1e-9))
    c["visits_7d"] = week.astype(np.float64)
    since = np.where(week > 0, latest, np.minimum(older, RECENT_DEFAULT))
    c["days_since_visit"] = np.asarray(np.round(since, 3), dtype=np.float64)


# UTC offsets (hours) of the customers' homes and their shares: most at home (UTC+1), some
# across the borders, a few abroad.
_UTC_OFFSETS = {1.0: 0.62, 0.0: 0.16, 2.0: 0.12, -5.0: 0.05, 8.0: 0.05}


def _time_zones(c: dict[str, F64], n: int, rng: np.random.Generator) -> None:
    """Where the customer lives (``utc_offset``): when to reach them, not what they want.
    Drawn after every other column, so those stay as they were."""
    offsets = np.array(list(_UTC_OFFSETS))
    c["utc_offset"] = offsets[rng.choice(offsets.size, size=n, p=list(_UTC_OFFSETS.values()))]


def sample_columns(n: int, rng: np.random.Generator) -> dict[str, F64]:
    """Draw every known feature for ``n`` customers.

    Returns:
        feature name -> float64 column of length ``n``; categories are codes
        into ``CATEGORY_VALUES[name]``, bools 0/1, ints whole numbers.
    """
    columns: dict[str, F64] = {}
    _demographics(columns, n, rng)
    _banking(columns, n, rng)
    _digital(columns, n, rng)
    _recent_visits(columns, n, rng)
    _time_zones(columns, n, rng)
    return columns
