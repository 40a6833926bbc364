"""Caps and budgets hold exactly across servers sharing one Redis: engine processes deciding
at once, and two engines in this process taking turns."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from decision_engine import Engine

from tests.store.redis_server import RedisServer
from tests.store.workers import decide_many

PROCESSES = 2
PROFILES = [f"p{i}" for i in range(12)]
CARDS = {"gold_card", "silver_card"}


Decided = list[tuple[str | None, list[str]]]


def _run(
    catalog: Path, placement: str, profiles: list[str | None], rounds: int, now: float | None = None
) -> Decided:
    start_at = time.time() + 3.0  # after every process has loaded its engine
    with ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as pool:
        runs = [
            pool.submit(decide_many, str(catalog), seed, placement, profiles, rounds, start_at, now)
            for seed in range(PROCESSES)
        ]
        return [shown for run in runs for shown in run.result(timeout=60)]


def test_channel_and_group_caps_hold_exactly_across_processes(
    catalog_file: Path, two_engines: tuple[Engine, Engine]
) -> None:
    # 2 processes x 8 rounds = 16 requests per profile for a web cap of 3
    decided = _run(catalog_file, "hero", list(PROFILES), rounds=8)
    assert len(decided) == PROCESSES * 8 * len(PROFILES)
    shown = Counter(profile for profile, offers in decided for _ in offers)
    assert shown == dict.fromkeys(PROFILES, 3), "exactly the cap, never more, for every profile"
    cards = Counter(p for p, offers in decided for o in offers if o in CARDS)
    assert max(cards.values()) <= 2
    # the history in Redis holds exactly the contacts shown, as any server reads it
    reader, _ = two_engines
    for profile in PROFILES:
        assert [c.kind for c in reader.contact_history(profile)] == ["shown"] * 3


def test_a_budget_holds_exactly_across_processes(catalog_file: Path, redis_server: RedisServer) -> None:
    # no profile ids: only the shared budget (25 a day) limits `loan`, the banner's one offer
    now = time.time()  # every decision at this time: its day names the budget's key
    decided = _run(catalog_file, "banner", [None], rounds=40, now=now)
    shown = Counter(o for _, offers in decided for o in offers)
    assert shown == {"loan": 25}
    day = int(now // 86_400)
    assert redis_server.client().get(f"test:{{b:loan}}:{day}") == "25"


def test_two_engines_taking_turns_share_caps_and_budgets(
    two_engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, b = two_engines
    now = time.time()
    turns = [a if i % 2 else b for i in range(8)]
    web = [e.decide("hero", [30.0], profile_id="turns", now=now).offer_ids for e in turns]
    assert sum(map(len, web)) == 3, "the web cap of 3 a day over both servers"
    assert all(web[:3]) and not any(web[3:]), "the first three decisions show one offer each"
    banner = [e.decide("banner", [30.0], now=now).offer_ids for e in turns * 4]
    loans_before = sum(1 for offers in web if "loan" in offers)
    assert sum(map(len, banner)) == 25 - loans_before, "one budget of 25 over both servers"
    assert redis_server.client().get(f"test:{{b:loan}}:{int(now // 86_400)}") == "25"


def test_a_batch_takes_its_budget_units_from_the_shared_budget(
    two_engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, b = two_engines
    now = time.time()
    key = f"test:{{b:loan}}:{int(now // 86_400)}"
    redis_server.client().set(key, 20)  # 5 units left of 25
    batch = a.decide_batch("banner", np.full((30, 1), 30.0, dtype=np.float32), now=now)
    loans = int((batch.offers == a.offer_ids.index("loan")).sum())
    assert loans == 5, f"a batch of 30 took {loans} loans where 5 units were left"
    assert b.decide("banner", [30.0], now=now).offers == []
