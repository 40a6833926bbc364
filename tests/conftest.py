"""Shared fixtures: a small inline catalog for precise assertions, and the demo catalog."""

from collections.abc import Callable
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pytest
from decision_engine import Engine, LoadedCatalog, load_catalog, parse_catalog

from seeds.generator import DEMO_CATALOG, generate_profiles
from tests.clock import NOW

# Four features: (age, spend, owns_card, segment); segment codes 0..3 = bronze..platinum.
INLINE_YAML = """\
version: 1
features:
  - {name: age, type: int}
  - {name: spend, type: float}
  - {name: owns_card, type: bool}
  - {name: segment, type: category, values: [bronze, silver, gold, platinum]}
channels: [web, email, push]
placements:
  - {id: hero, channel: web, slots: 1}
  - {id: feed, channel: web, slots: 3}
  - {id: mail, channel: email, slots: 2, policy: {type: thompson, alpha: 2.0, beta: 3.0}}
offers:
  - id: gold_card
    placements: [hero, feed]
    value: 2.0
    rule: 'age >= 21 && segment in ["gold", "platinum"] && !owns_card'
    group: cards
  - id: silver_card
    placements: [hero, feed]
    rule: 'segment == "silver" || (spend > 1000 && age >= 18)'
    group: cards
  - id: loan
    placements: [hero, feed, mail]
    rule: 'age >= 25 && spend * 2 < 5000'
  - id: newsletter
    placements: [feed, mail]
    consent: email
  - id: push_promo
    placements: [feed]
    consent: push
  - id: summer
    placements: [feed]
    active_from: 2024-06-01T00:00:00Z
    active_to: 2024-09-01T00:00:00Z
  - id: future
    placements: [feed]
    active_from: 2030-01-01T00:00:00Z
  - id: dud
    placements: [hero, feed, mail]
    weight: 0.0
"""

# An adult gold customer without a card who spends 2000: gold_card, silver_card (spend > 1000)
# and loan are eligible; with email consent so is newsletter.
GOLD_ADULT = {"age": 30, "spend": 2000.0, "owns_card": False, "segment": "gold"}


@pytest.fixture(scope="session")
def inline_yaml() -> str:
    return INLINE_YAML


@pytest.fixture(scope="session")
def inline_catalog() -> LoadedCatalog:
    return parse_catalog(INLINE_YAML, "inline.yaml")


@pytest.fixture
def make_inline_engine(inline_catalog: LoadedCatalog) -> Callable[[int], Engine]:
    """A fresh engine over the inline catalog, with the given seed."""
    return lambda seed: Engine(inline_catalog, seed=seed, clock="simulated")


@pytest.fixture
def engine(make_inline_engine: Callable[[int], Engine]) -> Engine:
    return make_inline_engine(7)


@pytest.fixture
def row() -> Callable[..., npt.NDArray[np.float32]]:
    """row(age, spend, owns_card, segment_code) -> an inline-catalog feature vector."""

    def make(age: float = 30, spend: float = 2000, owns_card: float = 0, segment: float = 2):
        return np.array([age, spend, owns_card, segment], dtype=np.float32)

    return make


@pytest.fixture
def gold_adult() -> dict[str, object]:
    return dict(GOLD_ADULT)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def demo_catalog() -> LoadedCatalog:
    return load_catalog(DEMO_CATALOG)


@pytest.fixture
def make_demo_engine(demo_catalog: LoadedCatalog) -> Callable[[int], Engine]:
    return lambda seed: Engine(demo_catalog, seed=seed, clock="simulated")


@pytest.fixture
def demo_engine(make_demo_engine: Callable[[int], Engine]) -> Engine:
    return make_demo_engine(11)


@pytest.fixture(scope="session")
def demo_profiles() -> npt.NDArray[np.float32]:
    """600 demo profiles: more than two 256-row chunks of the batch path."""
    profiles = generate_profiles(600, seed=5)
    profiles.setflags(write=False)
    return profiles
