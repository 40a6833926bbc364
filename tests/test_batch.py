"""Batch decisions and batch rule evaluation: layout, determinism, agreement with `decide`."""

from datetime import UTC, datetime

import numpy as np
import pytest

PLACEMENTS = ["app_feed", "email_weekly", "push_daily", "web_sidebar"]
F32 = np.float32


def random_consents(n, channels, seed):
    return np.random.default_rng(seed).random((n, channels)) < 0.5


def eligibility(engine, profiles, consents, now):
    """(rows x offers) bool: rule true, offer active at `now`, consent given (if needed)."""
    offers = engine.catalog.model.offers
    ok = engine.evaluate_rules(profiles).copy()
    for i, o in enumerate(offers):
        started = o.active_from is None or o.active_from <= now
        if not started or (o.active_to is not None and now >= o.active_to):
            ok[:, i] = False
        if o.consent is not None:
            ok[:, i] &= consents[:, engine.channels.index(o.consent)]
    return ok


def expected_fill(engine, placement, eligible):
    """Per row: slots the placement can fill, given one offer per exclusion group."""
    _, slots, offer_ids = engine.placements[placement]
    groups = {o.id: o.group for o in engine.catalog.model.offers}
    columns = {}
    for offer_id in offer_ids:
        key = groups[offer_id] or offer_id  # an offer without a group counts on its own
        columns[key] = columns.get(key, False) | eligible[:, engine.offer_ids.index(offer_id)]
    return np.minimum(slots, np.sum(list(columns.values()), axis=0))


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_batch_layout_shapes_and_dtypes(demo_engine, demo_profiles, now, placement):
    n = len(demo_profiles)
    consents = random_consents(n, len(demo_engine.channels), 3)
    _, slots, offer_ids = demo_engine.placements[placement]
    first = demo_engine.decide("app_feed", demo_profiles[0], now=now).decision_id
    b = demo_engine.decide_batch(placement, demo_profiles, consents=consents, now=now)

    assert b.decision_ids.dtype == np.uint64 and b.decision_ids.shape == (n,)
    assert np.array_equal(b.decision_ids, np.arange(first + 1, first + 1 + n, dtype=np.uint64))
    assert b.offers.dtype == np.int32 and b.offers.shape == (n, slots)
    assert b.scores.dtype == F32 and b.scores.shape == (n, slots)
    assert b.propensities.dtype == F32 and b.propensities.shape == (n, slots)

    filled = b.offers >= 0
    eligible = eligibility(demo_engine, demo_profiles, consents, now)
    channel = demo_engine.placements[placement][0]
    if channel in demo_engine.consent_channels:  # an outbound channel needs its consent
        eligible &= consents[:, [demo_engine.channels.index(channel)]]
    assert np.array_equal(filled.sum(axis=1), expected_fill(demo_engine, placement, eligible))
    assert np.all(filled[:, :-1] >= filled[:, 1:]), "empty slots come last"
    assert np.all(b.offers[~filled] == -1)
    allowed = {demo_engine.offer_ids.index(o) for o in offer_ids}
    assert set(np.unique(b.offers[filled])) <= allowed
    assert np.all((b.propensities[filled] > 0) & (b.propensities[filled] <= 1))
    assert np.all(np.isfinite(b.scores[filled]) & (b.scores[filled] >= 0))
    assert np.all(np.diff(np.where(filled, b.scores, -1), axis=1) <= 0), "best first"
    groups = {i: o.group for i, o in enumerate(demo_engine.catalog.model.offers)}
    for offers in b.offers:
        shown = [int(o) for o in offers if o >= 0]
        assert len(set(shown)) == len(shown)
        taken = [groups[o] for o in shown if groups[o] is not None]
        assert len(taken) == len(set(taken))
    ids = demo_engine.offer_id_array(b.offers)
    assert np.array_equal(ids == "", ~filled)

    nxt = demo_engine.decide_batch(placement, demo_profiles[:5], now=now)
    assert nxt.decision_ids[0] == b.decision_ids[-1] + 1


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_batch_is_the_same_for_any_thread_count(make_demo_engine, demo_profiles, now, placement):
    consents = random_consents(len(demo_profiles), 4, 4)
    results = [
        make_demo_engine(5).decide_batch(placement, demo_profiles, consents=consents, now=now, threads=n)
        for n in (1, 2, None)
    ]
    for other in results[1:]:
        for field in ("decision_ids", "offers", "scores", "propensities"):
            assert np.array_equal(getattr(results[0], field), getattr(other, field), equal_nan=True), field


@pytest.mark.parametrize("placement", ["app_feed", "email_weekly"])
def test_batch_equals_single_decisions_on_a_fresh_engine(make_demo_engine, demo_profiles, now, placement):
    consents = random_consents(len(demo_profiles), 4, 5)
    batch = make_demo_engine(9).decide_batch(placement, demo_profiles, consents=consents, now=now, threads=2)
    single = make_demo_engine(9)  # fresh, so its decision ids start where the batch's did
    channels = np.array(single.channels)
    for i, profile in enumerate(demo_profiles):
        d = single.decide(placement, profile, consents=list(channels[consents[i]]), now=now)
        k = len(d.offers)
        assert d.decision_id == batch.decision_ids[i]
        assert d.offer_ids == list(single.offer_id_array(batch.offers[i, :k]))
        assert np.all(batch.offers[i, k:] == -1)
        # linear policies score a batch by matrix products: the same scores up to f32 rounding
        assert np.allclose(np.array([o.score for o in d.offers], F32), batch.scores[i, :k], rtol=1e-6, atol=0)
        assert np.array_equal(np.array([o.propensity for o in d.offers], F32), batch.propensities[i, :k])


def test_batch_respects_the_consent_mask(demo_engine, demo_profiles, now):
    n, channels = len(demo_profiles), demo_engine.channels
    needs = {
        demo_engine.offer_ids.index(o.id): channels.index(o.consent)
        for o in demo_engine.catalog.model.offers
        if o.consent
    }
    consents = random_consents(n, len(channels), 6)
    shown_with_consent = 0
    for placement in ("email_weekly", "push_daily", "app_feed", "web_sidebar"):
        for mask in (consents, None, np.ones((n, len(channels)), bool)):
            b = demo_engine.decide_batch(placement, demo_profiles, consents=mask, now=now)
            for (row, _slot), offer in np.ndenumerate(b.offers):
                if int(offer) in needs:
                    assert mask is not None and mask[row, needs[int(offer)]], (placement, row, offer)
                    shown_with_consent += mask is consents
    assert shown_with_consent > 50, "offers needing consent do show where it was given"


def test_batch_respects_active_windows(engine, row):
    profiles = np.stack([row(age=19, spend=10, segment=0)] * 3)  # only summer, future and dud qualify
    inside = engine.decide_batch("feed", profiles, now=datetime(2024, 7, 1, tzinfo=UTC))
    assert engine.offer_id_array(inside.offers).tolist() == [["summer", "dud", ""]] * 3
    after = engine.decide_batch("feed", profiles, now=datetime(2024, 9, 1, tzinfo=UTC).timestamp())
    assert engine.offer_id_array(after.offers).tolist() == [["dud", "", ""]] * 3
    assert np.isnan(after.scores[:, 1:]).all() and np.isnan(after.propensities[:, 1:]).all()
    assert after.propensities[:, 0].tolist() == [1.0] * 3


def test_empty_batch(engine, now):
    b = engine.decide_batch("feed", np.empty((0, 4), F32), now=now)
    assert b.decision_ids.shape == (0,) and b.offers.shape == (0, 3) and b.scores.shape == (0, 3)
    assert engine.evaluate_rules(np.empty((0, 4), F32)).shape == (0, 8)
    assert engine.pending_decisions == 0


def test_evaluate_rules_matches_numpy_on_the_inline_catalog(engine):
    rng = np.random.default_rng(8)
    n = 1000
    age = rng.integers(15, 40, n).astype(F32)
    spend = rng.choice(np.array([0, 999, 1000, 1000.5, 2499.75, 2500, 2500.25, 4000], F32), n)
    owns = rng.integers(0, 2, n).astype(F32)
    segment = rng.integers(0, 4, n).astype(F32)
    out = engine.evaluate_rules(np.column_stack([age, spend, owns, segment]), threads=2)
    assert out.dtype == np.bool_ and out.shape == (n, len(engine.offer_ids))
    assert engine.offer_ids[:3] == ["gold_card", "silver_card", "loan"]
    assert np.array_equal(out[:, 0], (age >= 21) & np.isin(segment, [2, 3]) & (owns == 0))
    assert np.array_equal(out[:, 1], (segment == 1) | ((spend > 1000) & (age >= 18)))
    assert np.array_equal(out[:, 2], (age >= 25) & (spend * F32(2) < 5000))
    assert out[:, 3:].all(), "offers without a rule are always eligible (no window or consent here)"
    assert 0 < out[:, :3].sum() < 3 * n


def test_evaluate_rules_matches_numpy_on_the_demo_catalog(demo_engine, demo_profiles):
    col = {name: demo_profiles[:, i] for i, name in enumerate(demo_engine.feature_names)}
    values = {f.name: f.values for f in demo_engine.catalog.model.features if f.values}

    def code(feature, value):
        return values[feature].index(value)

    expected = {
        "card_gold": (col["age"] >= 21)
        & np.isin(col["segment"], [code("segment", s) for s in ("silver", "gold", "platinum")])
        & (col["owns_credit_card"] == 0),
        "card_cashback": (col["owns_credit_card"] == 0)
        & (col["credit_score"] >= 600)
        & (col["spend_90d"] / (col["visits_90d"] + F32(1)) > 300),
        "overdraft_buffer": (col["balance_checking"] - col["spend_90d"] / F32(3) < 500)
        & (col["balance_checking"] - col["spend_90d"] / F32(3) > -4000)
        & (col["direct_deposit"] != 0),
        "loyalty_anniversary": (col["tenure_months"] >= 12) & (np.fmod(col["tenure_months"], F32(12)) < 2),
        "family_data_plan": ((col["life_stage"] == code("life_stage", "family")) & (col["dependents"] >= 2))
        | (
            np.isin(col["region"], [code("region", "north"), code("region", "capital")])
            & (col["dependents"] >= 1)
        ),
        "mortgage_first_home": (col["owns_mortgage"] == 0)
        & (col["age"] >= 25)
        & (col["age"] <= 45)
        & (col["income_monthly"] * F32(12) > 36000),
    }
    out = demo_engine.evaluate_rules(demo_profiles)
    assert np.array_equal(out, demo_engine.evaluate_rules(demo_profiles, threads=1))
    for offer_id, truth in expected.items():
        got = out[:, demo_engine.offer_ids.index(offer_id)]
        assert np.array_equal(got, truth), offer_id
        assert 0 < truth.sum() < len(truth), f"{offer_id}: both outcomes occur"


def test_pending_decisions_counts_unsettled_batch_rows(engine, row, now):
    # Documented: "Decisions still awaiting at least one outcome".
    b = engine.decide_batch("hero", np.stack([row()] * 4), now=now)
    assert engine.pending_decisions == 4
    engine.report_outcome(b.decision_ids[0], 1.0)
    engine.report_outcome(b.decision_ids[1], 1.0)
    assert engine.pending_decisions == 2
    engine.report_outcome(b.decision_ids[2], 1.0)
    engine.report_outcome(b.decision_ids[3], 1.0)
    assert engine.pending_decisions == 0


def test_batch_without_propensities_decides_the_same(make_demo_engine, demo_profiles):
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with_p = make_demo_engine(3).decide_batch("app_feed", demo_profiles, now=now)
    without = make_demo_engine(3).decide_batch("app_feed", demo_profiles, now=now, propensities=False)
    assert without.propensities is None
    assert with_p.propensities is not None
    np.testing.assert_array_equal(with_p.offers, without.offers)
    np.testing.assert_array_equal(with_p.scores, without.scores)


def test_batch_with_profile_ids_assigns_experiment_groups_like_single_decisions():
    from decision_engine import Engine, parse_catalog

    from tests.batch.profiles import HOLDOUT_CATALOG

    catalog = parse_catalog(HOLDOUT_CATALOG, "inline.yaml")
    engine = Engine(catalog, seed=5, clock="simulated")
    ids = [f"c{i}" for i in range(400)]
    rows = np.full((len(ids), 1), 30, np.float32)
    batch = engine.decide_batch("hero", rows, profile_ids=ids, now=1_000.0)
    assert engine.experiments == [("universal_holdout", ["holdout", "personalized"])]
    assert batch.groups is not None and batch.groups.shape == (len(ids), 1)
    holdout = batch.groups[:, 0] == 0
    assert 40 < holdout.sum() < 120
    for i in range(0, len(ids), 7):
        single = engine.decide("hero", rows[i], profile_id=ids[i], now=1_000.0)
        assert dict(single.experiments)["universal_holdout"] == ("holdout" if holdout[i] else "personalized")
    rich = engine.offer_ids.index("rich")
    assert (batch.offers[holdout, 0] == rich).all() and (batch.propensities[holdout, 0] == 1.0).all()
    assert engine.decide_batch("hero", rows, now=1_000.0).groups is None, "no ids, no experiments"
