"""A real redis-server per test (never a mock), a catalog with caps and budgets, and two engines
sharing their state through it (two servers, in this process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from decision_engine import Engine

from tests.store.redis_server import RedisServer

# One feature; `hero` (web, 1 slot), `mail` (email, 2 slots), `banner` (app, 1 slot). Caps:
# 3 contacts per profile per day on the web (fails open), at most 2 offers of group `cards`
# (fails closed). `loan` has a shared budget of 25 impressions per day, first come first
# served; on `banner` it is the only offer.
CATALOG = """\
version: 1
features:
  - {name: age, type: int}
channels: [web, {id: email, consent: not_required}, app]   # shared caps here; consent in tests/contact
placements:
  - {id: hero, channel: web, slots: 1}
  - {id: mail, channel: email, slots: 2}
  - {id: banner, channel: app, slots: 1}
offers:
  - {id: gold_card, placements: [hero, mail], group: cards}
  - {id: silver_card, placements: [hero, mail], group: cards}
  - {id: loan, placements: [hero, banner], budget: {max: 25, window: 1d, pacing: none}}
  - {id: savings, placements: [hero, mail]}
contact_policy:
  caps:
    - {scope: channel, channel: web, max: 3, window: 1d}
    - {scope: group, group: cards, max: 2, window: 1d, when_store_unavailable: closed}
  cooldown_after_conversion: 1h
store:
  type: redis
  url: {url}
  key_prefix: {prefix}
  timeout_ms: 200
"""


def catalog_yaml(url: str, prefix: str = "test") -> str:
    return CATALOG.replace("{url}", url).replace("{prefix}", prefix)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def catalog_file(tmp_path: Path, redis_server: RedisServer) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(catalog_yaml(redis_server.url), encoding="utf-8")
    return path


@pytest.fixture
def two_engines(catalog_file: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two servers of the catalog's Redis store: engines on the simulated clock."""
    a, b = (Engine(catalog_file, seed=seed, clock="simulated") for seed in (1, 2))
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def pulls(engine: Engine, *placements: str) -> float:
    """Outcomes the engine's policies learned on these placements."""
    return sum(arm.pulls for p in placements for arm in engine.policy_state(p))
