"""Engine processes for the store tests (spawned: each is a server of the Redis store)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from decision_engine import Engine


def decide_many(
    catalog: str,
    seed: int,
    placement: str,
    profiles: list[str | None],
    rounds: int,
    start_at: float,
    now: float | None = None,
) -> list[tuple[str | None, list[str]]]:
    """From `start_at` (unix time, so that every process starts together), decides `rounds`
    times for every profile (None: no profile id) in a shuffled order, at time `now` (None:
    the clock); (profile, offers) of every decision."""
    engine = Engine(Path(catalog), seed=seed, clock="simulated")
    order = [p for p in profiles for _ in range(rounds)]
    random.Random(seed).shuffle(order)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        return [(p, engine.decide(placement, [30.0], profile_id=p, now=now).offer_ids) for p in order]
    finally:
        engine.close()
