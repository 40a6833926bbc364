"""Where the engine's state lives: the catalog's `store` section."""

from typing import Annotated, Literal

from pydantic import Field

from decision_engine.catalog.fields import Duration, Model

__all__ = ["EmbeddedStoreConfig", "RedisStoreConfig", "StoreConfig"]


class EmbeddedStoreConfig(Model):
    """In memory; with a `path`, every state change is journaled there and snapshotted."""

    type: Literal["embedded"] = "embedded"
    path: str | None = None
    # always: fsync before acknowledging; interval: fsync every fsync_interval_ms (a crash of
    # the process loses nothing, a power cut at most that long); never: leave it to the OS.
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_ms: Annotated[int, Field(ge=1)] = 100
    snapshot_every: Annotated[int, Field(ge=1)] = 100_000
    attribution_window: Duration = 7 * 24 * 3600


class RedisStoreConfig(Model):
    """Profiles, contact history, caps, budgets, pending decisions and learning shared by every
    server through one Redis (`redis://host:port/db`) or a Redis Cluster
    (`redis+cluster://host:port,host:port,...`), under keys starting with `key_prefix`."""

    type: Literal["redis"]
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "decision-engine"
    # A call slower than this counts as Redis being unavailable.
    timeout_ms: Annotated[int, Field(ge=1)] = 50
    attribution_window: Duration = 7 * 24 * 3600


StoreConfig = Annotated[EmbeddedStoreConfig | RedisStoreConfig, Field(discriminator="type")]
