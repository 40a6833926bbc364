"""Caps and budgets hold exactly across engine processes sharing one Redis."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from tests.store.redis_server import RedisServer
from tests.store.workers import decide_many

PROCESSES = 2
PROFILES = [f"p{i}" for i in range(12)]


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
    catalog_file: Path, redis_server: RedisServer
) -> None:
    # 2 processes x 8 rounds = 16 requests per profile for a web cap of 3
    decided = _run(catalog_file, "hero", list(PROFILES), rounds=8)
    assert len(decided) == PROCESSES * 8 * len(PROFILES)
    shown = Counter(profile for profile, offers in decided for _ in offers)
    assert shown == dict.fromkeys(PROFILES, 3), "exactly the cap, never more, for every profile"
    cards = Counter(p for p, offers in decided for o in offers if o in ("gold_card", "silver_card"))
    assert max(cards.values()) <= 2
    client = redis_server.client()
    for profile in PROFILES:
        assert client.zcard(f"test:h:{profile}") == 3


def test_a_budget_holds_exactly_across_processes(catalog_file: Path, redis_server: RedisServer) -> None:
    # no profile ids: only the shared budget (25 a day) limits `loan`, the banner's one offer
    now = time.time()  # every decision at this time: its day names the budget's key
    decided = _run(catalog_file, "banner", [None], rounds=40, now=now)
    shown = Counter(o for _, offers in decided for o in offers)
    assert shown == {"loan": 25}
    day = int(now // 86_400)
    assert redis_server.client().get(f"test:b:loan:{day}") == "25"
