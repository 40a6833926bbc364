"""A real redis-server per test (never a mock), and a catalog with caps and budgets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from decision_engine import Engine
from decision_engine.store import RedisStore, open_store

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
  flush_interval: 1s
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
def two_stores(catalog_file: Path) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two servers (engines with their Redis store) in this process."""
    stores = [open_store(Engine(catalog_file, seed=seed, clock="simulated")) for seed in (1, 2)]
    try:
        yield stores[0], stores[1]  # type: ignore[misc]
    finally:
        for store in stores:
            if store is not None:
                store.close()
