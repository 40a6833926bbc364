"""The engine assigns experiment groups exactly as decision_engine.experiments does, and a
holdout gets the non-personalized default."""

import numpy as np
from decision_engine import Engine, parse_catalog
from decision_engine.experiments.assignment import Experiment, Layer

CATALOG = """
version: 1
features: [{name: age, type: int}]
channels: [web]
placements:
  - {id: hero, channel: web, slots: 1}
  - {id: side, channel: web, slots: 1}
offers:
  - {id: rich, placements: [hero, side], value: 10}
  - {id: cheap, placements: [hero, side], value: 1}
experiments:
  - id: holdout
    layer: global
    traffic: 0.6
    groups:
      - {name: holdout, share: 0.1, treatment: default}
      - {name: personalized, share: 0.9}
  - id: banner_test
    layer: global
    traffic: 0.3
    placements: [side]
    groups:
      - {name: A, share: 0.5}
      - {name: B, share: 0.5, policy: {type: thompson, alpha: 1, beta: 9}}
"""


def test_engine_groups_match_the_python_assignment():
    engine = Engine(parse_catalog(CATALOG), seed=3, clock="simulated")
    holdout = Experiment.create("holdout", {"holdout": 1000, "personalized": 9000}, layer="global")
    banner = Experiment.create("banner_test", {"A": 5000, "B": 5000}, layer="global")
    layer = Layer.allocate("global", [(holdout, 6000), (banner, 3000)])
    row = np.array([40.0], np.float32)
    seen = set()
    for i in range(3000):
        profile = f"customer-{i}"
        expected = layer.assign(profile)
        decision = engine.decide("side", row, profile_id=profile)
        got = [(e, g) for e, g in decision.experiments]
        assert got == ([] if expected is None else [(expected.experiment, expected.group)]), profile
        seen.update(got)
        if got == [("holdout", "holdout")]:
            assert decision.offer_ids == ["rich"] and decision.offers[0].propensity == 1.0
    assert len(seen) == 4, "every group of both experiments occurs"


def test_experiments_apply_only_to_their_placements():
    engine = Engine(parse_catalog(CATALOG), seed=4, clock="simulated")
    row = np.array([40.0], np.float32)
    groups = {e for i in range(500) for e, _ in engine.decide("hero", row, profile_id=f"x{i}").experiments}
    assert groups == {"holdout"}
    assert engine.decide("hero", row).experiments == [], "no profile id, no experiment"
