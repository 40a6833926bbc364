"""What the store keeps in Redis: a decision's keys and their lifetimes, one budget unit for an
offer shown once on a page, profiles any server reads, erasure, and keys of the wrong kind
refused without an outage (test_bounds: that no key grows without bound)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from decision_engine import Engine
from decision_engine.errors import StorageError, UnknownDecisionError

from tests.store.redis_server import RedisServer

NOT_LOAN = {"gold_card", "silver_card", "savings"}
WEEK = 7 * 24 * 3600  # the attribution window
DAY = 24 * 3600  # the contact policy's longest window


def test_a_decision_writes_its_history_pending_record_and_budget_unit_with_lifetimes(
    two_engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, _ = two_engines
    now = time.time()
    decision = a.decide("hero", [30.0], profile_id="k1", now=now, exclude=NOT_LOAN)
    assert decision.offer_ids == ["loan"]
    client = redis_server.client()
    shard = client.keys(f"test:{{L*}}:d:{decision.decision_id}")
    assert len(shard) == 1
    lifetimes = {
        "test:{k1}:h": DAY + 60,
        "test:{k1}:ds": WEEK,
        shard[0]: WEEK,
        f"test:{{b:loan}}:{int(now // DAY)}": 2 * DAY,
    }
    for key, ttl in lifetimes.items():
        assert ttl - 60 < client.ttl(key) <= ttl, key


def test_an_offer_on_two_placements_of_a_page_takes_one_unit_of_its_budget(
    two_engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, b = two_engines
    client = redis_server.client()
    now = time.time()
    key = f"test:{{b:loan}}:{int(now // DAY)}"
    client.set(key, 24)
    # `loan` is the only candidate of both `hero` and `banner`
    pages = [e.decide_page(["hero", "banner"], [30.0], now=now, exclude=NOT_LOAN) for e in (a, b, a)]
    shown = Counter(o for page in pages for d in page for o in d.offer_ids)
    assert shown == {"loan": 1}
    assert client.get(key) == "25"


def test_profiles_live_in_redis_and_erasure_removes_everything_of_one(
    two_engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, b = two_engines
    assert a.upsert_profiles([{"id": "k3", "age": 41}]).accepted == 1
    assert a.profile_count is None, "not held in this process"
    stored = b.profile("k3")
    assert stored is not None and stored["features"]["age"] == 41
    decision = b.decide("hero", None, profile_id="k3")  # by id, on the profile a wrote
    assert decision.offers
    client = redis_server.client()
    assert {"test:{k3}:p", "test:{k3}:h", "test:{k3}:ds"} <= set(client.keys("test:{k3}:*"))
    assert a.delete_profile("k3")
    assert client.keys("test:{k3}:*") == []
    assert client.keys(f"test:{{L*}}:d:{decision.decision_id}") == [], "its pending decision too"
    with pytest.raises(UnknownDecisionError):
        b.report_outcome(decision.decision_id, 1.0)
    assert b.profile("k3") is None and b.contact_history("k3") == []


def test_a_key_of_the_wrong_kind_is_refused_and_is_not_an_outage(
    two_engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, _ = two_engines
    client = redis_server.client()
    now = time.time()
    client.rpush(f"test:{{b:loan}}:{int(now // DAY)}", "not a counter")
    with pytest.raises(StorageError, match="WRONGTYPE"):
        a.decide("banner", [30.0], now=now)
    client.set("test:{damaged}:h", "not a history")
    with pytest.raises(StorageError, match="damaged"):
        a.decide("mail", [30.0], profile_id="damaged")
    health = a.store_health()
    assert health is not None and health["healthy"] and health["buffered"] == 0
    assert a.decide("mail", [30.0], profile_id="fine").offers, "other keys are served as before"
