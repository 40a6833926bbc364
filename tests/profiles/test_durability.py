"""An engine on a state directory keeps its profiles and events: reopened (from the journal,
or from a snapshot and the journal after it), every write is there."""

from __future__ import annotations

from pathlib import Path

from decision_engine import Engine, LoadedCatalog

from tests.profiles.conftest import at


def write_some(engine: Engine) -> None:
    assert (
        engine.upsert_profiles([{"id": "ann", "age": 41, "segment": "gold", "consents": ["email"]}]).accepted
        == 1
    )
    assert engine.upsert_profiles([{"id": "bob", "spend": 12.5}, {"id": "ann", "vip": True}]).accepted == 2
    events = [
        {"id": "e1", "profile_id": "ann", "type": "cart_add", "time": at(0), "properties": {"value": 7.0}},
        {
            "id": "e2",
            "profile_id": "ann",
            "type": "purchase",
            "time": at(1),
            "properties": {"amount": 30.0, "product": "shoes"},
        },
    ]
    assert engine.track(events).accepted == 2


def test_profiles_and_events_survive_a_reopen(profile_catalog: LoadedCatalog, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Engine(profile_catalog, seed=1, clock="simulated", state_dir=state)
    write_some(first)
    expected = {pid: first.profile(pid, now=at(2)) for pid in ("ann", "bob")}
    assert expected["ann"] is not None and expected["ann"]["features"]["cart_adds_7d"] == 1  # type: ignore[index]
    del first

    reopened = Engine(profile_catalog, seed=1, clock="simulated", state_dir=state)
    assert reopened.profile_count == 2
    assert {pid: reopened.profile(pid, now=at(2)) for pid in ("ann", "bob")} == expected
    # the event ids came back too: a retried event is still a duplicate
    retry = [
        {"id": "e1", "profile_id": "ann", "type": "cart_add", "time": at(0), "properties": {"value": 7.0}}
    ]
    assert reopened.track(retry).duplicates == 1


def test_after_a_snapshot_and_a_delete(profile_catalog: LoadedCatalog, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Engine(profile_catalog, seed=1, clock="simulated", state_dir=state)
    write_some(first)
    first.snapshot()
    first.upsert_profiles([{"id": "cid", "age": 60}])
    assert first.delete_profile("bob")
    expected = first.profile("ann", now=at(3))
    del first

    reopened = Engine(profile_catalog, seed=1, clock="simulated", state_dir=state)
    assert reopened.profile_count == 2
    assert reopened.profile("bob") is None
    assert reopened.profile("cid", now=at(3))["features"]["age"] == 60  # type: ignore[index]
    assert reopened.profile("ann", now=at(3)) == expected
