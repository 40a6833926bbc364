"""Trigger timers and deliveries in the embedded store: an engine dropped without a snapshot,
or a process killed with SIGKILL, leaves them in the journal; reopened, each pending timer
fires exactly once, fired ones do not fire again, and deliveries wait for their
acknowledgement as before."""

from __future__ import annotations

import select
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from decision_engine import Engine, load_catalog

from tests.triggers.conftest import BASE_YAML, CART_ABANDONED, HOUR, MINUTE, T0, Events, customer, poll

PROFILES = 40  # half add a cart at T0 (due T0+30m), half at T0+1h (due T0+1h30m)
EARLY, LATE = T0 + 30 * MINUTE, T0 + HOUR + 30 * MINUTE
CATALOG = BASE_YAML.replace("max: 1, window: 1d", "max: 5, window: 1d") + "triggers:\n" + CART_ABANDONED


def start_carts(engine: Engine) -> None:
    track = Events(engine)
    for n in range(PROFILES):
        customer(engine, f"p{n}")
        track(
            "cart_add", T0 if n % 2 == 0 else T0 + HOUR, profile_id=f"p{n}", cart_id=f"c{n}", cart_value=40.0
        )


def drain(engine: Engine, now: float) -> list[dict[str, object]]:
    """Every delivery waiting on email at `now`, polled until none is left (not acknowledged)."""
    found: list[dict[str, object]] = []
    while batch := poll(engine, now, max=7, visibility=3600.0):
        found += batch
    return found


def delivered_once_each(engine: Engine) -> None:
    """Every profile's one instance ended in exactly one delivered decision."""
    for n in range(PROFILES):
        assert [e["outcome"] for e in engine.trigger_history(f"p{n}")] == ["delivered"], n


def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return path


def open_engine(path: Path, state: Path) -> Engine:
    return Engine(load_catalog(path), seed=7, clock="simulated", state_dir=state)


def test_timers_survive_an_engine_dropped_without_a_snapshot(tmp_path: Path) -> None:
    path, state = catalog_file(tmp_path), tmp_path / "state"
    first = open_engine(path, state)
    start_carts(first)
    assert first.pending_timers == PROFILES
    assert first.fire_due(EARLY) == PROFILES // 2
    del first  # no snapshot, no close

    second = open_engine(path, state)
    assert second.pending_timers == PROFILES // 2 and second.pending_deliveries == PROFILES // 2
    assert second.fire_due(EARLY) == 0  # the early half fired before: not again
    assert second.fire_due(LATE) == PROFILES // 2
    assert second.pending_timers == 0 and second.pending_deliveries == PROFILES
    delivered_once_each(second)
    del second

    third = open_engine(path, state)
    assert third.pending_timers == 0 and third.fire_due(LATE + HOUR) == 0
    deliveries = drain(third, LATE)
    assert len(deliveries) == PROFILES
    assert Counter(str(d["profile_id"]) for d in deliveries) == {f"p{n}": 1 for n in range(PROFILES)}
    assert third.ack_deliveries([int(str(d["decision_id"])) for d in deliveries]) == PROFILES
    delivered = [
        e for n in range(PROFILES) for e in third.trigger_history(f"p{n}") if e["outcome"] == "delivered"
    ]
    assert sorted(e["decision_id"] for e in delivered) == sorted(d["decision_id"] for d in deliveries)


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from decision_engine import Engine, load_catalog
    from tests.triggers.test_durability import EARLY, start_carts

    engine = Engine(load_catalog(sys.argv[1]), seed=7, clock="simulated", state_dir=sys.argv[2])
    start_carts(engine)
    fired = engine.fire_due(EARLY)
    print(f"ready {fired} {engine.pending_timers} {engine.pending_deliveries}", flush=True)
    time.sleep(120)  # killed with SIGKILL before this ends
    """
)


def test_each_timer_fires_exactly_once_after_a_kill_9(tmp_path: Path) -> None:
    path, state = catalog_file(tmp_path), tmp_path / "state"
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(state)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)  # a bound for a loaded machine
        line = child.stdout.readline() if ready else "(no line within 60 s)"
        assert line.split() == ["ready", str(PROFILES // 2), str(PROFILES // 2), str(PROFILES // 2)], (
            line,
            child.stderr.read() if child.poll() is not None and child.stderr else "",
        )
    finally:
        child.kill()  # SIGKILL: no destructor, no snapshot, no flush
        child.wait(10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -9

    engine = open_engine(path, state)
    assert engine.pending_timers == PROFILES // 2 and engine.pending_deliveries == PROFILES // 2
    assert engine.fire_due(EARLY) == 0
    assert engine.fire_due(LATE) == PROFILES // 2
    delivered_once_each(engine)
    deliveries = drain(engine, LATE)
    assert len({d["decision_id"] for d in deliveries}) == len(deliveries) == PROFILES
    del engine
    reopened = open_engine(path, state)
    assert reopened.pending_timers == 0 and reopened.fire_due(LATE + HOUR) == 0
    delivered_once_each(reopened)
