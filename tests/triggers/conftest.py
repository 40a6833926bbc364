"""Fixtures for triggers: a catalog with an email placement, a channel cap and a profile
store, each test adding the triggers it is about; engines on a simulated clock driven by
explicit `fire_due(now)` calls."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pytest
from decision_engine import Engine, LoadedCatalog, parse_catalog

from tests.clock import NOW_SECONDS

MINUTE = 60.0
HOUR = 3_600.0
# A UTC midday: outside the quiet hours of the tests (22:00-08:00 local) at offset 0.
T0 = NOW_SECONDS + 12 * HOUR

BASE_YAML = """\
version: 1
features:
  - {name: segment, type: category, values: [basic, gold], default: gold}
  - {name: utc_offset, type: float, default: 0}
channels: [web, email, push]
placements:
  - {id: hero, channel: web}
  - {id: email_cart, channel: email}
  - {id: email_news, channel: email}
offers:
  - {id: cart_reminder, placements: [email_cart], value: 2.0}
  - {id: newsletter, placements: [email_news]}
  - {id: banner, placements: [hero]}
contact_policy:
  caps:
    - {scope: channel, channel: email, max: 1, window: 1d}
events:
  - {type: purchase, purchase: product}
"""

CART_ABANDONED = """\
  - id: cart_abandoned
    event: cart_add
    properties: [{name: cart_value, type: float}]
    filter: 'cart_value >= 20'
    key: cart_id
    delay: 30m
    cancel_on: [{event: purchase, key: cart_id}]
    placement: email_cart
"""


def catalog(*triggers: str, extra: str = "") -> LoadedCatalog:
    """The base catalog with these `triggers:` entries (YAML list items, indented by two)."""
    return parse_catalog(BASE_YAML + extra + "triggers:\n" + "".join(triggers), "triggers.yaml")


def engine_with(*triggers: str, **options: object) -> Engine:
    return Engine(catalog(*triggers), seed=7, clock="simulated", **options)  # type: ignore[arg-type]


def customer(engine: Engine, profile_id: str = "p1", **features: object) -> None:
    """A stored profile with email consent (email is outbound: it needs it)."""
    row = {"id": profile_id, "consents": ["email"], **features}
    report = engine.upsert_profiles([row], now=T0 - HOUR)
    assert report.accepted == 1, report.rejected


class Events:
    """Tracks events with fresh ids."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    def __call__(self, kind: str, time: float, profile_id: str = "p1", **properties: object) -> None:
        self.count += 1
        event = {"id": f"e{self.count}", "profile_id": profile_id, "type": kind, "time": time}
        report = self.engine.track([{**event, "properties": properties}])
        assert report.accepted == 1, report.rejected


def outcomes(engine: Engine, profile_id: str = "p1") -> list[str]:
    return [entry["outcome"] for entry in engine.trigger_history(profile_id)]


def poll(engine: Engine, now: float, channel: str = "email", **options: object) -> list[dict[str, object]]:
    return engine.poll_deliveries(channel, now=now, **options)  # type: ignore[arg-type]


def ids(deliveries: Iterable[Mapping[str, object]]) -> list[object]:
    return [d["decision_id"] for d in deliveries]


@pytest.fixture
def make_engine() -> Callable[..., Engine]:
    return engine_with
