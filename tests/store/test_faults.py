"""Redis stops under load and comes back: decisions go on, outcomes wait, the store recovers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from decision_engine.store import RedisStore

from tests.store.redis_server import RedisServer

CARDS = {"gold_card", "silver_card"}


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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
    assert _wait_for(lambda: not a.healthy, 5), "degraded after the first failed call"
    assert health == [False]
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
    assert _wait_for(lambda: load.decided > before + 20, 5), "the load goes on"

    redis_server.start()  # same port, empty (no persistence)
    assert _wait_for(lambda: a.healthy and b.healthy, 5), "recovered without help"
    assert health == [False, True]
    assert len(a.buffer) == 0 and len(b.buffer) == 0
    # every buffered outcome reached the deciding engine: 20 conversions learned
    pulls = lambda: sum(arm.pulls for arm in a.engine.policy_state("hero"))  # noqa: E731
    assert _wait_for(lambda: pulls() >= 20, 3)
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
