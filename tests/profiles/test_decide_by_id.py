"""Deciding by id: the stored profile (features, computed attributes, consents) decides as
the same features sent in the request do; context overrides stored values for one decision;
a never-seen id is NOT_FOUND or gets the defaults, by catalog; deleting a profile erases it
and its contact history."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from decision_engine import Engine, LoadedCatalog
from decision_engine.errors import InvalidInputError, UnknownProfileError

from tests.profiles.conftest import T0, at

ANN = {"id": "ann", "age": 41, "spend": 300.0, "vip": True, "segment": "gold", "consents": ["email"]}


def stored_features(engine: Engine, profile_id: str, now: float) -> dict[str, object]:
    profile = engine.profile(profile_id, now=now)
    assert profile is not None
    features = profile["features"]
    assert isinstance(features, dict)
    return features


@pytest.mark.parametrize("seed", range(4))
def test_decide_by_id_equals_deciding_with_the_features(
    make_engine: Callable[..., Engine], seed: int
) -> None:
    by_id, by_features = make_engine(seed), make_engine(seed)
    by_id.upsert_profiles([ANN])
    by_id.track(
        [
            {
                "id": f"c{i}",
                "profile_id": "ann",
                "type": "cart_add",
                "time": at(i * 0.1),
                "properties": {"value": 9.0},
            }
            for i in range(3)
        ]
    )
    features = stored_features(by_id, "ann", at(1))
    assert features["cart_adds_7d"] == 3  # cart_nudge is eligible from the computed attribute
    for placement in ("hero", "feed", "mail"):
        stored = by_id.decide(placement, None, profile_id="ann", now=at(1), explain=True)
        sent = by_features.decide(
            placement, features, profile_id="ann", consents=["email"], now=at(1), explain=True
        )
        assert stored.offer_ids, placement
        assert (stored.decision_id, stored.offer_ids, stored.reasons) == (
            sent.decision_id,
            sent.offer_ids,
            sent.reasons,
        )
        assert [o.score for o in stored.offers] == [o.score for o in sent.offers]
        assert [o.propensity for o in stored.offers] == [o.propensity for o in sent.offers]


def test_decide_page_by_id(make_engine: Callable[..., Engine]) -> None:
    by_id, by_features = make_engine(3), make_engine(3)
    by_id.upsert_profiles([ANN])
    features = stored_features(by_id, "ann", T0)
    stored = by_id.decide_page(["hero", "feed"], None, profile_id="ann", now=T0)
    sent = by_features.decide_page(["hero", "feed"], features, profile_id="ann", consents=["email"], now=T0)
    assert [d.offer_ids for d in stored] == [d.offer_ids for d in sent]
    assert len(stored) == 2 and stored[0].offer_ids


def test_context_overrides_stored_features_for_one_decision(make_engine: Callable[..., Engine]) -> None:
    by_id, by_features = make_engine(5), make_engine(5)
    by_id.upsert_profiles([{**ANN, "segment": "basic"}])
    features = {**stored_features(by_id, "ann", T0), "segment": "gold"}
    stored = by_id.decide("hero", None, profile_id="ann", context={"segment": "gold"}, now=T0, explain=True)
    sent = by_features.decide("hero", features, profile_id="ann", consents=["email"], now=T0, explain=True)
    assert (stored.offer_ids, stored.reasons) == (sent.offer_ids, sent.reasons)
    assert "gold_offer" not in stored.reasons  # eligible through the context
    assert stored_features(by_id, "ann", T0)["segment"] == "basic"  # nothing stored


def test_unknown_profile_is_not_found(engine: Engine) -> None:
    with pytest.raises(UnknownProfileError, match="nobody"):
        engine.decide("hero", None, profile_id="nobody", now=T0)
    assert engine.profile_count == 0


def test_unknown_profile_gets_the_defaults(defaults_catalog: LoadedCatalog) -> None:
    engine = Engine(defaults_catalog, seed=1, clock="simulated")
    reference = Engine(defaults_catalog, seed=1, clock="simulated")
    defaults = {
        "age": 35,
        "spend": 0.0,
        "vip": False,
        "segment": "basic",
        "cart_adds_7d": 0,
        "spend_30d": 0.0,
        "last_cart_value": 0.0,
        "days_since_purchase": 9999.0,
    }
    decided = engine.decide("feed", None, profile_id="nobody", now=T0, explain=True)
    expected = reference.decide("feed", defaults, profile_id="nobody", now=T0, explain=True)
    assert decided.offer_ids and (decided.offer_ids, decided.reasons) == (
        expected.offer_ids,
        expected.reasons,
    )


def test_decide_by_id_argument_errors(engine: Engine) -> None:
    engine.upsert_profiles([ANN])
    with pytest.raises(InvalidInputError, match="profile_id"):
        engine.decide("hero", None, now=T0)
    with pytest.raises(InvalidInputError, match="context"):
        engine.decide("hero", stored_features(engine, "ann", T0), context={"age": 3}, now=T0)


def test_consents_given_add_to_the_stored_ones(engine: Engine) -> None:
    engine.upsert_profiles([{"id": "bob", "age": 30}])  # no stored consent
    assert engine.decide("mail", None, profile_id="bob", now=T0).offer_ids == []
    assert engine.decide("mail", None, profile_id="bob", consents=["email"], now=T0).offer_ids != []


def test_delete_profile_erases_profile_and_history(engine: Engine) -> None:
    engine.upsert_profiles([ANN, {"id": "bob", "age": 20}])
    decision = engine.decide("hero", None, profile_id="ann", now=T0)
    assert decision.offer_ids
    assert len(engine.contact_history("ann")) == 1
    assert engine.delete_profile("ann") is True
    assert engine.profile("ann") is None
    assert engine.contact_history("ann") == []
    assert engine.profile_count == 1
    assert engine.delete_profile("ann") is False
    with pytest.raises(UnknownProfileError):
        engine.decide("hero", None, profile_id="ann", now=T0)
