"""The Lua scripts' edge cases: a budget taken twice by one commit, the inbox's expiry, a
release after the profile's history expired, and commands Redis refuses."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis
from decision_engine.store import RedisStore, StoreCommandError
from decision_engine.store.writes import Write

from tests.store.polling import wait_for
from tests.store.redis_server import RedisServer

NOT_LOAN = {"gold_card", "silver_card", "savings"}
WEEK = 7 * 24 * 3600


def test_a_commit_taking_one_budget_twice_counts_both_units(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, _ = two_stores
    client = redis_server.client()
    key = "test:b:loan:0"
    client.set(key, 24)  # 1 unit left of 25
    # KEYS: version, history, the budget twice; ARGV: no version check, trim_below,
    # history_ttl, pending_ttl, 2 budgets, 0 pending, allowed x2, budget_ttl x2, no events
    args: list[str | int | float] = ["", "0", 60, 60, 2, 0, 25, 25, 60, 60, "[]"]
    write = Write("commit", ["test:v:x", "test:h:x", key, key], args, "one budget twice")
    assert a.scripts.run(write) == ["budget", "2"]
    assert client.get(key) == "24", "nothing taken"


def test_an_offer_on_two_placements_of_a_page_takes_one_unit_of_its_budget(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = two_stores
    client = redis_server.client()
    now = time.time()
    key = f"test:b:loan:{int(now // 86_400)}"
    client.set(key, 24)
    # `loan` is the only candidate of both `hero` and `banner`
    pages = [store.decide_page(["hero", "banner"], [30.0], now=now, exclude=NOT_LOAN) for store in (a, b, a)]
    shown = Counter(o for page in pages for d in page for o in d.offer_ids)
    assert shown == {"loan": 1}
    assert client.get(key) == "25"


def test_an_outcome_keeps_the_inbox_of_the_deciding_server(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = two_stores
    a.syncer.stopping.set()  # a does not drain its inbox: the forwarded outcomes stay there
    a.syncer.join(5)
    first, last = a.decide("banner", [30.0]), a.decide("banner", [30.0])
    assert first.offers and last.offers
    client = redis_server.client()
    b.report_outcome(first.decision_id, 1.0)
    client.pexpire(f"test:p:{last.decision_id}", 300)  # its attribution window ends now
    b.report_outcome(last.decision_id, 1.0)
    inbox = f"test:inbox:{a.server}"
    assert client.llen(inbox) == 2
    assert WEEK - 60 < client.ttl(inbox) <= WEEK


def test_a_release_bumps_the_history_version_only_when_it_removes_contacts(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = two_stores
    client = redis_server.client()
    late, lost_version = (a.decide("hero", [30.0], profile_id=p) for p in ("late", "lost-version"))
    assert late.offers and lost_version.offers
    client.delete("test:h:late", "test:v:late")  # the history expired before the release
    b.release(late.decision_id)
    assert not client.exists("test:v:late"), "no version key left without an expiry"
    client.delete("test:v:lost-version")
    b.release(lost_version.decision_id)
    assert client.zcard("test:h:lost-version") == 0
    assert client.get("test:v:lost-version") == "1"
    assert client.ttl("test:v:lost-version") > 0


def test_a_command_redis_refuses_raises_and_is_not_an_outage(
    two_stores: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, _ = two_stores
    client = redis_server.client()
    now = time.time()
    client.rpush(f"test:b:loan:{int(now // 86_400)}", "not a counter")  # WRONGTYPE for the scripts
    with pytest.raises(StoreCommandError, match="WRONGTYPE"):
        a.decide("banner", [30.0], now=now)
    assert a.healthy and len(a.buffer) == 0
    client.zadd("test:h:wrong", {"not json": 1})
    client.rename("test:h:wrong", "test:v:wrong")  # the version key holds a sorted set
    with pytest.raises(StoreCommandError, match="WRONGTYPE"):
        a.decide("hero", [30.0], profile_id="wrong")
    assert a.healthy

    # replayed after an outage, the same write is dropped and counted, not retried forever
    a.syncer._next_probe = float("inf")  # hold the probe until the write is buffered
    a.health.degrade(redis.ConnectionError("a test outage"))
    assert a.decide("banner", [30.0], now=now).offer_ids == ["loan"]
    assert len(a.buffer) == 1
    a.syncer._next_probe = 0.0
    assert wait_for(lambda: a.healthy, 5), "recovered"
    assert len(a.buffer) == 0 and a.buffer.refused == 1
