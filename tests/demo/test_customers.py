"""The demo's customer plane: profiles loaded once, consents and past visits as events, the
computed attributes starting where the population says; arrivals decided by id."""

from __future__ import annotations

import numpy as np
from decision_engine import Engine
from decision_engine.catalog import load_catalog
from decision_engine.cli.demo_baselines import Simulation
from decision_engine.cli.demo_customers import CustomerPlane, customer_id, without_caps

from seeds.generator import DEMO_CATALOG
from tests.clock import NOW_SECONDS

CUSTOMERS = 1_500


def test_the_store_starts_where_the_population_is() -> None:
    catalog = load_catalog(DEMO_CATALOG)
    engine = Engine(without_caps(catalog), seed=1, clock="simulated")
    sim = Simulation.build(engine, DEMO_CATALOG, CUSTOMERS, 5, "rich")
    plane = CustomerPlane.load(engine, sim, NOW_SECONDS, 5)
    assert plane.tracks_visits and plane.profiles == CUSTOMERS == engine.profile_count
    consents = int(sim.consents[:, [engine.channels.index(c) for c in engine.consent_channels]].sum())
    assert plane.events > consents > 0  # consents, then past visits
    stored = [engine.profile(customer_id(c), now=NOW_SECONDS) for c in range(CUSTOMERS)]
    assert all(p is not None for p in stored)

    def column(name: str) -> tuple[np.ndarray, np.ndarray]:
        got = [p["features"][name] for p in stored if p is not None]
        return np.array(got, dtype=np.float64), sim.profiles[:, engine.feature_names.index(name)]

    visits, drawn = column("visits_7d")
    # the 7-day window moves in buckets: a visit at its very edge may count or not
    assert np.abs(visits - drawn).max() <= 1 and np.mean(visits == drawn) > 0.99
    assert visits.sum() > CUSTOMERS  # the week holds visits
    since, drawn = column("days_since_visit")
    assert np.allclose(since, drawn, atol=1e-3) and (since < 90).mean() > 0.9
    for c, profile in enumerate(stored):
        assert profile is not None
        granted = {ch for ch in engine.consent_channels if sim.consents[c, engine.channels.index(ch)]}
        assert set(profile["consents"]) == granted
        age = profile["features"]["age"]
        assert age == sim.profiles[c, engine.feature_names.index("age")]


def test_without_caps_keeps_groups_and_purchase_suppression() -> None:
    catalog = load_catalog(DEMO_CATALOG)
    policy = catalog.model.contact_policy
    assert policy is not None and policy.caps and policy.cooldown_after_conversion is not None
    relaxed = without_caps(catalog).model.contact_policy
    assert relaxed is not None and relaxed.caps == () and relaxed.cooldown_after_conversion is None
    assert relaxed.cooldown_after_dismissal is None
    assert (relaxed.max_per_group, relaxed.suppress_purchased) == (policy.max_per_group, True)
    assert catalog.model.contact_policy == policy  # the catalog given is left as it was


def test_arrivals_visit_and_are_decided_by_id() -> None:
    engine = Engine(without_caps(load_catalog(DEMO_CATALOG)), seed=1, clock="simulated")
    sim = Simulation.build(engine, DEMO_CATALOG, 50, 5, "rich")
    plane = CustomerPlane.load(engine, sim, NOW_SECONDS, 5)
    loaded, before = plane.events, engine.profile(customer_id(7), now=NOW_SECONDS + 60)
    assert before is not None
    plane.visit(7, "web", NOW_SECONDS + 10, 0)
    plane.visit(7, "email", NOW_SECONDS + 20, 1)  # an email send is no visit
    after = engine.profile(customer_id(7), now=NOW_SECONDS + 60)
    assert after is not None and plane.events == loaded + 1
    assert after["features"]["visits_7d"] == before["features"]["visits_7d"] + 1
    assert abs(after["features"]["days_since_visit"] - 50 / 86_400) < 1e-6
    decision = engine.decide("web_home_hero", None, profile_id=customer_id(7), now=NOW_SECONDS + 60)
    assert decision.placement == "web_home_hero"
