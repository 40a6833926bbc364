"""Triggers on a simulated clock: an event starts an instance, `fire_due(now)` fires it when
its delay has passed, and its decision waits for a subscriber's acknowledgement. Each test
drives the clock itself and checks the trigger history says what became of every instance."""

from __future__ import annotations

import pytest
from decision_engine import InvalidInputError

from tests.triggers.conftest import (
    CART_ABANDONED,
    HOUR,
    MINUTE,
    T0,
    Events,
    customer,
    engine_with,
    ids,
    outcomes,
    poll,
)

DUE = T0 + 30 * MINUTE  # when the cart_abandoned instance of an event at T0 fires


def test_an_abandoned_cart_is_mailed_30_minutes_later_and_not_before() -> None:
    engine = engine_with(CART_ABANDONED)
    customer(engine)
    Events(engine)("cart_add", T0, cart_id="c1", cart_value=50.0)
    assert engine.pending_timers == 1

    assert engine.fire_due(DUE - 1) == 0
    assert poll(engine, DUE - 1) == [] and engine.pending_timers == 1 and outcomes(engine) == []

    assert engine.fire_due(DUE) == 1
    assert engine.pending_timers == 0 and engine.pending_deliveries == 1
    (delivery,) = poll(engine, DUE)
    assert {k: delivery[k] for k in ("trigger", "profile_id", "placement", "channel", "attempt")} == {
        "trigger": "cart_abandoned",
        "profile_id": "p1",
        "placement": "email_cart",
        "channel": "email",
        "attempt": 1,
    }
    assert delivery["decided_at"] == DUE
    (offer,) = delivery["offers"]
    assert offer[0] == "cart_reminder" and 0 < offer[2] <= 1
    (entry,) = engine.trigger_history("p1")
    assert (entry["outcome"], entry["key"], entry["time"]) == ("delivered", "c1", DUE)
    assert entry["decision_id"] == delivery["decision_id"]

    assert engine.ack_deliveries([delivery["decision_id"]]) == 1
    assert engine.pending_deliveries == 0 and outcomes(engine) == ["delivered", "acknowledged"]
    assert engine.fire_due(DUE + HOUR) == 0 and poll(engine, DUE + HOUR) == []


def test_an_event_the_filter_refuses_starts_nothing_and_says_why() -> None:
    engine = engine_with(CART_ABANDONED)
    customer(engine)
    Events(engine)("cart_add", T0, cart_id="c1", cart_value=5.0)
    assert engine.pending_timers == 0
    (entry,) = engine.trigger_history("p1")
    assert entry["outcome"] == "filtered" and "cart_value" in entry["detail"]


def test_a_purchase_of_the_same_cart_cancels_and_history_names_the_event() -> None:
    engine = engine_with(CART_ABANDONED)
    customer(engine)
    track = Events(engine)
    track("cart_add", T0, cart_id="c1", cart_value=50.0)  # e1
    track("cart_add", T0, cart_id="c2", cart_value=80.0)  # e2
    track("purchase", T0 + 10 * MINUTE, cart_id="c9", product="shoes")  # e3: another cart
    assert engine.pending_timers == 2 and outcomes(engine) == []
    track("purchase", T0 + 20 * MINUTE, cart_id="c1", product="shoes")  # e4
    assert engine.pending_timers == 1
    (cancelled,) = engine.trigger_history("p1")
    assert (cancelled["outcome"], cancelled["key"], cancelled["time"]) == (
        "cancelled",
        "c1",
        T0 + 20 * MINUTE,
    )
    assert "e4" in cancelled["detail"] and "purchase" in cancelled["detail"]

    assert engine.fire_due(DUE) == 1
    (delivery,) = poll(engine, DUE)
    assert engine.trigger_history("p1")[-1]["key"] == "c2"
    assert outcomes(engine) == ["cancelled", "delivered"] and delivery["attempt"] == 1


QUIET = """\
  - id: night_safe
    event: cart_add
    delay: 30m
    placement: email_cart
    quiet_hours: {{start: 22, end: 8, time_zone: utc_offset, without_time_zone: {without}, action: {action}}}
"""
NIGHT = T0 + 9 * HOUR + 45 * MINUTE  # 21:45 UTC: due at 22:15, in the quiet hours at offset 0
MORNING = T0 + 20 * HOUR  # 08:00 UTC the next day


def quiet(action: str, without: str = "utc") -> str:
    text = QUIET.format(action=action, without=without)
    return text.replace("action: queue}", "action: queue, ttl: 12h}")


def test_quiet_hours_queue_until_they_end() -> None:
    engine = engine_with(quiet("queue"))
    customer(engine, utc_offset=0.0)
    Events(engine)("cart_add", NIGHT)
    engine.fire_due(NIGHT + 30 * MINUTE)
    assert engine.pending_timers == 1 and engine.pending_deliveries == 0 and outcomes(engine) == []
    assert engine.fire_due(MORNING - 1) == 0 and poll(engine, MORNING - 1) == []

    assert engine.fire_due(MORNING) == 1
    (delivery,) = poll(engine, MORNING)
    assert delivery["decided_at"] == MORNING and outcomes(engine) == ["delivered"]


def test_quiet_hours_follow_the_profiles_time_zone() -> None:
    engine = engine_with(quiet("queue"))
    customer(engine, utc_offset=10.0)  # 12:30 UTC is 22:30 there: quiet until 08:00 local
    Events(engine)("cart_add", T0)
    engine.fire_due(DUE)
    assert poll(engine, DUE) == [] and engine.pending_timers == 1
    local_morning = T0 + 10 * HOUR  # 22:00 UTC = 08:00 at UTC+10
    assert engine.fire_due(local_morning - 1) == 0
    assert engine.fire_due(local_morning) == 1
    assert ids(poll(engine, local_morning)) != []


def test_quiet_hours_discard() -> None:
    engine = engine_with(quiet("discard"))
    customer(engine, utc_offset=0.0)
    Events(engine)("cart_add", NIGHT)
    assert engine.fire_due(NIGHT + 30 * MINUTE) == 1
    assert engine.pending_timers == 0 and engine.pending_deliveries == 0
    assert poll(engine, MORNING) == []
    (entry,) = engine.trigger_history("p1")
    assert entry["outcome"] == "discarded_quiet_hours" and "22:00-08:00" in entry["detail"]


@pytest.mark.parametrize(
    ("without", "delivered_at", "outcome"),
    [
        ("utc", MORNING, "delivered"),  # quiet hours in UTC: queued to 08:00 UTC
        ("ignore", NIGHT + 30 * MINUTE, "delivered"),  # no quiet hours: sent at once
        ("discard", None, "discarded_quiet_hours"),
    ],
)
def test_a_profile_without_a_time_zone_follows_the_declared_policy(
    without: str, delivered_at: float | None, outcome: str
) -> None:
    engine = engine_with(quiet("queue", without))
    customer(engine)  # utc_offset has a default, but the profile has no value of its own
    Events(engine)("cart_add", NIGHT)
    engine.fire_due(NIGHT + 30 * MINUTE)
    engine.fire_due(MORNING)
    assert engine.pending_timers == 0 and outcomes(engine) == [outcome]
    deliveries = poll(engine, MORNING)
    if delivered_at is None:
        assert deliveries == [] and "no time zone" in engine.trigger_history("p1")[0]["detail"]
    else:
        (delivery,) = deliveries
        assert delivery["decided_at"] == delivered_at


REENTRY = """\
  - {id: welcome, event: visit, delay: 30m, placement: email_cart, reentry: 24h}
"""


def test_a_profile_enters_again_only_after_the_reentry_window() -> None:
    engine = engine_with(REENTRY)
    customer(engine)
    track = Events(engine)
    track("visit", T0)
    track("visit", T0 + HOUR)  # inside the window: refused
    assert engine.pending_timers == 1
    (refused,) = engine.trigger_history("p1")
    assert (refused["outcome"], refused["time"]) == ("reentry", T0 + HOUR)
    engine.fire_due(DUE)
    track("visit", T0 + 24 * HOUR - 1)
    assert engine.pending_timers == 0  # the window counts from the entry, not the delivery
    track("visit", T0 + 24 * HOUR)
    assert engine.pending_timers == 1
    assert outcomes(engine) == ["reentry", "delivered", "reentry"]


MAX_LIVE = """\
  - id: browse
    event: view
    key: item
    delay: 1h
    placement: email_cart
    max_live: 2
"""


def test_at_most_max_live_instances_per_key() -> None:
    engine = engine_with(MAX_LIVE)
    customer(engine)
    track = Events(engine)
    for minute in range(3):
        track("view", T0 + minute * MINUTE, item="a")
    track("view", T0 + 5 * MINUTE, item="b")  # another key has its own
    assert engine.pending_timers == 3
    (refused,) = engine.trigger_history("p1")
    assert (refused["outcome"], refused["key"]) == ("max_live", "a")


def test_an_inbound_decision_that_uses_the_channel_cap_makes_the_trigger_capped() -> None:
    engine = engine_with(CART_ABANDONED)
    customer(engine)
    Events(engine)("cart_add", T0, cart_id="c1", cart_value=50.0)
    inbound = engine.decide("email_news", None, profile_id="p1", now=T0 + 10 * MINUTE)
    assert inbound.offer_ids == ["newsletter"]  # the day's one email

    assert engine.fire_due(DUE) == 1
    assert poll(engine, DUE) == [] and engine.pending_deliveries == 0
    (entry,) = engine.trigger_history("p1")
    assert entry["outcome"] == "capped" and "cart_reminder" in entry["detail"]


def test_a_triggered_decision_uses_the_cap_of_inbound_ones() -> None:
    engine = engine_with(CART_ABANDONED)
    customer(engine)
    Events(engine)("cart_add", T0, cart_id="c1", cart_value=50.0)
    engine.fire_due(DUE)
    (delivery,) = poll(engine, DUE)
    # reserved at decision time, before any acknowledgement
    inbound = engine.decide("email_news", None, profile_id="p1", now=DUE + MINUTE, explain=True)
    assert inbound.offer_ids == [] and "cap" in inbound.reasons["newsletter"]
    assert engine.ack_deliveries(ids([delivery])) == 1
    assert engine.decide("email_news", None, profile_id="p1", now=DUE + 2 * MINUTE).offer_ids == []


TWO_AT_ONCE = """\
  - {id: news_after_cart, event: cart_add, delay: 30m, placement: email_news}
  - {id: cart_mail, event: cart_add, delay: 30m, placement: email_cart}
"""


def test_triggers_firing_together_are_arbitrated_by_value_not_arrival() -> None:
    engine = engine_with(TWO_AT_ONCE)
    customer(engine)
    Events(engine)("cart_add", T0)
    assert engine.pending_timers == 2
    assert engine.fire_due(DUE) == 2
    (delivery,) = poll(engine, DUE)
    assert delivery["trigger"] == "cart_mail"  # cart_reminder is worth 2, the newsletter 1
    by_trigger = {e["trigger"]: e["outcome"] for e in engine.trigger_history("p1")}
    assert by_trigger == {"cart_mail": "delivered", "news_after_cart": "capped"}


def test_an_unacknowledged_delivery_comes_again_after_the_visibility_timeout() -> None:
    engine = engine_with(CART_ABANDONED)
    customer(engine)
    Events(engine)("cart_add", T0, cart_id="c1", cart_value=50.0)
    engine.fire_due(DUE)
    (first,) = poll(engine, DUE, visibility=60.0)
    assert first["attempt"] == 1
    assert poll(engine, DUE + 59, visibility=60.0) == []  # in flight
    (again,) = poll(engine, DUE + 60, visibility=60.0)
    assert (again["decision_id"], again["attempt"]) == (first["decision_id"], 2)
    assert {k: v for k, v in again.items() if k != "attempt"} == {
        k: v for k, v in first.items() if k != "attempt"
    }

    assert engine.ack_deliveries([first["decision_id"]]) == 1
    assert engine.ack_deliveries([first["decision_id"]]) == 0  # once
    assert poll(engine, DUE + 1000) == [] and engine.pending_deliveries == 0
    assert outcomes(engine) == ["delivered", "acknowledged"]
    assert "2 deliver" in engine.trigger_history("p1")[-1]["detail"]


def test_a_delivery_never_acknowledged_is_released_after_its_ttl_and_gives_its_cap_back() -> None:
    engine = engine_with(
        CART_ABANDONED.replace("placement: email_cart", "placement: email_cart\n    delivery_ttl: 1h")
    )
    customer(engine)
    Events(engine)("cart_add", T0, cart_id="c1", cart_value=50.0)
    engine.fire_due(DUE)
    (delivery,) = poll(engine, DUE, visibility=60.0)
    assert engine.decide("email_news", None, profile_id="p1", now=DUE + MINUTE).offer_ids == []  # capped

    engine.fire_due(DUE + HOUR - 1)
    assert engine.pending_deliveries == 1
    engine.fire_due(DUE + HOUR)
    assert engine.pending_deliveries == 0 and poll(engine, DUE + HOUR) == []
    released = engine.trigger_history("p1")[-1]
    assert (released["outcome"], released["decision_id"]) == ("released", delivery["decision_id"])
    assert engine.ack_deliveries([delivery["decision_id"]]) == 0  # too late
    # the reservation came back: the day's email is free again
    assert engine.decide("email_news", None, profile_id="p1", now=DUE + HOUR + 1).offer_ids == ["newsletter"]


def test_poll_refuses_an_unknown_channel_with_the_cores_message() -> None:
    engine = engine_with(CART_ABANDONED)
    with pytest.raises(InvalidInputError, match="unknown channel 'fax'; channels are web, email, push"):
        poll(engine, T0, channel="fax")
