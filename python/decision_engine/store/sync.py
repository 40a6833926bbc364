"""The Redis store's background work, on one daemon thread:

- every `flush_interval`: push this server's policy-statistic increments
  (`take_policy_delta`) to a Redis stream and apply every other server's entries since the
  last read; a server that starts reads the stream from its beginning;
- every tick (50 ms): apply the outcomes and releases other servers received for this
  server's decisions (its inbox), since only the engine that decided holds their context;
- while Redis is unavailable: probe it; once it answers, replay the buffered writes in
  order, then report healthy again; replay whatever a request buffered meanwhile (while the
  store still looked degraded to it) on the next tick.

Only a Redis outage degrades the store. Anything else that goes wrong in a tick (a message
or a statistic that cannot be applied, a health listener's bug, a command Redis refuses) is
logged and counted (`errors`), and the thread goes on.
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
from decision_engine.store.health import Health
from decision_engine.store.keys import Keys
from decision_engine.store.writes import Scripts, StoreCommandError, Write, refused

__all__ = ["ReplayBuffer", "Syncer"]

log = logging.getLogger("decision_engine.store")

TICK = 0.05  # seconds between inbox reads
PROBE_EVERY = 0.25  # seconds between reconnection attempts
INBOX_BATCH = 512
DELTA_STREAM_LENGTH = 100_000  # entries kept (approximately) for servers that join later
MAX_UNSENT_DELTAS = 10_000


class ReplayBuffer:
    """Writes made while Redis was away, in order; bounded (the oldest go first, counted in
    `dropped`). A write Redis refuses on replay is dropped and counted in `refused`."""

    def __init__(self, limit: int) -> None:
        self._writes: deque[Write] = deque()
        self._limit = limit
        self._lock = threading.Lock()
        self.dropped = 0
        self.refused = 0

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
        A write the script turns down (its decision expired, say) is logged and dropped; so
        is one Redis refuses (a script error, WRONGTYPE), which would fail on every try."""
        done = 0
        while True:
            with self._lock:
                if not self._writes:
                    return done
                write = self._writes[0]
            try:
                result = scripts.run(write)  # raises on a connection error: the write stays first
            except StoreCommandError as exc:
                log.error("buffered write refused by redis; dropped", extra={"error": str(exc)})
                self.refused += 1
            else:
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
        health: Health,
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
        self.health = health
        self.apply_forwarded = apply_forwarded
        self.stopping = threading.Event()
        self.unsent: deque[str] = deque(maxlen=MAX_UNSENT_DELTAS)
        self.deltas_dropped = 0  # unsent increments the bound pushed out (a long outage)
        self.last_delta_id = "0"
        self.deltas_applied = 0
        self.errors = 0  # failures other than an outage, logged with their traceback
        self._next_flush = self._next_probe = 0.0
        self.engine._core.take_policy_delta()  # starts tracking: the first call returns nothing

    def run(self) -> None:
        self._next_flush = self._next_probe = time.monotonic()
        while not self.stopping.wait(TICK):
            try:
                self.tick(time.monotonic())
            except redis.RedisError as exc:
                if refused(exc):
                    self._failed("redis refused a command of the background work")
                else:
                    self.health.degrade(exc)
            except Exception:
                self._failed("background work failed; going on")

    def tick(self, now: float) -> None:
        """One round of the background work; raises what stops it (the loop sorts it out)."""
        flush = now >= self._next_flush
        if flush:
            self._next_flush = now + self.flush_interval
            self._take_delta()
        if not self.health.healthy:
            if now < self._next_probe:
                return
            self._next_probe = now + PROBE_EVERY
            self.client.ping()
            self.buffer.replay(self.scripts)
            self.health.recover(
                {
                    "dropped": self.buffer.dropped,
                    "refused": self.buffer.refused,
                    "deltas_dropped": self.deltas_dropped,
                }
            )
        if len(self.buffer):  # buffered by a request that still saw the store degraded
            self.buffer.replay(self.scripts)
        self.drain_inbox()
        if flush:
            self.exchange_deltas()

    def _failed(self, message: str) -> None:
        """Logs the exception being handled (with its traceback) and counts it."""
        self.errors += 1
        log.exception(message, extra={"errors": self.errors})

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
            if len(self.unsent) == self.unsent.maxlen:
                self.deltas_dropped += 1  # the oldest goes: logged when Redis is back
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
                if int(fields["server"]) == self.ids.worker:
                    continue
                try:  # one that cannot be applied (say, after a catalog reload) is skipped
                    self.engine._core.apply_policy_delta(fields["delta"])
                except Exception:
                    self._failed("policy statistics of another server not applied")
                else:
                    self.deltas_applied += 1

    def drain_inbox(self) -> None:
        """Applies outcomes and releases of this server's decisions received elsewhere."""
        while True:
            items: Any = self.client.lpop(self.keys.inbox(self.ids.worker), INBOX_BATCH)
            for item in items or ():
                try:  # one message that cannot be applied must not lose the rest of the batch
                    self.apply_forwarded(json.loads(item))
                except Exception:
                    self._failed("forwarded outcome or release not applied")
            if not items or len(items) < INBOX_BATCH:
                return
