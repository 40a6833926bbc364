"""The Redis store's background work, on one daemon thread:

- every `flush_interval`: push this server's policy-statistic increments
  (`take_policy_delta`) to a Redis stream and apply every other server's entries since the
  last read; a server that starts reads the stream from its beginning;
- every tick (50 ms): apply the outcomes and releases other servers received for this
  server's decisions (its inbox), since only the engine that decided holds their context;
- while Redis is unavailable: probe it; once it answers, replay the buffered writes in
  order, then report healthy again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis

from decision_engine.engine import Engine
from decision_engine.ids import DecisionIds
from decision_engine.store.keys import Keys
from decision_engine.store.writes import Scripts, Write

__all__ = ["ReplayBuffer", "Syncer"]

log = logging.getLogger("decision_engine.store")

TICK = 0.05  # seconds between inbox reads
PROBE_EVERY = 0.25  # seconds between reconnection attempts
INBOX_BATCH = 512
DELTA_STREAM_LENGTH = 100_000  # entries kept (approximately) for servers that join later
MAX_UNSENT_DELTAS = 10_000


class ReplayBuffer:
    """Writes made while Redis was away, in order; bounded (the oldest go first, counted)."""

    def __init__(self, limit: int) -> None:
        self._writes: deque[Write] = deque()
        self._limit = limit
        self._lock = threading.Lock()
        self.dropped = 0

    def add(self, write: Write) -> None:
        with self._lock:
            if len(self._writes) >= self._limit:
                self._writes.popleft()
                self.dropped += 1
            self._writes.append(write)

    def __len__(self) -> int:
        return len(self._writes)

    def replay(self, scripts: Scripts) -> int:
        """Runs the writes in order; a connection error leaves the rest for the next try.
        A write Redis refuses (its decision expired, say) is logged and dropped."""
        done = 0
        while True:
            with self._lock:
                if not self._writes:
                    return done
                write = self._writes[0]
            result = scripts.run(write)  # raises on a connection error: the write stays first
            if result[0] != "ok":
                log.warning("buffered write refused", extra={"write": write.what, "result": result})
            with self._lock:
                if self._writes and self._writes[0] is write:
                    self._writes.popleft()
            done += 1


class Syncer(threading.Thread):
    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        keys: Keys,
        ids: DecisionIds,
        scripts: Scripts,
        buffer: ReplayBuffer,
        flush_interval: float,
        is_healthy: Callable[[], bool],
        on_error: Callable[[BaseException], None],
        on_recovered: Callable[[], None],
        apply_forwarded: Callable[[dict[str, str]], None],
    ) -> None:
        super().__init__(name="decision-engine-redis-sync", daemon=True)
        self.client = client
        self.engine = engine
        self.keys = keys
        self.ids = ids
        self.scripts = scripts
        self.buffer = buffer
        self.flush_interval = flush_interval
        self.is_healthy = is_healthy
        self.on_error = on_error
        self.on_recovered = on_recovered
        self.apply_forwarded = apply_forwarded
        self.stopping = threading.Event()
        self.unsent: deque[str] = deque(maxlen=MAX_UNSENT_DELTAS)
        self.last_delta_id = "0"
        self.deltas_applied = 0
        self.engine._core.take_policy_delta()  # starts tracking: the first call returns nothing

    def run(self) -> None:
        next_flush = next_probe = time.monotonic()
        while not self.stopping.wait(TICK):
            now = time.monotonic()
            flush = now >= next_flush
            if flush:
                next_flush = now + self.flush_interval
                self._take_delta()
            try:
                if not self.is_healthy():
                    if now < next_probe:
                        continue
                    next_probe = now + PROBE_EVERY
                    self.client.ping()
                    self.buffer.replay(self.scripts)
                    self.on_recovered()
                self.drain_inbox()
                if flush:
                    self.exchange_deltas()
            except redis.RedisError as exc:
                self.on_error(exc)

    def stop(self) -> None:
        """Stops the thread, then flushes what this server learned one last time."""
        self.stopping.set()
        self.join(timeout=5)
        self._take_delta()
        try:
            self.exchange_deltas()
        except redis.RedisError as exc:
            log.warning("final flush of policy statistics failed", extra={"error": str(exc)})

    def _take_delta(self) -> None:
        delta = self.engine._core.take_policy_delta()
        if any(s["arms"] for s in json.loads(delta)["sets"]):
            self.unsent.append(delta)

    def exchange_deltas(self) -> None:
        """Pushes this server's increments, then applies the others' since the last read."""
        while self.unsent:
            self.client.xadd(
                self.keys.deltas,
                {"server": self.ids.worker, "delta": self.unsent[0]},
                maxlen=DELTA_STREAM_LENGTH,
                approximate=True,
            )
            self.unsent.popleft()
        while True:
            read: Any = self.client.xread({self.keys.deltas: self.last_delta_id}, count=256)
            if not read:
                return
            for entry_id, fields in read[0][1]:
                self.last_delta_id = entry_id
                if int(fields["server"]) != self.ids.worker:
                    self.engine._core.apply_policy_delta(fields["delta"])
                    self.deltas_applied += 1

    def drain_inbox(self) -> None:
        """Applies outcomes and releases of this server's decisions received elsewhere."""
        while True:
            items: Any = self.client.lpop(self.keys.inbox(self.ids.worker), INBOX_BATCH)
            for item in items or ():
                self.apply_forwarded(json.loads(item))
            if not items or len(items) < INBOX_BATCH:
                return
