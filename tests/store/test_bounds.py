"""Nothing the Redis store writes grows without bound: after a mixed workload on a real
redis-server every key has a lifetime no longer than the one its kind documents, except the
bounded few (the learning streams, trimmed; the policy snapshot and the profile layouts, one
each). A decision that shows nothing writes nothing; one without a
profile id writes only its pending decision and its record."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
import redis
from decision_engine import Engine, parse_catalog

from tests.clock import NOW_SECONDS
from tests.store.polling import wait_for
from tests.store.redis_server import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

HOUR = 3_600.0
DAY = 24 * HOUR
LEARN_STREAM_LENGTH = 20_000  # entries kept per learning shard (about: whole stream nodes go)
STREAM_NODE = 100  # redis' stream-node-max-entries: how far past the bound `MAXLEN ~` may stay
SHARDS = 16
SERVER_LEASE = 120  # seconds a server number stays leased without renewal

# `hero` (web, 1 slot, capped), `mail` (email, 2 slots), `banner` (app, only the budgeted
# `loan`), `never` (an offer no profile is eligible for: shows nothing).
CATALOG = """\
version: 1
features:
  - {name: age, type: int, default: 30}
  - name: visits_7d
    type: int
    computed: {event: visit, aggregate: count, window: 7d}
channels: [web, {id: email, consent: not_required}, app]
placements:
  - {id: hero, channel: web, slots: 1, policy: {type: thompson}}
  - {id: mail, channel: email, slots: 2, policy: {type: thompson}}
  - {id: banner, channel: app, slots: 1, policy: {type: thompson}}
  - {id: never, channel: web, slots: 1}
offers:
  - {id: gold_card, placements: [hero, mail]}
  - {id: savings, placements: [hero, mail]}
  - {id: newsletter, placements: [mail]}
  - {id: loan, placements: [banner], budget: {max: 1000, window: 1d, pacing: none}}
  - {id: centenarian, placements: [never], rule: 'age >= 150'}
contact_policy:
  caps:
    - {scope: channel, channel: web, max: 2, window: 1d}
  cooldown_after_conversion: 2d
profiles:
  unknown: defaults
  idle_ttl: 30d
store: {type: redis, url: "{url}", key_prefix: bound, attribution_window: 6h,
        timeout_ms: 1000}
"""
HORIZON = 2 * DAY  # the longest cap window or cooldown
ATTRIBUTION = 6 * HOUR
IDLE = 30 * DAY
BUDGET_WINDOW = DAY


@pytest.fixture
def engines(redis_server: RedisServer) -> Iterator[tuple[Engine, Engine]]:
    catalog = parse_catalog(CATALOG.replace("{url}", redis_server.url), "bounds.yaml")
    pair = (Engine(catalog, seed=1, clock="simulated"), Engine(catalog, seed=2, clock="simulated"))
    try:
        yield pair
    finally:
        for engine in pair:
            engine.close()


def all_keys(client: redis.Redis) -> set[str]:
    return set(client.scan_iter(count=1000))


KINDS = {  # the key names the store documents, by kind
    "policy": re.compile(r"bound:policy"),
    "server": re.compile(r"bound:server:\d+"),
    "layout": re.compile(r"bound:layout:[0-9a-f]+"),
    "budget": re.compile(r"bound:\{b:[^}]+\}:\d+"),
    "learn": re.compile(r"bound:\{L\d+\}:learn"),
    "pending": re.compile(r"bound:\{L\d+\}:d:\d+"),
    "record": re.compile(r"bound:\{L\d+\}:r:\d+"),
    "h": re.compile(r"bound:\{c[^}]*\}:h"),
    "ds": re.compile(r"bound:\{c[^}]*\}:ds"),
    "p": re.compile(r"bound:\{c[^}]*\}:p"),
}


def kind(key: str) -> str:
    (found,) = [name for name, pattern in KINDS.items() if pattern.fullmatch(key)] or [f"unexpected: {key}"]
    return found


# The longest lifetime of each kind of key (seconds); None: no ttl, bounded otherwise.
LIFETIME = {
    "h": HORIZON + 60,
    "ds": ATTRIBUTION,
    "p": IDLE,
    "budget": 2 * BUDGET_WINDOW,
    "pending": ATTRIBUTION,
    "record": ATTRIBUTION,
    "server": SERVER_LEASE,
    "learn": None,
    "policy": None,
    "layout": None,
}


def workload(a: Engine, b: Engine) -> int:
    """Every kind of write, spread over the two servers; the outcomes settled."""
    now = NOW_SECONDS
    assert a.upsert_profiles([{"id": f"c{i}", "age": 20 + i} for i in range(20)], now=now).accepted == 20
    visits = [{"id": f"v{i}", "profile_id": f"c{i % 20}", "type": "visit", "time": now} for i in range(40)]
    assert b.track(visits).accepted == 40
    settled, released = 0, 0
    for i in range(120):
        engine = (a, b)[i % 2]
        at = now + i
        by_id = engine.decide_page(["hero", "mail", "banner", "never"], None, profile_id=f"c{i % 20}", now=at)
        anonymous = engine.decide_page(["mail", "banner"], [40.0, 0.0], now=at)
        nothing = engine.decide("never", [40.0, 0.0], profile_id=f"c{i % 20}", now=at)
        assert not nothing.offers
        for decision in [*by_id, *anonymous]:
            if not decision.offers:
                continue
            other = (b, a)[i % 2]
            if i % 5 == 0:
                other.release(decision.decision_id)
                released += 1
                continue
            for offer in decision.offers[: 1 + i % 2]:
                other.report_outcome(decision.decision_id, float(i % 3 == 0), offer.offer_id)
                settled += 1
    assert settled > 200 and released > 20, (settled, released)
    assert a.delete_profile("c0")
    return settled


def test_every_key_is_bounded_after_a_mixed_workload(
    engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, b = engines
    settled = workload(a, b)
    for engine in engines:
        engine.sync_store()
        engine.close()  # a last policy snapshot
    client = redis_server.client()
    keys = all_keys(client)
    kinds: dict[str, list[str]] = {}
    for key in keys:
        kinds.setdefault(kind(key), []).append(key)
    # every kind occurred, but the servers' leases: a closed server gives its number back
    assert set(kinds) == set(LIFETIME) - {"server"}, sorted(kinds)
    for key in keys:
        ttl_ms = client.pttl(key)
        lifetime = LIFETIME[kind(key)]
        if lifetime is None:
            assert ttl_ms == -1, (key, ttl_ms)
        else:
            assert 0 < ttl_ms <= lifetime * 1000, (key, ttl_ms, lifetime)
    # The bounded ones: one snapshot, one layout, at most a stream per shard.
    assert len(kinds["policy"]) == len(kinds["layout"]) == 1
    assert len(kinds["learn"]) <= SHARDS
    lengths = [client.xlen(k) for k in kinds["learn"]]
    assert all(length <= LEARN_STREAM_LENGTH for length in lengths), lengths
    assert sum(lengths) == settled  # every settled outcome, once
    # The erased profile left nothing.
    assert not [k for k in keys if "{c0}" in k]
    assert {"p", "h", "ds"} <= {kind(k) for k in keys if "{c1}" in k}


def test_the_learning_stream_is_trimmed_by_the_outcomes_it_takes(
    engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, b = engines
    decision = a.decide("hero", [40.0, 0.0], now=NOW_SECONDS)
    stream = f"bound:{{L{decision.decision_id % SHARDS}}}:learn"
    client = redis.Redis(port=redis_server.port, socket_timeout=5)  # stream entries are bytes
    # A long history in the shard, as a busy deployment leaves it (entries no engine decodes:
    # they skip them).
    pipe = client.pipeline(transaction=False)
    for _ in range(LEARN_STREAM_LENGTH + 5 * STREAM_NODE):
        pipe.xadd(stream, {"d": b"", "o": "x", "r": "0", "s": "0"})
    pipe.execute()
    assert client.xlen(stream) == LEARN_STREAM_LENGTH + 5 * STREAM_NODE
    # The engines read it meanwhile; a call slower than timeout_ms counts as Redis away.
    assert wait_for(lambda: all(e.store_health()["healthy"] for e in engines), 10)  # type: ignore[index]
    b.report_outcome(decision.decision_id, 1.0)
    length = client.xlen(stream)
    assert LEARN_STREAM_LENGTH <= length <= LEARN_STREAM_LENGTH + STREAM_NODE, length
    assert client.ttl(stream) == -1
    # The outcome itself is the newest entry, and every server learns it.
    ((_, newest),) = client.xrevrange(stream, count=1)
    reporter = b.store_health()["server"]  # type: ignore[index]
    fields = (newest[b"o"].decode(), newest[b"r"], int(newest[b"s"]))
    assert fields == (decision.offers[0].offer_id, b"1", reporter)

    def learned() -> bool:
        a.sync_store()
        return sum(arm.pulls for arm in a.policy_state("hero")) == 1

    assert wait_for(learned, 10), a.policy_state("hero")


def test_a_decision_that_shows_nothing_writes_nothing(
    engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, _ = engines
    client = redis_server.client()
    before = all_keys(client)
    for profile_id in ("c-nothing", None):
        decision = a.decide("never", [40.0, 0.0], profile_id=profile_id, now=NOW_SECONDS)
        assert decision.decision_id and not decision.offers
        assert all_keys(client) == before
    # A decision that shows something does write (so the comparison above could fail).
    shown = a.decide("hero", [40.0, 0.0], profile_id="c-nothing", now=NOW_SECONDS)
    assert shown.offers and all_keys(client) != before


def test_a_decision_without_a_profile_id_writes_only_its_pending_decision_and_record(
    engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, _ = engines
    client = redis_server.client()
    before = all_keys(client)
    decision = a.decide("mail", [40.0, 0.0], now=NOW_SECONDS)
    assert len(decision.offers) == 2
    shard = decision.decision_id % SHARDS
    pending = f"bound:{{L{shard}}}:d:{decision.decision_id}"
    record = f"bound:{{L{shard}}}:r:{decision.decision_id}"
    assert all_keys(client) - before == {pending, record}
    for key in (pending, record):
        assert 0 < client.pttl(key) <= ATTRIBUTION * 1000
