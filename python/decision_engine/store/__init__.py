"""Where the engine's state lives when it is shared: the Redis store.

The embedded store (in the engine, the default) needs nothing here. `open_store` picks the
store from the catalog's `store:` section, or from a `redis://` URL given on the command
line (`decision-engine serve --store redis://...`), which overrides the catalog's URL.
"""

from __future__ import annotations

from collections.abc import Callable

from decision_engine.catalog.store import RedisStoreConfig
from decision_engine.engine import Engine
from decision_engine.store.redis_store import RedisStore, SharedDecision
from decision_engine.store.writes import StoreCommandError

__all__ = ["RedisStore", "RedisStoreConfig", "SharedDecision", "StoreCommandError", "open_store"]


def open_store(
    engine: Engine, url: str | None = None, *, on_health: Callable[[bool], None] | None = None
) -> RedisStore | None:
    """A Redis store for `engine`, or None for the embedded default."""
    configured = engine.catalog.model.store
    if url is None:
        if not isinstance(configured, RedisStoreConfig):
            return None
        return RedisStore(engine, configured, on_health=on_health)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"a store URL is redis://host:port/db (or rediss://, unix://), got {url!r}")
    base = configured if isinstance(configured, RedisStoreConfig) else RedisStoreConfig(type="redis")
    return RedisStore(engine, base.model_copy(update={"url": url}), on_health=on_health)
