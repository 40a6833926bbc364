"""AdminService end to end: catalog read, validation, apply and dry run, policy state, stats."""

import grpc
import numpy as np
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb

from tests.server.server_helpers import GOOD, rpc_error

# A new offer, and gold_card's rule made stricter (age >= 40).
NEW_OFFER = """\
  - id: travel_insurance
    placements: [hero]
    value: 50.0
"""


def changed_yaml(inline_yaml):
    return inline_yaml.replace("age >= 21 &&", "age >= 40 &&") + NEW_OFFER


def test_get_catalog(served, inline_yaml):
    response = served.admin.GetCatalog(admin.GetCatalogRequest())
    assert response.yaml == inline_yaml
    assert response.source == "inline.yaml"
    summary = response.summary
    assert list(summary.features) == ["age", "spend", "owns_card", "segment"]
    assert list(summary.channels) == ["web", "email", "push"]
    assert (summary.offers, summary.rules) == (8, 3)
    hero = summary.placements[0]
    assert (hero.id, hero.channel, hero.slots, hero.policy) == ("hero", "web", 1, "thompson")
    assert list(hero.offer_ids) == ["gold_card", "silver_card", "loan", "dud"]


def test_validate_catalog(served, inline_yaml):
    valid = served.admin.ValidateCatalog(admin.ValidateCatalogRequest(yaml=inline_yaml))
    assert valid.valid and not valid.issues and valid.summary.offers == 8
    bad = inline_yaml.replace("age >= 21", "agee >= 21").replace("slots: 3", "slots: three")
    response = served.admin.ValidateCatalog(admin.ValidateCatalogRequest(yaml=bad, name="mine.yaml"))
    assert not response.valid and not response.HasField("summary")
    issue = response.issues[0]
    assert (issue.file, issue.line, issue.column, issue.where) == ("mine.yaml", 10, 37, "placement 'feed'")
    assert "slots" in issue.message
    broken = served.admin.ValidateCatalog(admin.ValidateCatalogRequest(yaml="version: 1\noffers: [\n"))
    assert [(i.file, i.line, i.where) for i in broken.issues] == [("<request>", 3, "catalog")]
    assert broken.issues[0].message.startswith("invalid YAML")


def test_validate_reports_rule_errors_with_their_position(served, inline_yaml):
    bad = inline_yaml.replace("age >= 21", "agee >= 21")
    response = served.admin.ValidateCatalog(admin.ValidateCatalogRequest(yaml=bad, name="x.yaml"))
    assert [(i.line, i.column, i.where, i.message) for i in response.issues] == [
        (16, 12, "offer 'gold_card'", "unknown feature 'agee'; did you mean 'age'?")
    ]


def test_apply_catalog_dry_run_reports_and_changes_nothing(served, inline_yaml):
    sample = np.array([GOOD, [30, 10, 0, 3], [50, 10, 0, 3], [19, 10, 1, 1]], dtype=np.float32)
    request = admin.ApplyCatalogRequest(
        yaml=changed_yaml(inline_yaml),
        name="next.yaml",
        dry_run=True,
        sample=admin.ProfileSample(features=sample.ravel().tolist(), rows=4),
    )
    response = served.admin.ApplyCatalog(request)
    assert not response.applied
    assert response.sample_rows == 4
    assert list(response.added_offers) == ["travel_insurance"] and not response.removed_offers
    counts = {e.offer_id: e for e in response.eligibility}
    assert (counts["gold_card"].before, counts["gold_card"].after) == (3, 1)
    assert (counts["silver_card"].before, counts["silver_card"].after) == (2, 2)
    assert not counts["travel_insurance"].HasField("before") and counts["travel_insurance"].after == 4
    assert served.admin.GetCatalog(admin.GetCatalogRequest()).yaml == inline_yaml


def test_apply_catalog_swaps_it_in_and_keeps_learning(served, inline_yaml):
    decision = served.decisions.Decide(
        pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"])
    ).decisions[0]
    response = served.admin.ApplyCatalog(
        admin.ApplyCatalogRequest(yaml=changed_yaml(inline_yaml), name="next.yaml")
    )
    assert response.applied and response.summary.offers == 9 and not response.eligibility
    current = served.admin.GetCatalog(admin.GetCatalogRequest())
    assert current.source == "next.yaml" and "travel_insurance" in current.yaml
    served.decisions.ReportOutcome(pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=1.0))
    state = served.admin.GetPolicyState(admin.GetPolicyStateRequest(placements=["hero"]))
    arms = {a.offer_id: a.alpha for a in state.placements[0].arms}
    assert arms[decision.offers[0].offer_id] == 2.0 and arms["travel_insurance"] == 1.0
    assert served.admin.GetStats(admin.GetStatsRequest()).catalog_reloads == 1


def test_apply_invalid_catalog_is_refused_and_changes_nothing(served, inline_yaml):
    bad = inline_yaml.replace("age >= 21", "agee >= 21")
    for dry_run in (True, False):
        request = admin.ApplyCatalogRequest(yaml=bad, name="bad.yaml", dry_run=dry_run)
        error = rpc_error(lambda request=request: served.admin.ApplyCatalog(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            error.details()
            == "bad.yaml:16:12: offer 'gold_card': unknown feature 'agee'; did you mean 'age'?"
        )
    error = rpc_error(
        lambda: served.admin.ApplyCatalog(admin.ApplyCatalogRequest(yaml="offers: [", name="y.yaml"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("y.yaml:1:10: catalog: invalid YAML")
    assert served.admin.GetCatalog(admin.GetCatalogRequest()).yaml == inline_yaml
    stats = served.admin.GetStats(admin.GetStatsRequest())
    assert (stats.catalog_reloads, stats.failed_catalog_reloads) == (0, 2)  # dry runs are not counted


def test_apply_catalog_sample_errors(served, inline_yaml):
    short = admin.ProfileSample(features=GOOD[:3], rows=1)
    error = rpc_error(
        lambda: served.admin.ApplyCatalog(admin.ApplyCatalogRequest(yaml=inline_yaml, sample=short))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "expected rows x features = 1 x 4 = 4 floats, got 3",
    )
    more = inline_yaml.replace("features:\n", "features:\n  - {name: tenure, type: int}\n")
    sample = admin.ProfileSample(features=GOOD, rows=1)
    request = admin.ApplyCatalogRequest(yaml=more, dry_run=True, sample=sample)
    error = rpc_error(lambda: served.admin.ApplyCatalog(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "lacks the new catalog's features tenure" in error.details()


def test_policy_state_of_every_placement(served):
    response = served.admin.GetPolicyState(admin.GetPolicyStateRequest())
    assert [p.placement for p in response.placements] == ["hero", "feed", "mail"]
    mail = response.placements[2]
    loan = mail.arms[0]
    assert (loan.offer_id, loan.alpha, loan.beta, loan.mean) == ("loan", 2.0, 3.0, 0.4)


def test_stats(served):
    served.decisions.Decide(pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero", "feed"]))
    served.decisions.DecideBatch(pb.DecideBatchRequest(placement="hero", features=GOOD * 5, rows=5))
    stats = served.admin.GetStats(admin.GetStatsRequest())
    assert (stats.decisions, stats.batch_profiles, stats.pending_decisions) == (2, 5, 7)
    assert (stats.offers, stats.placements) == (8, 3)
    assert stats.uptime_seconds > 0
