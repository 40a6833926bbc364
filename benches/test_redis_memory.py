"""What the Redis store costs in Redis memory, for sizing a deployment: bytes of `used_memory`
per stored profile, per pending decision (with and without a profile id, on a 1-slot and a
2-slot placement), per contact-history entry, per learning-stream entry and per settled
decision's tombstone.

Each measurement writes N of one kind through the engine into a fresh `redis-server` on a
free loopback port (holding 66,536 other keys, so its key tables do not resize meanwhile)
and diffs `INFO memory`. Where one write makes several keys (a pending decision: its hash and
its record; with a profile id, also the profile's index of pending decisions and its contact
history; an outcome: a stream entry, and the decision's hash cut down to a tombstone with its
record deleted), the keys of each kind are then deleted in turn (`DEL` frees at once) and each
drop is that kind's share.

The demo catalog as shipped (33 stored features, `lin_ucb` on every placement: a pending
record carries the features the policy read, to learn in the same context), and with its
placements on `thompson` for comparison. Redis' default `hash-max-listpack-value` (64) beside
512: a pending decision's hash holds small fields only (its record is a string key of its
own), so Redis should keep it a compact listpack under either setting (checked with
`OBJECT ENCODING`).

    python -m pytest benches/test_redis_memory.py --benchmark-only

The summary lines are printed at the end of the module.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import redis
import yaml
from decision_engine import Engine, LoadedCatalog, load_catalog, parse_catalog

from seeds.generator import DEMO_CATALOG, generate_profiles
from tests.store.redis_server import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

PROFILES = 20_000
DECISIONS = 8_000
HISTORY_PROFILES = 4_000
# Three more 1-slot decisions per profile after the first, each within every cap of the demo's
# contact policy (at most 5 contacts a week, 2 of one offer).
MORE_CONTACTS = ["app_banner", "web_home_hero", "app_banner"]
NOW = 1_735_689_600.0  # 2025-01-01
LISTPACK = {"default": None, "listpack 512": "512"}  # hash-max-listpack-value
KEYS = "decision-engine:"  # the default key prefix
# Keys (with a ttl) in Redis before a measurement, as a deployment's Redis holds many: its key
# tables (power-of-two sized, 2^17 slots for these) then neither grow nor shrink while a
# measurement's keys come and go, so no resize is counted as the items' memory.
BALLAST = 2**16 + 1_000
TABLE_SLOTS = 2**17
BALLAST_SCRIPT = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'ballast:' .. i, 'x', 'PX', 86400000) end"
# Every key access moves a step of a table's pending resize along (idle, Redis takes seconds).
TOUCH_SCRIPT = "for r = 1, 3 do for i = 1, tonumber(ARGV[1]) do redis.call('EXISTS', 'ballast:' .. i) end end"
PENDING, RECORDS, INDEXES, HISTORIES, STREAMS = (
    KEYS + p for p in ("{L*}:d:*", "{L*}:r:*", "{*}:ds", "{*}:h", "{L*}:learn")
)


class FreshRedis:
    """A redis-server of one measurement, and what its memory holds."""

    def __init__(self, directory: Path, listpack: str) -> None:
        directory.mkdir()
        self.server = RedisServer(directory)
        self.server.start()
        self.client = redis.Redis(port=self.server.port, socket_timeout=30)
        if LISTPACK[listpack] is not None:
            self.client.config_set("hash-max-listpack-value", LISTPACK[listpack])
        self.client.eval(BALLAST_SCRIPT, 0, BALLAST)
        assert self.client.dbsize() == BALLAST
        self.client.eval(TOUCH_SCRIPT, 0, BALLAST)  # the tables' last resize done, its old table freed
        self._settle()

    def _settle(self) -> None:
        """Waits (at most 10 s) for used_memory to stay the same over three reads."""
        readings = [self.used()]
        deadline = time.monotonic() + 10
        while len(readings) < 3 or len(set(readings[-3:])) > 1:
            assert time.monotonic() < deadline, readings[-5:]
            time.sleep(0.05)
            readings.append(self.used())

    @property
    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])

    def used(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def freed_by_deleting(self, pattern: str) -> tuple[int, int]:
        """(bytes freed, keys deleted) deleting every key matching `pattern`."""
        assert self.client.dbsize() < TABLE_SLOTS  # so the key tables did not grow
        keys = list(self.client.scan_iter(match=pattern, count=10_000))
        before = self.used()
        for start in range(0, len(keys), 1_000):
            self.client.delete(*keys[start : start + 1_000])
        return before - self.used(), len(keys)

    def encodings(self, pattern: str) -> set[str]:
        """`OBJECT ENCODING` of (up to) the first 100 keys matching `pattern`."""
        keys = list(islice(self.client.scan_iter(match=pattern, count=1_000), 100))
        assert keys, pattern
        return {self.client.object("encoding", key).decode() for key in keys}

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


Start = Callable[..., FreshRedis]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Start]:
    """fresh(listpack="default") -> a new redis-server, stopped at the end of the test."""
    started: list[FreshRedis] = []

    def start(listpack: str = "default") -> FreshRedis:
        started.append(FreshRedis(tmp_path / f"redis{len(started)}", listpack))
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def demo_catalog(policy: str) -> LoadedCatalog:
    if policy == "lin_ucb":
        return load_catalog(DEMO_CATALOG)
    document = yaml.safe_load(Path(DEMO_CATALOG).read_text(encoding="utf-8"))
    for placement in document["placements"]:
        placement["policy"] = {"type": policy}
    return parse_catalog(yaml.safe_dump(document, sort_keys=False), f"demo catalog, {policy}")


def engine_on(server: FreshRedis, policy: str = "lin_ucb") -> Engine:
    return Engine(demo_catalog(policy), seed=1, clock="simulated", store_url=server.server.url)


def closed(engine: Engine) -> None:
    """Stops the engine's background work (its last policy snapshot written), so nothing else
    writes to Redis while a measurement deletes keys."""
    engine.close()
    time.sleep(0.05)


@pytest.fixture(scope="module")
def rows() -> npt.NDArray[np.float32]:
    return generate_profiles(max(PROFILES, DECISIONS), seed=3)


@pytest.fixture(scope="module")
def summary(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    found: dict[str, str] = {}
    yield found
    reporter: Any = request.config.pluginmanager.get_plugin("terminalreporter")
    capture: Any = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not found:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        reporter.write_line("")
        reporter.write_line(f"Redis memory (used_memory deltas, redis-server {found.pop('version', '?')})")
        for what, figures in found.items():
            reporter.write_line(f"  {what:<66} {figures}")


def assert_accounts_for(written: int, freed: int) -> None:
    """The keys deleted hold what the writes added (within the connections' buffers, which
    come and go): nothing else was written."""
    assert abs(written - freed) < 0.03 * written + 150_000, (written, freed)


def _bytes(total: int, items: int) -> float:
    assert items > 0 and total > 0, (total, items)
    return total / items


@pytest.mark.benchmark(group="redis memory")
def test_memory_per_profile(
    benchmark: Any, fresh: Start, rows: npt.NDArray[np.float32], summary: dict[str, str]
) -> None:
    server = fresh()
    engine = engine_on(server)
    stored = [engine.feature_names.index(name) for name in engine.stored_features]
    assert len(stored) == 33
    features = np.ascontiguousarray(rows[:PROFILES][:, stored])
    ids = [f"customer-{i:07d}" for i in range(PROFILES)]
    before = server.used()

    def upsert() -> None:
        for start in range(0, PROFILES, 1_000):
            written = engine.upsert_profiles(
                ids=ids[start : start + 1_000], features=features[start : start + 1_000], now=NOW
            )
            assert written.accepted == len(ids[start : start + 1_000]), written

    benchmark.pedantic(upsert, rounds=1, iterations=1)
    closed(engine)
    total = server.used() - before
    freed, profiles = server.freed_by_deleting(KEYS + "{*}:p")
    assert profiles == PROFILES
    assert_accounts_for(total, freed)
    summary["version"] = server.version
    summary[f"profile, 33 stored features (id 'customer-NNNNNNN'), x{PROFILES:,}"] = (
        f"{freed / PROFILES:6.0f} B"
    )


PENDING_CASES = [
    # (policy, placement, slots, with a profile id)
    ("lin_ucb", "web_home_hero", 1, False),
    ("lin_ucb", "web_sidebar", 2, False),
    ("lin_ucb", "web_home_hero", 1, True),
    ("lin_ucb", "web_sidebar", 2, True),
    ("thompson", "web_home_hero", 1, False),
    ("thompson", "web_sidebar", 2, True),
]


@pytest.mark.benchmark(group="redis memory")
@pytest.mark.parametrize("listpack", list(LISTPACK))
@pytest.mark.parametrize(("policy", "placement", "slots", "with_profile"), PENDING_CASES)
def test_memory_per_pending_decision(
    benchmark: Any,
    fresh: Start,
    rows: npt.NDArray[np.float32],
    summary: dict[str, str],
    policy: str,
    placement: str,
    slots: int,
    with_profile: bool,
    listpack: str,
) -> None:
    server = fresh(listpack)
    engine = engine_on(server, policy)
    before = server.used()

    def decide() -> list[int]:
        shown = []
        for i in range(DECISIONS):
            profile_id = f"customer-{i:07d}" if with_profile else None
            decision = engine.decide(placement, rows[i], profile_id=profile_id, now=NOW)
            shown.append(len(decision.offers))
        return shown

    shown = benchmark.pedantic(decide, rounds=1, iterations=1)
    closed(engine)
    decisions = sum(1 for n in shown if n)
    total = server.used() - before
    # A compact listpack under either setting: every field of the hash is short.
    encoding = server.encodings(PENDING)
    assert encoding == {"listpack"}, encoding
    hash_bytes, hashes = server.freed_by_deleting(PENDING)
    record_bytes, records = server.freed_by_deleting(RECORDS)
    # Two keys per decision that showed something (its hash and its record), none for the others.
    assert hashes == records == decisions, (hashes, records, decisions)
    pending_bytes = hash_bytes + record_bytes
    who = "profile id" if with_profile else "no profile id"
    what = f"pending decision, {policy}, {slots} slot{'s' * (slots > 1)}, {who}"
    figures = (
        f"{_bytes(pending_bytes, decisions):6.0f} B (hash {_bytes(hash_bytes, decisions):.0f}"
        f" + record {_bytes(record_bytes, decisions):.0f})"
    )
    if with_profile:
        index_bytes, indexes = server.freed_by_deleting(INDEXES)
        history_bytes, histories = server.freed_by_deleting(HISTORIES)
        assert indexes == histories == decisions
        assert_accounts_for(total, pending_bytes + index_bytes + history_bytes)
        figures += (
            f" + new index {_bytes(index_bytes, decisions):.0f}"
            f" + new history ({sum(shown) / decisions:.2f} contacts) {_bytes(history_bytes, decisions):.0f}"
        )
    else:
        assert_accounts_for(total, pending_bytes)
    summary[f"{what} [{listpack}]"] = figures + f"   (x{decisions:,}, {sum(shown) / decisions:.2f} offers)"


@pytest.mark.benchmark(group="redis memory")
def test_memory_per_history_and_index_entry(
    benchmark: Any, fresh: Start, rows: npt.NDArray[np.float32], summary: dict[str, str]
) -> None:
    """Profiles with one decision shown beside profiles with about four: the difference per
    entry of a contact history and of the index of a profile's pending decisions."""
    server = fresh()
    engine = engine_on(server)

    def decide(profiles: dict[str, int], placement: str, at: float) -> dict[str, int]:
        """Offers shown per profile (id -> row) that was shown something."""
        shown = {}
        for profile_id, i in profiles.items():
            offers = len(engine.decide(placement, rows[i], profile_id=profile_id, now=at).offers)
            if offers:
                shown[profile_id] = offers
        return shown

    one, four = (
        decide({f"{group}-{i:05d}": i for i in range(HISTORY_PROFILES)}, "web_home_hero", NOW)
        for group in ("one", "four")
    )
    rows_of_four = {profile_id: int(profile_id.split("-")[1]) for profile_id in four}

    def decide_more() -> list[dict[str, int]]:
        return [
            decide(rows_of_four, placement, NOW + 60 * n)
            for n, placement in enumerate(MORE_CONTACTS, start=1)
        ]

    more = benchmark.pedantic(decide_more, rounds=1, iterations=1)
    closed(engine)
    server.freed_by_deleting(PENDING)
    server.freed_by_deleting(RECORDS)
    entries = {
        "one": len(one) / len(one),
        "four": (sum(four.values()) + sum(sum(m.values()) for m in more)) / len(four),
    }
    assert len(one) > HISTORY_PROFILES / 2 and entries["four"] > 3, (len(one), entries)
    # Each shown decision is one contact per offer (1-slot: one) and one index entry.
    for suffix, name in ((":h", "contact-history"), (":ds", "pending-decision index")):
        per_key = {}
        for group in ("one", "four"):
            freed, keys = server.freed_by_deleting(f"{KEYS}{{{group}-*}}{suffix}")
            assert keys == len(one if group == "one" else four), (group, suffix, keys)
            per_key[group] = freed / keys
        marginal = (per_key["four"] - per_key["one"]) / (entries["four"] - entries["one"])
        summary[f"{name} entry (marginal)"] = (
            f"{marginal:6.0f} B   (a key with 1 entry {per_key['one']:.0f} B, with {entries['four']:.2f} "
            f"{per_key['four']:.0f} B; x{len(four):,} profiles)"
        )


@pytest.mark.benchmark(group="redis memory")
@pytest.mark.parametrize("listpack", list(LISTPACK))
@pytest.mark.parametrize("policy", ["lin_ucb", "thompson"])
def test_memory_per_learning_stream_entry(
    benchmark: Any,
    fresh: Start,
    rows: npt.NDArray[np.float32],
    summary: dict[str, str],
    policy: str,
    listpack: str,
) -> None:
    server = fresh(listpack)
    engine = engine_on(server, policy)
    decided = [engine.decide("web_home_hero", rows[i], now=NOW) for i in range(DECISIONS)]
    ids = [d.decision_id for d in decided if d.offers]

    def settle() -> None:
        for n, decision_id in enumerate(ids):
            engine.report_outcome(decision_id, float(n % 10 == 0))

    benchmark.pedantic(settle, rounds=1, iterations=1)
    closed(engine)
    snapshot = len(server.client.get(KEYS + "policy") or b"")
    lengths = [server.client.xlen(key) for key in server.client.scan_iter(match=STREAMS)]
    assert sum(lengths) == len(ids)  # one entry per outcome
    stream_bytes, streams = server.freed_by_deleting(STREAMS)
    assert 0 < streams <= 16
    # Every offer settled (1 slot): the record is gone, the hash keeps what refuses a repeat.
    assert next(server.client.scan_iter(match=RECORDS, count=10_000), None) is None
    sample = next(server.client.scan_iter(match=PENDING, count=10_000))
    offer = server.client.hget(sample, "offers")
    assert isinstance(offer, bytes) and b"\n" not in offer, offer
    assert sorted(server.client.hkeys(sample)) == [b"n", b"offers", b"r:" + offer]
    assert server.client.pttl(sample) > 0
    encoding = server.encodings(PENDING)
    assert encoding == {"listpack"}, encoding
    settled_bytes, settled = server.freed_by_deleting(PENDING)
    assert settled == len(ids)
    kept = f"a settled decision's tombstone, kept for the window: {settled_bytes / settled:.0f} B"
    summary[f"learning-stream entry, {policy} [{listpack}]"] = (
        f"{_bytes(stream_bytes, len(ids)):6.0f} B   (x{len(ids):,}; {kept}; policy snapshot {snapshot:,} B)"
    )
