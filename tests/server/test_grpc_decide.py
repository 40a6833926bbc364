"""DecisionService end to end: Decide, DecideBatch, ReportOutcome(s), Ping, over a real channel."""

from datetime import UTC, datetime

import numpy as np
import pytest
from decision_engine import Engine
from decision_engine.server.converters import DecisionIds
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from tests.server.server_helpers import GOOD

NOW = Timestamp(seconds=int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()))


def decide(served, features=GOOD, placements=("hero",), **fields):
    profile = pb.Profile(features=features, consents=fields.pop("consents", ()))
    return served.decisions.Decide(
        pb.DecideRequest(profile=profile, placements=placements, now=NOW, **fields)
    )


def test_decide_matches_the_in_process_engine(served, inline_catalog, now):
    """One decision path: the server decides exactly as an engine with the same seed."""
    local = Engine(inline_catalog, seed=7, clock="simulated")
    for placement in ("hero", "feed", "mail", "feed"):
        got = decide(served, placements=[placement], consents=["email"]).decisions[0]
        want = local.decide(placement, np.array(GOOD, np.float32), consents=["email"], now=now)
        assert got.decision_id == want.decision_id
        assert got.placement == placement
        assert [(o.offer_id, o.slot) for o in got.offers] == [(o.offer_id, o.slot) for o in want.offers]
        assert [o.score for o in got.offers] == pytest.approx([o.score for o in want.offers])
        assert [o.propensity for o in got.offers] == pytest.approx([o.propensity for o in want.offers])
        assert not got.reasons  # only with explain


def test_decide_several_placements_in_order(served):
    response = decide(served, placements=["feed", "hero", "mail"], consents=["email"])
    assert [d.placement for d in response.decisions] == ["feed", "hero", "mail"]
    ids = [d.decision_id for d in response.decisions]
    assert len(set(ids)) == 3
    assert len(response.decisions[0].offers) == 3


def test_decide_explain_and_now(served):
    reasons = decide(served, placements=["feed"], explain=True).decisions[0].reasons
    assert reasons["push_promo"] == "no consent for channel 'push'"
    assert reasons["summer"] == "inactive: its active window has ended"
    summer = Timestamp(seconds=int(datetime(2024, 7, 1, tzinfo=UTC).timestamp()))
    request = pb.DecideRequest(
        profile=pb.Profile(features=GOOD), placements=["feed"], explain=True, now=summer
    )
    assert "summer" not in served.decisions.Decide(request).decisions[0].reasons


def test_decide_named_features(served, gold_adult, inline_catalog, now):
    values = {
        "age": pb.FeatureValue(number=gold_adult["age"]),
        "spend": pb.FeatureValue(number=gold_adult["spend"]),
        "owns_card": pb.FeatureValue(flag=gold_adult["owns_card"]),
        "segment": pb.FeatureValue(category=gold_adult["segment"]),
    }
    request = pb.DecideRequest(profile=pb.Profile(named_features=values), placements=["hero"], now=NOW)
    got = served.decisions.Decide(request).decisions[0]
    want = Engine(inline_catalog, seed=7, clock="simulated").decide("hero", gold_adult, now=now)
    assert [o.offer_id for o in got.offers] == [o.offer_id for o in want.offers]


def test_decide_batch(served, inline_catalog, now):
    rows = np.array([GOOD, [19, 10, 1, 0], GOOD], dtype=np.float32)
    request = pb.DecideBatchRequest(
        placement="feed",
        features=rows.ravel().tolist(),
        rows=3,
        consent_channels=["email"],
        consents=[True, False, False],
        now=NOW,
    )
    response = served.decisions.DecideBatch(request)
    assert (response.placement, response.rows, response.slots) == ("feed", 3, 3)
    assert len(response.decision_ids) == len(set(response.decision_ids)) == 3
    local = Engine(inline_catalog, seed=7, clock="simulated")
    mask = np.zeros((3, len(local.channels)), dtype=bool)
    mask[0, local.channels.index("email")] = True
    want = local.decide_batch("feed", rows, consents=mask, now=now)
    offers = np.array(response.offers).reshape(3, 3)
    names = np.array([*response.offer_ids, ""])[offers]
    np.testing.assert_array_equal(names, local.offer_id_array(want.offers))
    np.testing.assert_allclose(np.array(response.propensities).reshape(3, 3), want.propensities, rtol=1e-6)
    assert "newsletter" in names[0] and "newsletter" not in names[2]  # consent of row 0 only
    scores = np.array(response.scores).reshape(3, 3)
    assert np.isnan(scores[offers < 0]).all()


def test_decide_batch_of_no_profiles(served):
    response = served.decisions.DecideBatch(pb.DecideBatchRequest(placement="hero", rows=0))
    assert response.rows == 0 and not response.decision_ids


def test_report_outcome_updates_the_policy(served):
    decision = decide(served).decisions[0]
    offer = decision.offers[0].offer_id
    served.decisions.ReportOutcome(pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=1.0))
    state = served.admin.GetPolicyState(admin.GetPolicyStateRequest(placements=["hero"]))
    arms = {a.offer_id: a for a in state.placements[0].arms}
    assert (arms[offer].alpha, arms[offer].beta) == (2.0, 1.0)


def test_report_outcomes_stream_goes_on_past_a_rejected_one(served):
    feed = decide(served, placements=["feed"]).decisions[0]
    hero = decide(served).decisions[0]
    requests = [
        pb.ReportOutcomeRequest(decision_id=feed.decision_id, offer_id=feed.offers[0].offer_id, reward=1.0),
        pb.ReportOutcomeRequest(decision_id=feed.decision_id, offer_id=feed.offers[0].offer_id, reward=1.0),
        pb.ReportOutcomeRequest(decision_id=12345, reward=0.0),
        pb.ReportOutcomeRequest(decision_id=hero.decision_id, reward=0.0),
    ]
    response = served.decisions.ReportOutcomes(iter(requests))
    assert response.accepted == 2
    assert [(r.index, r.code) for r in response.rejected] == [(1, "ALREADY_EXISTS"), (2, "NOT_FOUND")]
    assert "already reported" in response.rejected[0].message
    assert response.rejected[1].message.startswith("unknown decision id 12345")
    stats = served.admin.GetStats(admin.GetStatsRequest())
    assert (stats.outcomes, stats.rejected_outcomes) == (2, 2)


def test_ping(served):
    assert served.decisions.Ping(pb.PingRequest()) == pb.PingResponse()


def test_worker_decision_ids_carry_the_worker(start_server, inline_catalog):
    running = start_server(Engine(inline_catalog, seed=7, clock="simulated"), worker=3)
    decision = decide(running).decisions[0]
    assert decision.decision_id >> 56 == 3
    assert decision.decision_id & ((1 << 56) - 1) == 1
    running.decisions.ReportOutcome(pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=1.0))
    with pytest.raises(Exception, match="made by worker 2 and this is worker 3"):
        DecisionIds(3).from_wire(DecisionIds(2).to_wire(1))


def test_decide_returns_the_experiment_groups(start_server, inline_yaml):
    from decision_engine import parse_catalog
    from decision_engine.experiments.assignment import Experiment

    experiments = """
experiments:
  - id: holdout
    groups:
      - {name: holdout, share: 0.3, treatment: default}
      - {name: personalized, share: 0.7}
"""
    running = start_server(Engine(parse_catalog(inline_yaml + experiments), seed=3, clock="simulated"))
    reference = Experiment.create("holdout", {"holdout": 3000, "personalized": 7000})
    for i in range(50):
        profile = pb.Profile(id=f"p{i}", features=GOOD)
        response = running.decisions.Decide(pb.DecideRequest(profile=profile, placements=["hero"]))
        groups = [(g.experiment, g.group) for g in response.decisions[0].experiments]
        assert groups == [("holdout", reference.group_of(f"p{i}"))]
    anonymous = running.decisions.Decide(
        pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"])
    )
    assert list(anonymous.decisions[0].experiments) == []
