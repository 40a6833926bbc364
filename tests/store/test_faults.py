"""Redis stops under load and comes back: decisions go on, outcomes wait, the store recovers."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque

import pytest
from decision_engine.store import RedisStore
from decision_engine.store.writes import outcome_write, replayed

from tests.store.polling import wait_for
from tests.store.redis_server import RedisServer

CARDS = {"gold_card", "silver_card"}


class _Load(threading.Thread):
    """Decides for fresh profiles on `a` until stopped; counts decisions and errors."""

    def __init__(self, store: RedisStore) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.stopping = threading.Event()
        self.decided = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.stopping.is_set() and self.decided < 50_000:
            try:
                self.store.decide("hero", [30.0], profile_id=f"load-{self.decided}")
                self.decided += 1
            except BaseException as exc:
                self.errors.append(exc)
                return
            time.sleep(0.001)


def test_decisions_go_on_while_redis_is_down_and_the_store_recovers_by_itself(
    redis_server: RedisServer, two_stores: tuple[RedisStore, RedisStore]
) -> None:
    a, b = two_stores
    health: list[bool] = []
    a.watch_health(health.append)
    load = _Load(a)
    load.start()
    time.sleep(0.3)
    assert a.healthy and load.decided > 0

    redis_server.stop()
    before = load.decided
    assert wait_for(lambda: not a.healthy, 5), "degraded after the first failed call"
    # listeners are told right after the flag flips, from the thread that saw the change
    assert wait_for(lambda: health == [False], 5)
    # decisions keep coming, without waiting on Redis: the open web cap decides from this
    # server's own contacts, the closed `cards` cap leaves its offers out
    started = time.monotonic()
    outage = [a.decide("hero", [30.0], profile_id=f"outage-{i}", explain=True) for i in range(30)]
    assert time.monotonic() - started < 1.0
    assert all(d.offer_ids and not CARDS & set(d.offer_ids) for d in outage)
    assert all(d.reasons[c] == "excluded by the caller" for d in outage for c in CARDS)
    capped = [a.decide("hero", [30.0], profile_id="outage-cap").offer_ids for _ in range(5)]
    assert sum(map(len, capped)) == 3, "the open cap still counts what this server showed"
    # outcomes are acknowledged and buffered, on the deciding server and on another one
    for d in outage[:10]:
        a.report_outcome(d.decision_id, 1.0)
    for d in outage[10:20]:
        b.report_outcome(d.decision_id, 1.0)
    assert len(a.buffer) >= 10 and len(b.buffer) == 10
    assert wait_for(lambda: load.decided > before + 20, 5), "the load goes on"

    redis_server.start()  # same port, empty (no persistence)
    assert wait_for(lambda: a.healthy and b.healthy, 5), "recovered without help"
    assert wait_for(lambda: health == [False, True], 5)
    # the load may buffer a write while the recovery runs: it is replayed on the next tick
    assert wait_for(lambda: len(a.buffer) == 0 and len(b.buffer) == 0, 5)
    # every buffered outcome reached the deciding engine: 20 conversions learned
    pulls = lambda: sum(arm.pulls for arm in a.engine.policy_state("hero"))  # noqa: E731
    assert wait_for(lambda: pulls() >= 20, 3)
    assert pulls() == 20
    # the decisions made during the outage and their conversions are in Redis now
    client = redis_server.client()
    converted = [m for m in client.zrange("test:h:outage-0", 0, -1) if '"converted"' in m]
    assert len(converted) == 1
    assert client.zcard("test:h:outage-cap") == 3
    load.stopping.set()
    load.join(5)
    assert not load.errors
    assert a.decide("hero", [30.0], profile_id="after").offer_ids


def test_a_write_buffered_during_the_recovery_is_replayed(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = two_stores
    decision = a.decide("banner", [30.0])
    assert decision.offer_ids == ["loan"]
    # b reported it while it still saw the store degraded, and its probe had just replayed
    # the buffer and reported healthy: the write waits in a healthy store's buffer
    write = outcome_write(
        decision.decision_id,
        1.0,
        None,
        dismissed=False,
        server=b.server,
        owner=a.server,
        view=b.view,
        keys=b.keys,
    )
    b.buffer.add(replayed(write))
    assert wait_for(lambda: len(b.buffer) == 0, 5)
    client = redis_server.client()
    assert client.hget(f"test:p:{decision.decision_id}", "r:loan") == "1.0"
    assert wait_for(lambda: sum(arm.pulls for arm in a.engine.policy_state("banner")) == 1, 5)


def test_the_background_thread_survives_what_it_cannot_apply(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_stores
    client = redis_server.client()
    # two messages a cannot apply: not JSON, and no decision id
    client.rpush(f"test:inbox:{a.server}", "not json", json.dumps({"op": "outcome"}))
    drain, failures = a.syncer.drain_inbox, [ValueError("a bug in the background work")]

    def drain_once_failing() -> None:
        if failures:
            raise failures.pop()
        drain()

    monkeypatch.setattr(a.syncer, "drain_inbox", drain_once_failing)

    def listener(healthy: bool) -> None:
        raise RuntimeError(f"a listener's bug (healthy={healthy})")

    a.watch_health(listener)
    learned = lambda: sum(arm.pulls for arm in a.engine.policy_state("banner"))  # noqa: E731
    first = a.decide("banner", [30.0])
    b.report_outcome(first.decision_id, 1.0)
    assert wait_for(lambda: learned() == 1, 5), "the inbox is drained past what failed"
    assert a.syncer.errors == 3

    redis_server.stop()
    assert a.decide("banner", [30.0]).offer_ids == ["loan"], "the listener's bug stays out of decide"
    assert not a.healthy
    redis_server.start()
    assert wait_for(lambda: a.healthy, 5), "recovered, whatever the listener does"
    second = a.decide("banner", [30.0])
    b.report_outcome(second.decision_id, 1.0)
    assert wait_for(lambda: learned() == 2, 5)
    assert a.syncer.is_alive()


def test_learning_dropped_in_a_long_outage_is_counted_and_logged(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = two_stores
    caplog.set_level(logging.INFO, logger="decision_engine.store")
    a.syncer.unsent = deque(maxlen=1)  # as if the outage had outlasted MAX_UNSENT_DELTAS flushes
    redis_server.stop()
    for _ in range(3):
        decision = a.decide("banner", [30.0])
        a.report_outcome(decision.decision_id, 1.0)
        a.syncer._take_delta()  # a flush
    assert not a.healthy
    assert a.syncer.deltas_dropped >= 2
    redis_server.start()
    assert wait_for(lambda: a.healthy, 5)
    # (b recovers too, having lost nothing: it logs at INFO)
    lost = [r for r in caplog.records if r.levelno == logging.WARNING and "some lost" in r.getMessage()]
    assert len(lost) == 1 and lost[0].deltas_dropped >= 2
