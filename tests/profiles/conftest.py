"""Fixtures for the profile plane: a catalog with stored and computed features, events that
grant and revoke consent and record purchases, and engines on a simulated clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from decision_engine import Engine, LoadedCatalog, parse_catalog

from tests.clock import DAY, NOW_SECONDS

PROFILE_YAML = """\
version: 1
features:
  - {name: age, type: int, default: 35}
  - {name: spend, type: float, default: 0}
  - {name: vip, type: bool, default: false}
  - {name: segment, type: category, values: [basic, gold], default: basic}
  - name: cart_adds_7d
    type: int
    computed: {event: cart_add, aggregate: count, window: 7d}
  - name: spend_30d
    type: float
    computed: {event: purchase, aggregate: sum, property: amount, window: 30d}
  - name: last_cart_value
    type: float
    default: 0
    computed: {event: cart_add, aggregate: last, property: value}
  - name: days_since_purchase
    type: float
    default: 9999
    computed: {event: purchase, aggregate: time_since, unit: days}
channels: [web, email]
placements:
  - {id: hero, channel: web, slots: 1}
  - {id: feed, channel: web, slots: 3}
  - {id: mail, channel: email, slots: 1}
offers:
  - {id: gold_offer, placements: [hero, feed], value: 3.0, rule: 'segment == "gold"'}
  - {id: cart_nudge, placements: [hero, feed], value: 2.0, rule: 'cart_adds_7d >= 2'}
  - {id: winback, placements: [hero, feed], rule: 'days_since_purchase > 30'}
  - {id: shoes, placements: [hero, feed], product: shoes}
  - {id: basic, placements: [hero, feed, mail], weight: 0.5}
  - {id: newsletter, placements: [mail]}
contact_policy:
  suppress_purchased: true
events:
  - {type: purchase, purchase: product}
  - {type: email_opt_in, grant: email}
  - {type: email_opt_out, revoke: email}
profiles:
  unknown: not_found
"""

T0 = NOW_SECONDS  # the simulated present of the tests


def at(days: float) -> float:
    """Unix seconds `days` after T0."""
    return T0 + days * DAY


@pytest.fixture(scope="session")
def profile_catalog() -> LoadedCatalog:
    return parse_catalog(PROFILE_YAML, "profiles.yaml")


@pytest.fixture(scope="session")
def defaults_catalog() -> LoadedCatalog:
    """The same catalog, a never-seen id getting the declared defaults."""
    return parse_catalog(PROFILE_YAML.replace("unknown: not_found", "unknown: defaults"), "defaults.yaml")


@pytest.fixture
def make_engine(profile_catalog: LoadedCatalog) -> Callable[..., Engine]:
    return lambda seed=7, **options: Engine(profile_catalog, seed=seed, clock="simulated", **options)


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()
