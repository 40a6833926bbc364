"""Single decisions: slot filling, explanations, profiles, seeds, outcomes and learning."""

import re
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
from decision_engine import Engine, parse_catalog

FEED_OFFERS = ["gold_card", "silver_card", "loan", "newsletter", "push_promo", "summer", "future", "dud"]
SUMMER_START = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
SUMMER_END = datetime(2024, 9, 1, tzinfo=UTC).timestamp()


def fillable(engine, placement, profile, now):
    """How many slots the placement can fill for a profile with every consent: eligible
    offers without a group, plus one per exclusion group with an eligible offer."""
    rules = engine.evaluate_rules(profile[None, :])[0]
    models = {o.id: o for o in engine.catalog.model.offers}
    without_group, groups = 0, set()
    for offer_id in engine.placements[placement][2]:
        o = models[offer_id]
        started = o.active_from is None or o.active_from <= now
        active = started and (o.active_to is None or now < o.active_to)
        if rules[engine.offer_ids.index(offer_id)] and active:
            if o.group is None:
                without_group += 1
            else:
                groups.add(o.group)
    return without_group + len(groups)


def test_decisions_fill_slots_without_duplicates_or_group_clashes(demo_engine, demo_profiles, now):
    groups = {o.id: o.group for o in demo_engine.catalog.model.offers}
    for placement, (_channel, slots, offers) in demo_engine.placements.items():
        for profile in demo_profiles[:150]:
            d = demo_engine.decide(placement, profile, consents=demo_engine.channels, now=now)
            assert d.placement == placement
            assert len(d.offers) == min(slots, fillable(demo_engine, placement, profile, now))
            assert len(set(d.offer_ids)) == len(d.offer_ids)
            assert set(d.offer_ids) <= set(offers)
            taken = [groups[o] for o in d.offer_ids if groups[o] is not None]
            assert len(taken) == len(set(taken)), d.offer_ids
            assert [o.slot for o in d.offers] == list(range(len(d.offers)))
            for o in d.offers:
                assert 0.0 < o.propensity <= 1.0, o
                assert o.score >= 0.0
            scores = [o.score for o in d.offers]
            assert scores == sorted(scores, reverse=True), "slots are filled best first"


@pytest.mark.parametrize("seed", range(6))
def test_explain_gives_the_exact_reason_for_every_left_out_offer(make_inline_engine, row, now, seed):
    engine = make_inline_engine(seed)
    d = engine.decide("feed", row(), consents=["email"], now=now, explain=True)
    (card,) = {"gold_card", "silver_card"} & set(d.offer_ids)
    other_card = "silver_card" if card == "gold_card" else "gold_card"
    assert set(d.offer_ids) == {card, "loan", "newsletter"}
    assert dict(d.reasons) == {
        other_card: f"exclusion group 'cards' already filled by '{card}'",
        "push_promo": "no consent for channel 'push'",
        "summer": "inactive: its active window has ended",
        "future": "inactive: its active window has not started",
        "dud": "outranked (score 0.000000)",
    }


@pytest.mark.parametrize("seed", range(12))
def test_explain_outranked_offers_scored_below_the_winner(make_inline_engine, row, now, seed):
    d = make_inline_engine(seed).decide("hero", row(), now=now, explain=True)
    (winner,) = d.offers
    assert set(d.reasons) == {"gold_card", "silver_card", "loan", "dud"} - {winner.offer_id}
    for offer_id, reason in d.reasons.items():
        if winner.offer_id in ("gold_card", "silver_card") and offer_id in ("gold_card", "silver_card"):
            assert reason == f"exclusion group 'cards' already filled by '{winner.offer_id}'"
            continue
        m = re.fullmatch(r"outranked \(score (\d+\.\d{6})\)", reason)
        assert m, reason
        assert float(m[1]) <= winner.score + 1e-6


def test_explain_consents(engine, row, now):
    d = engine.decide("feed", row(age=19, spend=10, segment=0), now=now, explain=True)
    assert d.reasons["newsletter"] == "no consent for channel 'email'"
    assert d.reasons["push_promo"] == "no consent for channel 'push'"
    d = engine.decide("feed", row(age=19, spend=10, segment=0), consents=["push"], now=now, explain=True)
    assert d.reasons["newsletter"] == "no consent for channel 'email'"
    assert "push_promo" in d.offer_ids


@pytest.mark.parametrize(
    ("profile", "offer", "clause"),
    [
        ({"age": 20}, "gold_card", "age >= 21"),
        ({"segment": 1}, "gold_card", 'segment in ["gold", "platinum"]'),
        ({"owns_card": 1}, "gold_card", "!owns_card"),
        ({"age": 22, "segment": 0}, "loan", "age >= 25"),
        ({"spend": 2500}, "loan", "spend * 2 < 5000"),
        # A rule without a top-level `&&` is one clause: the whole rule, parentheses included.
        ({"spend": 500, "segment": 0}, "silver_card", 'segment == "silver" || (spend > 1000 && age >= 18)'),
    ],
    ids=["age", "segment", "owns_card", "loan-age", "loan-spend-boundary", "whole-rule-with-parentheses"],
)
def test_explain_names_the_first_false_rule_clause(engine, row, now, profile, offer, clause):
    d = engine.decide("hero", row(**profile), now=now, explain=True)
    assert d.reasons[offer] == f"rule: `{clause}` is false"


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (SUMMER_START - 1, "inactive: its active window has not started"),
        (SUMMER_START, None),
        (datetime(2024, 7, 15, 12, tzinfo=UTC), None),
        (SUMMER_END - 0.001, None),
        (SUMMER_END, "inactive: its active window has ended"),
        (datetime(2026, 1, 1, tzinfo=UTC), "inactive: its active window has ended"),
    ],
)
def test_active_window_via_now(engine, row, when, reason):
    # Only `summer`, `future` (inactive until 2030) and `dud` (score 0) can show here.
    d = engine.decide("feed", row(age=19, spend=10, segment=0), now=when, explain=True)
    if reason is None:
        assert d.offer_ids == ["summer", "dud"]
    else:
        assert d.offer_ids == ["dud"]
        assert d.reasons["summer"] == reason
    assert d.reasons["future"] == "inactive: its active window has not started"


def test_explain_reasons_are_in_catalog_order(engine, row, now):
    # The binding documents `reasons` as "offer id -> why it was left out, in catalog order".
    d = engine.decide("feed", row(), consents=["email"], now=now, explain=True)
    assert list(d.reasons) == [o for o in FEED_OFFERS if o not in d.offer_ids]


def test_no_reasons_without_explain(engine, row, now):
    assert dict(engine.decide("feed", row(), now=now).reasons) == {}


def test_dict_profile_decides_like_its_vector(make_inline_engine, gold_adult, row, now):
    by_name, by_vector = make_inline_engine(3), make_inline_engine(3)
    assert np.array_equal(by_name.encode(gold_adult), row())
    assert by_name.encode(gold_adult).dtype == np.float32
    for _ in range(20):
        a = by_name.decide("feed", gold_adult, consents=["email"], now=now, explain=True)
        b = by_vector.decide("feed", row(), consents=["email"], now=now, explain=True)
        assert (a.decision_id, a.offer_ids, dict(a.reasons)) == (b.decision_id, b.offer_ids, dict(b.reasons))
        assert [(o.score, o.propensity) for o in a.offers] == [(o.score, o.propensity) for o in b.offers]


def test_encode_demo_profile_round_trips(demo_engine, demo_profiles):
    categories = {f.name: f.values for f in demo_engine.catalog.model.features if f.values}
    vector = demo_profiles[3]
    profile = {
        name: categories[name][int(value)] if name in categories else float(value)
        for name, value in zip(demo_engine.feature_names, vector, strict=True)
    }
    assert np.array_equal(demo_engine.encode(profile), vector)


def decisions(engine, profiles, now):
    return [
        (d.decision_id, d.offer_ids, [o.score for o in d.offers])
        for d in (engine.decide("app_feed", p, consents=engine.channels, now=now) for p in profiles)
    ]


def test_same_seed_same_decisions_different_seed_different(demo_profiles, now):
    from seeds.generator import DEMO_CATALOG

    # a sampling policy at every placement (the demo catalog's lin_ucb draws nothing)
    demo_policy = "policy: {type: lin_ucb, alpha: 0.1, ridge: 300}"
    text = DEMO_CATALOG.read_text().replace(demo_policy, "policy: thompson")
    sampling = parse_catalog(text)

    def make_demo_engine(seed):
        return Engine(sampling, seed=seed, clock="simulated")

    profiles = demo_profiles[:200]
    first = decisions(make_demo_engine(21), profiles, now)
    assert decisions(make_demo_engine(21), profiles, now) == first
    other = decisions(make_demo_engine(22), profiles, now)
    assert [ids for ids, _, _ in other] == [ids for ids, _, _ in first]
    assert sum(a[1] != b[1] for a, b in zip(first, other, strict=True)) > 20


def state(engine, placement):
    return {arm.offer_id: (arm.alpha, arm.beta, arm.mean) for arm in engine.policy_state(placement)}


def test_policy_state_starts_at_the_prior(engine):
    assert state(engine, "mail") == {o: (2.0, 3.0, 0.4) for o in ("loan", "newsletter", "dud")}
    assert list(state(engine, "hero")) == ["gold_card", "silver_card", "loan", "dud"]
    assert set(state(engine, "hero").values()) == {(1.0, 1.0, 0.5)}


def test_report_outcome_updates_alpha_and_beta(engine, row, now):
    feed_before = state(engine, "feed")
    d = engine.decide("hero", row(), now=now)
    before = state(engine, "hero")
    engine.report_outcome(d.decision_id, 1.0)
    (chosen,) = d.offer_ids
    expected = dict(before)
    expected[chosen] = (before[chosen][0] + 1, before[chosen][1], (before[chosen][0] + 1) / 3)
    assert state(engine, "hero") == expected

    d = engine.decide("hero", row(), now=now)
    (chosen,) = d.offer_ids
    a, b, _ = expected[chosen]
    engine.report_outcome(d.decision_id, 0.25, chosen)
    after = state(engine, "hero")
    assert after[chosen] == pytest.approx((a + 0.25, b + 0.75, (a + 0.25) / (a + b + 1)))
    del after[chosen], expected[chosen]
    assert after == expected
    assert state(engine, "feed") == feed_before, "only the decision's placement learns"
    assert engine.pending_decisions == 0


def test_report_outcome_for_batch_decision_ids(engine, row, now):
    rng = np.random.default_rng(1)
    ages, spends = rng.integers(18, 60, 64), rng.integers(0, 3000, 64)
    profiles = np.stack([row(age=a, spend=s) for a, s in zip(ages, spends, strict=True)])
    batch = engine.decide_batch("feed", profiles, consents=np.ones((64, 3), bool), now=now)
    shown = Counter()
    for decision_id, offers in zip(batch.decision_ids, batch.offers, strict=True):
        for offer_id in engine.offer_id_array(offers):
            if offer_id:
                engine.report_outcome(decision_id, 1.0, offer_id)
                shown[offer_id] += 1
    assert sum(shown.values()) == 64 * 3
    assert {o: a - 1 for o, (a, _, _) in state(engine, "feed").items() if a > 1} == dict(shown)
    assert {b for _, b, _ in state(engine, "feed").values()} == {1.0}

    batch = engine.decide_batch("hero", profiles, now=now)
    for decision_id in batch.decision_ids:
        engine.report_outcome(decision_id, 0.0)  # one offer each: offer_id may be left out
    counts = Counter(engine.offer_id_array(batch.offers[:, 0]))
    assert {o: b - 1 for o, (_, b, _) in state(engine, "hero").items() if b > 1} == dict(counts)
    assert engine.pending_decisions == 0


THREE_ARMS = """\
version: 1
features:
  - {name: x, type: float}
channels: [web]
placements:
  - {id: hero, channel: web, slots: 1}
offers:
  - {id: low, placements: [hero]}
  - {id: mid, placements: [hero]}
  - {id: best, placements: [hero]}
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_thompson_sampling_converges_to_the_best_offer(seed):
    engine = Engine(parse_catalog(THREE_ARMS), seed=seed, clock="simulated")
    rates = {"low": 0.04, "mid": 0.10, "best": 0.25}
    rng = np.random.default_rng(seed)
    profile = np.zeros(1, np.float32)
    picks = []
    for _ in range(3000):
        d = engine.decide("hero", profile)
        (offer,) = d.offer_ids
        picks.append(offer)
        engine.report_outcome(d.decision_id, float(rng.random() < rates[offer]))
    assert Counter(picks[-500:])["best"] >= 450
    arms = {arm.offer_id: arm for arm in engine.policy_state("hero")}
    assert max(arms, key=lambda o: arms[o].mean) == "best"
    assert arms["best"].mean == pytest.approx(0.25, abs=0.04)
    assert sum(a.alpha + a.beta - 2 for a in arms.values()) == pytest.approx(3000)


def test_apply_catalog_keeps_learning_and_rejects_bad_catalogs(make_demo_engine, demo_profiles):
    from decision_engine import CatalogError, parse_catalog

    from seeds.generator import DEMO_CATALOG

    engine = make_demo_engine(5)
    decision = engine.decide("push_daily", demo_profiles[0], consents=["push"])
    engine.report_outcome(decision.decision_id, 1.0)
    learned = {a.offer_id: (a.pulls, a.mean) for a in engine.policy_state("push_daily")}

    text = DEMO_CATALOG.read_text()
    with pytest.raises(CatalogError, match="unknown feature 'agee'"):
        engine.apply_catalog(parse_catalog(text.replace("age >= ", "agee >= ", 1)))
    assert {a.offer_id: (a.pulls, a.mean) for a in engine.policy_state("push_daily")} == learned

    engine.apply_catalog(parse_catalog(text.replace("value: 8.0", "value: 9.0")))
    assert {a.offer_id: (a.pulls, a.mean) for a in engine.policy_state("push_daily")} == learned
    assert engine.decide("push_daily", demo_profiles[1], consents=["push"]).offers
