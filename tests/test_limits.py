"""The engine's limits: time you can trust, bounded ids, pages, feature values and rewards.
Each limit is the core's (`_core.LIMITS`); these tests check that it holds and what a caller
is told past it."""

import time

import numpy as np
import pytest
from decision_engine import Engine, InvalidInputError, _core, parse_catalog

CATALOG = """
version: 1
features:
  - {name: age, type: int}
  - {name: spend, type: float}
channels: [web]
placements:
  - {id: hero, channel: web, slots: 1, policy: thompson}
  - {id: feed, channel: web, slots: 1, policy: {type: gaussian_thompson}}
  - {id: linear, channel: web, slots: 1, policy: {type: lin_ucb, rewards: [0, 500]}}
offers:
  - {id: a, placements: [hero, feed, linear], budget: {max: 3, window: 1d, pacing: none}}
contact_policy:
  caps: [{scope: all, max: 2, window: 7d}]
"""
ROW = {"age": 30, "spend": 100.0}
YEAR = 365 * 86_400.0


@pytest.fixture
def wall() -> Engine:
    return Engine(parse_catalog(CATALOG, "limits.yaml"), seed=1)


def test_limits_are_published_by_the_core():
    assert _core.LIMITS["max_profile_id_bytes"] == 256
    assert _core.LIMITS["max_rule_depth"] == 200
    assert _core.LIMITS["default_max_clock_skew_seconds"] == 300


def test_a_request_dated_a_year_ahead_changes_nothing(wall):
    now = time.time()
    shown = wall.decide("hero", ROW, profile_id="p", now=now)
    assert shown.offer_ids == ["a"]
    pending, history = wall.pending_decisions, wall.contact_history("p")
    for when in (now + YEAR, now - YEAR, now + 3_600):
        with pytest.raises(InvalidInputError, match="the server clock; a request's time may differ"):
            wall.decide("hero", ROW, profile_id="p", now=when)
        with pytest.raises(InvalidInputError, match="server clock"):
            wall.decide_batch("hero", np.array([[30, 100.0]], np.float32), now=when)
    assert wall.pending_decisions == pending, "no pending decision expired"
    assert wall.contact_history("p") == history, "history intact"
    assert wall.budget_usage("a")[0] == 1, "the budget window did not move"
    assert wall.decide("hero", ROW, profile_id="q", now=now + 60).offer_ids == ["a"], "within the skew"


def test_the_skew_is_a_setting_and_simulation_is_explicit():
    catalog = parse_catalog(CATALOG, "limits.yaml")
    strict = Engine(catalog, max_clock_skew=1.0)
    with pytest.raises(InvalidInputError, match="at most 1 s"):
        strict.decide("hero", ROW, now=time.time() - 30)
    simulated = Engine(catalog, clock="simulated")
    assert simulated.decide("hero", ROW, now=1_000.0).offer_ids == ["a"]
    with pytest.raises(InvalidInputError, match="clock must be 'wall' or 'simulated'"):
        Engine(catalog, clock="sundial")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("profile_id", "message"),
    [("", "profile id must not be empty"), ("x" * 257, "profile id is 257 bytes long; the limit is 256")],
)
def test_profile_ids_are_bounded_on_every_path(wall, profile_id, message):
    with pytest.raises(InvalidInputError, match=message):
        wall.decide("hero", ROW, profile_id=profile_id)
    rows = np.array([[30, 1.0], [31, 2.0]], np.float32)
    with pytest.raises(InvalidInputError, match=f"row 1: {message}"):
        wall.decide_batch("hero", rows, profile_ids=["ok", profile_id])
    assert wall.decide("hero", ROW, profile_id="x" * 256).offer_ids == ["a"]


def test_a_page_is_bounded(wall):
    with pytest.raises(InvalidInputError, match="at most 64 placements, got 65"):
        wall.decide_page(["hero"] * 65, ROW)


def test_feature_values_are_bounded(wall):
    with pytest.raises(InvalidInputError, match=r"feature 'spend': 1e38 is beyond the limit of \+-1e9"):
        wall.decide("linear", {"age": 30, "spend": 1e38})


def test_one_outcome_cannot_take_over_a_placement(wall):
    feed = wall.decide("feed", ROW)
    with pytest.raises(
        InvalidInputError, match=r"in \[-1000000, 1000000\] for placement 'feed' \(the default range"
    ):
        wall.report_outcome(feed.decision_id, 1e308)
    wall.report_outcome(feed.decision_id, 250.0)
    linear = wall.decide("linear", ROW)
    with pytest.raises(
        InvalidInputError, match=r"\[0, 500\] for placement 'linear' \(the policy's `rewards`\)"
    ):
        wall.report_outcome(linear.decision_id, 501.0)
    wall.report_outcome(linear.decision_id, 500.0)


def test_a_reward_range_is_checked_when_the_catalog_loads():
    bad = CATALOG.replace("rewards: [0, 500]", "rewards: [5, 1]")
    with pytest.raises(Exception, match=r"finite min < max, got \[5, 1\]"):
        Engine(parse_catalog(bad, "limits.yaml"))
