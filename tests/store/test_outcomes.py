"""Pending decisions, outcomes, releases and learning shared between servers."""

from __future__ import annotations

import time

import pytest
from decision_engine.errors import InvalidInputError, OutcomeAlreadyReportedError, UnknownDecisionError
from decision_engine.store import RedisStore


def test_an_outcome_reaches_the_server_that_decided(two_stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = two_stores
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
    with pytest.raises(UnknownDecisionError):
        b.report_outcome(a.ids.to_wire(987_654), 1.0)
    b.report_outcome(decision.decision_id, 0.0, second, dismissed=True)
    # the deciding engine learns both, through its inbox
    deadline = time.monotonic() + 2
    while sum(arm.pulls for arm in a.engine.policy_state("mail")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    pulls = {arm.offer_id: arm.pulls for arm in a.engine.policy_state("mail")}
    assert pulls[first] == 1 and pulls[second] == 1
    # the conversion starts its cooldown (1h) on every server
    for store in (a, b):
        later = store.decide("mail", [30.0], profile_id="c-1", explain=True)
        assert first not in later.offer_ids
        assert "cooldown" in later.reasons[first]


def test_a_release_on_another_server_gives_contacts_back(two_stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = two_stores
    decisions = [a.decide("hero", [30.0], profile_id="c-2") for _ in range(3)]
    assert b.decide("hero", [30.0], profile_id="c-2").offers == [], "web cap of 3 reached"
    b.release(decisions[0].decision_id)
    with pytest.raises(UnknownDecisionError):
        b.release(decisions[0].decision_id)
    assert len(b.decide("hero", [30.0], profile_id="c-2").offers) == 1, "one contact given back"
    assert a.decide("hero", [30.0], profile_id="c-2").offers == []
    a.report_outcome(decisions[1].decision_id, 0.0)
    with pytest.raises(InvalidInputError, match="already has an outcome"):
        b.release(decisions[1].decision_id)


def test_learning_reaches_the_other_server(
    two_stores: tuple[RedisStore, RedisStore],
) -> None:
    a, b = two_stores
    flush = float(a.settings.flush_interval)
    for i in range(20):
        decision = a.decide("banner" if i % 2 else "hero", [30.0])
        if decision.offers:
            a.report_outcome(decision.decision_id, 1.0)
    learned = sum(arm.pulls for p in ("hero", "banner") for arm in a.engine.policy_state(p))
    assert learned >= 10
    # about two flush intervals (a's flush, then b's next read); a generous bound, since a
    # loaded machine may be slow: this checks that learning arrives, not how fast
    deadline = time.monotonic() + 10 * flush
    while True:
        seen = sum(arm.pulls for p in ("hero", "banner") for arm in b.engine.policy_state(p))
        if seen == learned or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert seen == learned
    assert a.engine.policy_state("hero") == b.engine.policy_state("hero")
