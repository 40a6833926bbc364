"""Pending decisions, outcomes, releases and learning shared between servers: any server
settles any server's decision, once, and every server learns it."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import pytest
from decision_engine import Engine
from decision_engine.errors import InvalidInputError, OutcomeAlreadyReportedError, UnknownDecisionError

from tests.store.conftest import pulls
from tests.store.redis_server import RedisServer


def _server(engine: Engine) -> int:
    health = engine.store_health()
    assert health is not None
    return int(health["server"])


def test_decision_ids_carry_the_server_that_made_them(two_engines: tuple[Engine, Engine]) -> None:
    a, b = two_engines
    assert _server(a) != _server(b)
    for engine in (a, b):
        decision = engine.decide("banner", [30.0])
        assert decision.offer_ids == ["loan"]
        assert decision.decision_id >> 40 == _server(engine)


def test_an_outcome_on_the_other_server_is_settled_once_and_learned_by_both(
    two_engines: tuple[Engine, Engine],
) -> None:
    a, b = two_engines
    decision = a.decide("mail", [30.0], profile_id="c-1")
    assert len(decision.offers) == 2
    first, second = decision.offer_ids
    with pytest.raises(InvalidInputError, match="say which one"):
        b.report_outcome(decision.decision_id, 1.0)
    b.report_outcome(decision.decision_id, 1.0, first)
    with pytest.raises(OutcomeAlreadyReportedError):
        b.report_outcome(decision.decision_id, 1.0, first)
    with pytest.raises(OutcomeAlreadyReportedError):  # on either server
        a.report_outcome(decision.decision_id, 0.0, first)
    with pytest.raises(InvalidInputError, match="was not shown"):
        b.report_outcome(decision.decision_id, 0.0, "loan")
    with pytest.raises(UnknownDecisionError):  # an id of a's that a never handed out
        b.report_outcome(_server(a) << 40 | 987_654, 1.0)
    b.report_outcome(decision.decision_id, 0.0, second, dismissed=True)
    with pytest.raises(OutcomeAlreadyReportedError):
        a.report_outcome(decision.decision_id, 1.0, second)
    # both servers learn both outcomes from the stream, the reporting one too
    a.sync_store()
    b.sync_store()
    for engine in (a, b):
        learned = {arm.offer_id: arm.pulls for arm in engine.policy_state("mail")}
        assert learned[first] == 1 and learned[second] == 1
        health = engine.store_health()
        assert health is not None and health["learned"] == 2
    assert a.policy_state("mail") == b.policy_state("mail")
    # the conversion starts its cooldown (1h) on every server
    for engine in (a, b):
        later = engine.decide("mail", [30.0], profile_id="c-1", explain=True)
        assert first not in later.offer_ids
        assert "cooldown" in later.reasons[first]


def test_a_release_on_another_server_gives_contacts_and_budget_units_back(
    two_engines: tuple[Engine, Engine], redis_server: RedisServer
) -> None:
    a, b = two_engines
    now = time.time()
    decisions = [a.decide("hero", [30.0], profile_id="c-2", now=now) for _ in range(3)]
    assert b.decide("hero", [30.0], profile_id="c-2", now=now).offers == [], "web cap of 3 reached"
    b.release(decisions[0].decision_id)
    with pytest.raises(OutcomeAlreadyReportedError, match="released"):
        b.release(decisions[0].decision_id)
    with pytest.raises(OutcomeAlreadyReportedError, match="released"):
        a.report_outcome(decisions[0].decision_id, 1.0)
    assert len(b.decide("hero", [30.0], profile_id="c-2", now=now).offers) == 1, "one contact given back"
    assert a.decide("hero", [30.0], profile_id="c-2", now=now).offers == []
    a.report_outcome(decisions[1].decision_id, 0.0)
    with pytest.raises(InvalidInputError, match="already has an outcome"):
        b.release(decisions[1].decision_id)

    budget = f"test:{{b:loan}}:{int(now // 86_400)}"
    client = redis_server.client()
    before = int(client.get(budget) or 0)
    loan = a.decide("banner", [30.0], now=now)
    assert loan.offer_ids == ["loan"]
    assert int(client.get(budget)) == before + 1
    b.release(loan.decision_id)
    assert int(client.get(budget)) == before, "the unit is given back"


def test_learning_reaches_the_other_server(two_engines: tuple[Engine, Engine]) -> None:
    a, b = two_engines
    reported = 0
    for i in range(20):
        decision = a.decide("banner" if i % 2 else "hero", [30.0])
        if decision.offers:
            a.report_outcome(decision.decision_id, 1.0)
            reported += 1
    assert reported >= 10
    a.sync_store()
    b.sync_store()
    assert pulls(a, "hero", "banner") == pulls(b, "hero", "banner") == reported
    assert a.policy_state("hero") == b.policy_state("hero")


def test_learning_survives_a_server_that_stops_without_closing(catalog_file: Path) -> None:
    first = Engine(catalog_file, seed=1, clock="simulated")
    for _ in range(12):
        decision = first.decide("banner", [30.0])
        first.report_outcome(decision.decision_id, 1.0)
    first.sync_store()
    learned = first.policy_state("banner")
    assert pulls(first, "banner") == 12
    del first  # as a kill -9 leaves it: no last snapshot
    gc.collect()
    restarted = Engine(catalog_file, seed=1, clock="simulated")
    try:
        assert restarted.policy_state("banner") == learned, "learned from the stream on start"
    finally:
        restarted.close()


def test_learning_survives_a_restart_from_the_snapshot(catalog_file: Path) -> None:
    first = Engine(catalog_file, seed=1, clock="simulated")
    for _ in range(5):
        decision = first.decide("banner", [30.0])
        first.report_outcome(decision.decision_id, 1.0)
    first.sync_store()
    first.close()
    first.close()  # idempotent
    health = first.store_health()
    assert health is not None and health["learned"] == 5
    restarted = Engine(catalog_file, seed=2, clock="simulated")
    try:
        assert pulls(restarted, "banner") == 5
        # and it goes on learning from the stream
        decision = restarted.decide("banner", [30.0])
        restarted.report_outcome(decision.decision_id, 1.0)
        restarted.sync_store()
        assert pulls(restarted, "banner") == 6
    finally:
        restarted.close()


def test_batch_outcomes_go_to_the_deciding_server_and_every_server_learns_them(
    two_engines: tuple[Engine, Engine],
) -> None:
    a, b = two_engines
    batch = a.decide_batch("banner", np.full((4, 1), 30.0, dtype=np.float32))
    assert (batch.offers == a.offer_ids.index("loan")).all()
    first = int(batch.decision_ids[0])
    assert first >> 40 == _server(a)
    with pytest.raises(UnknownDecisionError):  # a keeps its batch decisions
        b.report_outcome(first, 1.0)
    a.report_outcome(first, 1.0)
    with pytest.raises(OutcomeAlreadyReportedError):
        a.report_outcome(first, 1.0)
    a.sync_store()
    b.sync_store()
    assert pulls(a, "banner") == pulls(b, "banner") == 1
