"""How an Engine picks its store: the catalog's `store:` section, `store_url=` over it, and the
combinations it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from decision_engine import Engine, parse_catalog
from decision_engine.errors import InvalidInputError, StorageError

from tests.store.conftest import CATALOG
from tests.store.redis_server import RedisServer, free_port

EMBEDDED = CATALOG[: CATALOG.index("store:")]  # the same catalog, its store left to the default


def test_store_url_puts_an_embedded_catalog_on_redis_with_the_default_prefix(
    redis_server: RedisServer,
) -> None:
    engine = Engine(parse_catalog(EMBEDDED, "embedded.yaml"), store_url=redis_server.url)
    try:
        assert engine.shared_store is not None
        assert (engine.shared_store.key_prefix, engine.shared_store.timeout_ms) == ("decision-engine", 50)
        assert engine.decide("banner", [30.0]).offer_ids == ["loan"]
        assert redis_server.client().keys("decision-engine:{b:loan}:*")
    finally:
        engine.close()


def test_store_url_overrides_the_catalogs_url_and_keeps_its_settings(
    catalog_file: Path, redis_server: RedisServer
) -> None:
    directory = catalog_file.parent / "moved"
    directory.mkdir()
    moved = RedisServer(directory)
    moved.start()
    try:
        engine = Engine(catalog_file, store_url=moved.url)
        try:
            assert engine.shared_store is not None
            assert (engine.shared_store.key_prefix, engine.shared_store.timeout_ms) == ("test", 200)
            assert engine.decide("banner", [30.0]).offers
            assert moved.client().keys("test:*") and not redis_server.client().keys("test:*")
        finally:
            engine.close()
    finally:
        moved.stop()


def test_an_engine_keeps_its_state_in_one_place(catalog_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not both"):
        Engine(catalog_file, state_dir=tmp_path / "state")
    with pytest.raises(InvalidInputError, match="profile_store"):
        Engine(catalog_file, profile_store="redis://127.0.0.1:6379/0")


def test_an_unreachable_or_malformed_store_fails_the_engine_at_once() -> None:
    with pytest.raises(StorageError, match="connect"):
        Engine(parse_catalog(EMBEDDED, "embedded.yaml"), store_url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(InvalidInputError, match=r"redis URL 'http://127\.0\.0\.1:6379'"):
        Engine(parse_catalog(EMBEDDED, "embedded.yaml"), store_url="http://127.0.0.1:6379")


def test_an_embedded_engine_has_no_store_to_watch() -> None:
    engine = Engine(parse_catalog(EMBEDDED, "embedded.yaml"))
    assert engine.shared_store is None and engine.store_health() is None
    assert engine.sync_store() == 0
    engine.close()
    engine.close()
