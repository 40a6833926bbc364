"""Events into computed attributes (count, sum, last, time since) over sliding windows on a
simulated clock; a repeated event id is applied once; events grant and revoke consents and
record purchases."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from decision_engine import Engine

from tests.profiles.conftest import T0, at

_ids = count()


def event(kind: str, days: float, profile_id: str = "ann", **properties: object) -> dict[str, object]:
    return {
        "id": f"e{next(_ids)}",
        "profile_id": profile_id,
        "type": kind,
        "time": at(days),
        "properties": properties,
    }


def computed(engine: Engine, days: float, profile_id: str = "ann") -> dict[str, object]:
    profile = engine.profile(profile_id, now=at(days))
    assert profile is not None
    features = profile["features"]
    assert isinstance(features, dict)
    return {
        name: features[name]
        for name in ("cart_adds_7d", "spend_30d", "last_cart_value", "days_since_purchase")
    }


def test_computed_attributes_over_windows(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "ann", "age": 40}])
    report = engine.track(
        [
            event("cart_add", 0, value=20.0),
            event("cart_add", 1, value=35.5),
            event("purchase", 2, amount=100.0, product="shoes"),
            event("cart_add", 3, value=12.0),
        ]
    )
    assert (report.accepted, report.duplicates, report.refused) == (4, 0, 0)
    assert computed(engine, 3.5) == {
        "cart_adds_7d": 3,
        "spend_30d": 100.0,
        "last_cart_value": 12.0,
        "days_since_purchase": 1.5,
    }
    # day 9: the cart adds of days 0 and 1 left the 7-day window
    assert computed(engine, 9)["cart_adds_7d"] == 1
    assert engine.track([event("purchase", 10, amount=50.0, product="hat")]).accepted == 1
    assert computed(engine, 12)["spend_30d"] == 150.0
    assert computed(engine, 12)["days_since_purchase"] == 2.0
    # day 33: the day-2 purchase left the 30-day window, the day-10 one is still in it
    later = computed(engine, 33)
    assert (later["cart_adds_7d"], later["spend_30d"], later["last_cart_value"]) == (0, 50.0, 12.0)
    assert later["days_since_purchase"] == 23.0


def test_an_event_creates_its_profile(engine: Engine) -> None:
    assert engine.track([event("cart_add", 0, profile_id="new", value=3.0)]).accepted == 1
    assert engine.profile_count == 1
    assert computed(engine, 0, "new")["cart_adds_7d"] == 1
    features = engine.profile("new", now=T0)["features"]  # type: ignore[index]
    assert features["age"] == 35  # the declared default


def test_datetime_times_are_accepted(engine: Engine) -> None:
    when = datetime.fromtimestamp(at(1), UTC)
    naive = when.replace(tzinfo=None)  # taken as UTC
    events = [
        {"id": "d1", "profile_id": "ann", "type": "cart_add", "time": when, "properties": {"value": 1.0}},
        {"id": "d2", "profile_id": "ann", "type": "cart_add", "time": naive, "properties": {"value": 2.0}},
    ]
    assert engine.track(events).accepted == 2
    assert computed(engine, 1)["cart_adds_7d"] == 2
    assert computed(engine, 8.5)["cart_adds_7d"] == 0


def test_a_repeated_event_id_is_applied_once(engine: Engine) -> None:
    first = event("purchase", 1, amount=10.0, product="hat")
    report = engine.track([first, event("cart_add", 1, value=5.0)])
    assert (report.accepted, report.duplicates) == (2, 0)
    again = engine.track([first, dict(first)])
    assert (again.accepted, again.duplicates, again.refused) == (0, 2, 0)
    assert computed(engine, 2)["spend_30d"] == 10.0


def test_bad_events_are_rejected_one_by_one(engine: Engine) -> None:
    good = event("cart_add", 0, value=1.0)
    no_id = {k: v for k, v in event("cart_add", 0, value=1.0).items() if k != "id"}
    empty_id = {**event("cart_add", 0), "id": ""}
    no_time = {k: v for k, v in event("cart_add", 0).items() if k != "time"}
    no_profile = {**event("cart_add", 0), "profile_id": ""}
    report = engine.track([good, no_id, empty_id, no_time, no_profile])
    assert report.accepted == 1
    assert [index for index, _, _ in report.rejected] == [1, 2, 3, 4]
    messages = [message for _, _, message in report.rejected]
    assert "id" in messages[0] and "id" in messages[1]
    assert "time" in messages[2]
    assert "profile" in messages[3]
    assert computed(engine, 0)["cart_adds_7d"] == 1


def test_consent_grant_and_revoke(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "ann", "age": 30}])
    assert engine.decide("mail", None, profile_id="ann", now=at(0)).offer_ids == []  # no consent
    engine.track([event("email_opt_in", 1)])
    assert engine.profile("ann", now=at(1))["consents"] == ["email"]  # type: ignore[index]
    assert engine.decide("mail", None, profile_id="ann", now=at(1)).offer_ids != []
    engine.track([event("email_opt_out", 2)])
    assert engine.profile("ann", now=at(2))["consents"] == []  # type: ignore[index]
    assert engine.decide("mail", None, profile_id="ann", now=at(2)).offer_ids == []


def test_purchase_events_suppress_the_product(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "ann", "age": 30}])
    before = engine.decide_page(["feed"], None, profile_id="ann", now=at(0))[0]
    assert "shoes" in before.offer_ids
    engine.track([event("purchase", 1, amount=80.0, product="shoes")])
    assert engine.profile("ann", now=at(1))["purchases"] == ["shoes"]  # type: ignore[index]
    after = engine.decide_page(["feed"], None, profile_id="ann", now=at(1), explain=True)[0]
    assert "shoes" not in after.offer_ids
    assert after.reasons["shoes"] == "contact policy: already bought product 'shoes'"
