"""A small catalog with every kind of contact rule, for precise assertions."""

from collections.abc import Callable

import pytest
from decision_engine import Engine, parse_catalog

CATALOG = """
version: 1
features:
  - {name: age, type: int}
channels: [web, {id: email, consent: not_required}, push]   # caps here, consent in test_consent.py
placements:
  - {id: hero, channel: web, slots: 2, policy: thompson}
  - {id: side, channel: web, slots: 2, policy: thompson}
  - {id: mail, channel: email, slots: 1, policy: thompson}
offers:
  - {id: card, placements: [hero, side], group: cards, product: card, value: 5}
  - {id: card_plus, placements: [hero, side], group: cards, value: 4}
  - {id: loan, placements: [hero, side, mail], value: 3, budget: {max: BUDGET, window: 1d, pacing: none}}
  - {id: news, placements: [hero, side, mail]}
contact_policy:
  caps:
    - {scope: channel, channel: email, max: 1, window: 1d}
    - {scope: all, max: 4, window: 7d}
    - {scope: offer, max: 2, window: 3d}
    - {scope: group, group: cards, max: 1, window: 2d}
  cooldown_after_conversion: 14d
  cooldown_after_dismissal: 3d
  suppress_purchased: true
  max_per_group: 1
"""


@pytest.fixture
def make_contact_engine() -> Callable[..., Engine]:
    def make(seed: int = 1, budget: int = 1000) -> Engine:
        return Engine(parse_catalog(CATALOG.replace("BUDGET", str(budget))), seed=seed, clock="simulated")

    return make
