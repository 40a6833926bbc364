"""Every bad request gets its status code and a message saying what was expected; the server
keeps serving afterwards."""

import math

import grpc
import pytest
from decision_engine import Engine, _core
from decision_engine.server import Limits
from decision_engine.server.errors import RequestError, check_deadline, handle_errors
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb

from tests.server.server_helpers import GOOD, rpc_error

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def decide_request(features=GOOD, placements=("hero",), **profile):
    return pb.DecideRequest(profile=pb.Profile(features=features, **profile), placements=placements)


def batch_request(rows, features=None, **fields):
    features = GOOD * rows if features is None else features
    return pb.DecideBatchRequest(
        placement=fields.pop("placement", "feed"), features=features, rows=rows, **fields
    )


NAMED = {
    "age": pb.FeatureValue(number=30),
    "spend": pb.FeatureValue(number=2000),
    "owns_card": pb.FeatureValue(flag=False),
}

DECIDE_CASES = {
    "too few features": (decide_request(GOOD[:3]), INVALID, "expected 4 features, got 3"),
    "too many features": (decide_request([*GOOD, 1.0]), INVALID, "expected 4 features, got 5"),
    "no features": (pb.DecideRequest(placements=["hero"]), INVALID, "expected 4 features, got 0"),
    "NaN": (decide_request([math.nan, *GOOD[1:]]), INVALID, "feature 'age': NaN is not a finite number"),
    "unknown placement": (decide_request(placements=["hero", "nope"]), NOT_FOUND, "unknown placement 'nope'"),
    "no placement": (decide_request(placements=[]), INVALID, "a decision needs at least one placement"),
    "unknown consent": (
        decide_request(consents=["fax"]),
        INVALID,
        "consent names unknown channel 'fax'; channels are web, email, push",
    ),
    "packed and named": (
        decide_request(named_features=NAMED),
        INVALID,
        "give the profile's features either packed (features) or by name (named_features), not both",
    ),
    "missing named feature": (
        pb.DecideRequest(profile=pb.Profile(named_features=NAMED), placements=["hero"]),
        INVALID,
        "missing features: segment",
    ),
    "bad category": (
        pb.DecideRequest(
            profile=pb.Profile(named_features={**NAMED, "segment": pb.FeatureValue(category="iron")}),
            placements=["hero"],
        ),
        INVALID,
        "feature 'segment' must be one of bronze, silver, gold, platinum, got 'iron'",
    ),
    "contact without time": (
        decide_request(history=[pb.Contact(offer_id="loan", channel="web")]),
        INVALID,
        "contact with offer 'loan' has no time",
    ),
    "empty named value": (
        pb.DecideRequest(
            profile=pb.Profile(named_features={**NAMED, "segment": pb.FeatureValue()}), placements=["hero"]
        ),
        INVALID,
        "feature 'segment' has no value (number, flag or category)",
    ),
}


@pytest.mark.parametrize("case", DECIDE_CASES)
def test_bad_decide(served, case):
    request, code, message = DECIDE_CASES[case]
    error = rpc_error(lambda: served.decisions.Decide(request))
    assert (error.code(), error.details()) == (code, message)
    assert served.decisions.Decide(decide_request()).decisions  # still serving


def test_no_decision_is_made_when_a_later_placement_is_unknown(served):
    rpc_error(lambda: served.decisions.Decide(decide_request(placements=["hero", "nope"])))
    assert served.engine.pending_decisions == 0


BATCH_CASES = {
    "wrong feature count": (
        batch_request(2, GOOD + GOOD[:3]),
        INVALID,
        "expected rows x features = 2 x 4 = 8 floats, got 7",
    ),
    "rows not given": (batch_request(0, GOOD), INVALID, "expected rows x features = 0 x 4 = 0 floats, got 4"),
    "oversize batch": (
        batch_request(11),
        INVALID,
        "a batch of 11 profiles is over the limit of 10 profiles per request",
    ),
    "NaN": (
        batch_request(1, [1.0, math.nan, 0.0, 1.0]),
        INVALID,
        "feature 'spend' in row 0: NaN is not a finite number",
    ),
    "unknown placement": (batch_request(1, placement="nope"), NOT_FOUND, "unknown placement 'nope'"),
    "unknown consent channel": (
        batch_request(1, consent_channels=["fax"], consents=[True]),
        INVALID,
        "unknown consent channels fax; channels are web, email, push",
    ),
    "consent count": (
        batch_request(2, consent_channels=["email"], consents=[True]),
        INVALID,
        "expected rows x consent_channels = 2 x 1 consents, got 1",
    ),
    "profile ids count": (
        batch_request(2, profile_ids=["a"]),
        INVALID,
        "profile_ids must have 2 entries, got 1",
    ),
    "consents without channels": (
        batch_request(1, consents=[True]),
        INVALID,
        "consents need consent_channels naming their columns",
    ),
}


@pytest.mark.parametrize("case", BATCH_CASES)
def test_bad_decide_batch(start_server, inline_catalog, case):
    running = start_server(Engine(inline_catalog, seed=7, clock="simulated"), limits=Limits(max_batch=10))
    request, code, message = BATCH_CASES[case]
    error = rpc_error(lambda: running.decisions.DecideBatch(request))
    assert (error.code(), error.details()) == (code, message)
    assert running.decisions.DecideBatch(batch_request(10)).rows == 10  # the limit itself is fine


def test_bad_outcomes(served):
    hero = served.decisions.Decide(decide_request()).decisions[0]
    feed = served.decisions.Decide(decide_request(placements=["feed"])).decisions[0]
    shown = feed.offers[0].offer_id
    served.decisions.ReportOutcome(
        pb.ReportOutcomeRequest(decision_id=feed.decision_id, offer_id=shown, reward=1)
    )
    cases = [
        (pb.ReportOutcomeRequest(decision_id=999, reward=1.0), NOT_FOUND, "unknown decision id 999"),
        (
            pb.ReportOutcomeRequest(decision_id=hero.decision_id, reward=2.0),
            INVALID,
            "reward must be a number",
        ),
        (pb.ReportOutcomeRequest(decision_id=hero.decision_id, offer_id="zzz", reward=1.0), NOT_FOUND, "zzz"),
        (
            pb.ReportOutcomeRequest(decision_id=feed.decision_id, offer_id=shown, reward=1.0),
            grpc.StatusCode.ALREADY_EXISTS,
            f"outcome for offer '{shown}' of decision {feed.decision_id} was already reported",
        ),
    ]
    for request, code, message in cases:
        error = rpc_error(lambda request=request: served.decisions.ReportOutcome(request))
        assert error.code() == code
        assert message in error.details()
    served.decisions.ReportOutcome(pb.ReportOutcomeRequest(decision_id=hero.decision_id, reward=1.0))
    error = rpc_error(lambda: served.decisions.Release(pb.ReleaseRequest(decision_id=hero.decision_id)))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.ALREADY_EXISTS,
        f"decision {hero.decision_id} is settled: every offer it showed has its outcome, or it was released",
    )


def test_unknown_placement_in_policy_state(served):
    error = rpc_error(lambda: served.admin.GetPolicyState(admin.GetPolicyStateRequest(placements=["zz"])))
    assert (error.code(), error.details()) == (NOT_FOUND, "unknown placement 'zz'")


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(
    ("fail", "kind"),
    [
        (lambda: _raise(RuntimeError("secret detail")), "RuntimeError"),
        # a real Rust panic crossing the boundary (pyo3's PanicException is no Exception)
        (lambda: _core._panic_for_tests("secret detail"), "PanicException"),
    ],
    ids=["python", "rust-panic"],
)
def test_unexpected_errors_are_internal_and_the_server_keeps_serving(served, monkeypatch, fail, kind, caplog):
    monkeypatch.setattr(served.engine, "policy_state", lambda placement: fail())
    error = rpc_error(lambda: served.admin.GetPolicyState(admin.GetPolicyStateRequest(placements=["hero"])))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == f"internal error ({kind}); see the server log"
    assert "secret detail" not in error.details()
    assert "unexpected error" in caplog.text
    assert served.decisions.Ping(pb.PingRequest()) == pb.PingResponse()


class FakeContext:
    def __init__(self, remaining):
        self.remaining = remaining
        self.aborted = None

    def time_remaining(self):
        return self.remaining

    def abort(self, code, details):
        self.aborted = (code, details)
        raise RuntimeError("aborted")


def test_deadline_already_passed_is_deadline_exceeded():
    @handle_errors
    def method(self, request, context):
        check_deadline(context, "deciding")
        return "done"

    assert method(None, None, FakeContext(1.0)) == "done"
    context = FakeContext(0.0)
    with pytest.raises(RuntimeError, match="aborted"):
        method(None, None, context)
    assert context.aborted == (grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before deciding")


def test_request_error_keeps_its_code_and_long_messages_are_cut():
    @handle_errors
    def method(self, request, context):
        raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, "\n".join(f"line {i}" for i in range(2000)))

    context = FakeContext(None)
    with pytest.raises(RuntimeError):
        method(None, None, context)
    code, details = context.aborted
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(details) < 4_100 and details.endswith("more lines)")
