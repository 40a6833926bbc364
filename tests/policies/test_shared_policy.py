"""A shared contextual policy (`shared: true`) over offer attributes, from a YAML catalog."""

import numpy as np
import pytest
from decision_engine import CatalogError, Engine, parse_catalog


def catalog(offers: str, policy: str = "{type: lin_ucb, alpha: 0.0, shared: true}"):
    return parse_catalog(
        f"""\
version: 1
features:
  - {{name: segment, type: category, values: [young, senior]}}
  - {{name: spend, type: float}}
channels: [web]
placements:
  - {{id: hero, channel: web, slots: 1, policy: {policy}}}
offers:
{offers}""",
        "shared.yaml",
    )


SPORTY = (
    "  - {id: trainers, placements: [hero], attributes: {style: sporty, price: 80}}\n"
    "  - {id: sneakers, placements: [hero], attributes: {style: sporty, price: 120}}\n"
)
CLASSIC = (
    "  - {id: loafers, placements: [hero], attributes: {style: classic, price: 80}}\n"
    "  - {id: brogues, placements: [hero], attributes: {style: classic, price: 120}}\n"
)
NEW_SPORTY = "  - {id: running_cap, placements: [hero], attributes: {style: sporty, price: 100}}\n"
STYLE = {"trainers": "sporty", "sneakers": "sporty", "loafers": "classic", "brogues": "classic"}


def liked(segment: int, style: str) -> float:
    """Young customers buy sporty things, seniors classic ones."""
    return 0.7 if (segment == 0) == (style == "sporty") else 0.1


def test_a_new_offer_starts_from_what_offers_like_it_learned():
    engine = Engine(catalog(SPORTY + CLASSIC), seed=2, clock="simulated")
    rng = np.random.default_rng(4)
    for _ in range(1500):
        segment = int(rng.integers(2))
        decision = engine.decide("hero", np.array([segment, rng.normal(300, 80)], np.float32))
        (offer,) = decision.offer_ids
        engine.report_outcome(decision.decision_id, reward=float(rng.random() < liked(segment, STYLE[offer])))
    # The catalog gains a sporty offer nobody has seen. Against the classic offers alone
    # it wins for young customers and loses for seniors, from its first decision on.
    engine.apply_catalog(catalog(SPORTY + CLASSIC + NEW_SPORTY))
    sporty_shown = ["trainers", "sneakers"]
    young = engine.decide("hero", np.array([0, 300.0], np.float32), exclude=sporty_shown)
    senior = engine.decide("hero", np.array([1, 300.0], np.float32), exclude=sporty_shown)
    assert young.offer_ids == ["running_cap"], young.offer_ids
    assert STYLE[senior.offer_ids[0]] == "classic", senior.offer_ids
    states = {s.offer_id: s for s in engine.policy_state("hero")}
    assert states["running_cap"].pulls == 0


def test_offer_attributes_must_agree_in_kind():
    mixed = SPORTY + "  - {id: loafers, placements: [hero], attributes: {style: 3}}\n"
    with pytest.raises(
        CatalogError, match=r"shared.yaml:\d+:\d+: placement 'hero': offer 'loafers' attribute 'style'"
    ):
        Engine(catalog(mixed), seed=1, clock="simulated")


def test_only_contextual_policies_are_shared():
    with pytest.raises(CatalogError, match="shared"):
        catalog(SPORTY + CLASSIC, policy="{type: thompson, shared: true}")
