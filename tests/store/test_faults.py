"""Redis stops (or stops answering) under load and comes back: decisions go on without it,
outcomes are refused until it is back, the decisions made meanwhile are written to it, and the
store recovers by itself."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from decision_engine import Engine
from decision_engine.errors import StorageError

from tests.store.conftest import pulls
from tests.store.polling import wait_for
from tests.store.redis_server import RedisServer

CARDS = {"gold_card", "silver_card"}  # under a fail-closed cap
LEFT_OUT = {*CARDS, "loan"}  # and the budgeted offer: a budget is never granted twice


def healthy(engine: Engine) -> bool:
    health = engine.store_health()
    assert health is not None
    return bool(health["healthy"])


def buffered(engine: Engine) -> int:
    health = engine.store_health()
    assert health is not None
    return int(health["buffered"])


class _Load(threading.Thread):
    """Decides for fresh profiles on `engine` until stopped; counts decisions and errors."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.stopping = threading.Event()
        self.decided = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.stopping.is_set() and self.decided < 50_000:
            try:
                self.engine.decide("hero", [30.0], profile_id=f"load-{self.decided}")
                self.decided += 1
            except BaseException as exc:
                self.errors.append(exc)
                return
            time.sleep(0.001)


def test_decisions_go_on_while_redis_is_down_and_the_store_recovers_by_itself(
    redis_server: RedisServer, two_engines: tuple[Engine, Engine]
) -> None:
    a, b = two_engines
    load = _Load(a)
    load.start()
    time.sleep(0.3)
    assert healthy(a) and load.decided > 0

    redis_server.stop()
    before = load.decided
    assert wait_for(lambda: not healthy(a), 5), "degraded after the first failed call"
    # decisions keep coming, without waiting on Redis: the closed `cards` cap and the budget
    # leave their offers out, the open web cap decides without the stored history
    started = time.monotonic()
    outage = [a.decide("hero", [30.0], profile_id=f"outage-{i}", explain=True) for i in range(30)]
    assert time.monotonic() - started < 1.0
    assert all(d.offer_ids == ["savings"] for d in outage)
    assert all(d.reasons[o] == "excluded by the caller" for d in outage for o in LEFT_OUT)
    assert buffered(a) >= 30
    # outcomes and releases are refused, nothing half-recorded: the client reports them later
    with pytest.raises(StorageError, match="report it again later"):
        a.report_outcome(outage[0].decision_id, 1.0)
    with pytest.raises(StorageError, match="report it again later"):
        a.release(outage[1].decision_id)
    assert wait_for(lambda: load.decided > before + 20, 5), "the load goes on"
    assert wait_for(lambda: not healthy(b), 5), "b's background work found Redis away too"

    redis_server.start()  # same port, empty (no persistence)
    assert wait_for(lambda: healthy(a) and healthy(b), 5), "recovered without help"
    # the load may buffer a decision while the recovery runs: it is written on the next round
    assert wait_for(lambda: buffered(a) == 0, 5)
    # the decisions made during the outage are in Redis now: either server takes their outcomes
    for d in outage[:10]:
        a.report_outcome(d.decision_id, 1.0)
    for d in outage[10:20]:
        b.report_outcome(d.decision_id, 1.0)
    b.release(outage[20].decision_id)
    a.sync_store()
    b.sync_store()
    assert pulls(a, "hero") == pulls(b, "hero") == 20
    assert [c.kind for c in b.contact_history("outage-0")] == ["shown", "converted"]
    assert b.contact_history("outage-20") == [], "released: its contact given back"
    load.stopping.set()
    load.join(5)
    assert not load.errors
    assert a.decide("hero", [30.0], profile_id="after").offer_ids


def test_a_redis_that_stops_answering_counts_as_away(
    redis_server: RedisServer, two_engines: tuple[Engine, Engine]
) -> None:
    a, _ = two_engines
    assert a.decide("hero", [30.0], profile_id="frozen").offer_ids
    redis_server.pause()
    try:
        started = time.monotonic()
        # the first call waits out timeout_ms (200 ms), the next ones do not wait on Redis
        frozen = [a.decide("hero", [30.0], profile_id="frozen").offer_ids for _ in range(5)]
        assert time.monotonic() - started < 1.0
        assert not healthy(a)
        # the open web cap (3 a day) counts the request's history and this server's contacts
        # meanwhile, not the one shown before (failing open costs that one)
        assert frozen == [["savings"]] * 3 + [[]] * 2
    finally:
        redis_server.resume()
    assert wait_for(lambda: healthy(a), 5)
    assert buffered(a) == 0
    assert len(a.contact_history("frozen")) == 4, "the contacts made meanwhile are written"
    assert a.decide("hero", [30.0], profile_id="frozen").offers == [], "and counted by the cap"


def test_decisions_past_the_buffer_bound_are_dropped_and_counted(
    redis_server: RedisServer, two_engines: tuple[Engine, Engine]
) -> None:
    a, _ = two_engines
    redis_server.stop()
    row = np.array([30.0], dtype=np.float32)
    a.decide("hero", row)  # finds Redis away
    assert not healthy(a)
    for _ in range(100_010):
        a.decide("hero", row)
    health = a.store_health()
    assert health is not None
    assert health["buffered"] == 100_000 and health["dropped"] == 11


def test_the_background_work_skips_what_it_cannot_learn(
    redis_server: RedisServer, two_engines: tuple[Engine, Engine]
) -> None:
    a, b = two_engines
    client = redis_server.client()
    # entries no server wrote: no fields it knows, and a record that does not decode
    client.xadd("test:{L0}:learn", {"garbage": "x"})
    client.xadd("test:{L1}:learn", {"d": "not a record", "o": "loan", "r": "1", "s": "2"})
    decision = a.decide("banner", [30.0])
    b.report_outcome(decision.decision_id, 1.0)
    a.sync_store()
    b.sync_store()
    assert pulls(a, "banner") == pulls(b, "banner") == 1
    assert healthy(a) and healthy(b)
