"""Bodies that do not parse are INVALID_ARGUMENT, with no traceback in the log; a cancelled call
is not an error; a storage failure is UNAVAILABLE, not the client's fault."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest
from decision_engine.errors import StorageError
from decision_engine.server.errors import handle_errors, status_of
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb

from tests.server.server_helpers import GOOD, rpc_error

TRUNCATED = b"\x0a\x05ab"  # field 1, length 5, then only 2 bytes
WRONG_WIRE_TYPE = b"\x0d\x00\x00"  # field 1 as a 32-bit value, cut short

METHODS = {
    "/decision_engine.v1.DecisionService/Decide": "DecideRequest",
    "/decision_engine.v1.DecisionService/DecideBatch": "DecideBatchRequest",
    "/decision_engine.v1.DecisionService/ReportOutcome": "ReportOutcomeRequest",
    "/decision_engine.v1.DecisionService/Release": "ReleaseRequest",
    "/decision_engine.v1.DecisionService/Ping": "PingRequest",
    "/decision_engine.v1.AdminService/ValidateCatalog": "ValidateCatalogRequest",
    "/decision_engine.v1.AdminService/GetStats": "GetStatsRequest",
}


def raw_call(channel, method, body):
    """Sends `body` as is (no serializer) and returns the raw reply bytes."""
    return channel.unary_unary(method)(body, timeout=5)


@pytest.mark.parametrize("body", [TRUNCATED, WRONG_WIRE_TYPE], ids=["truncated", "wire-type"])
@pytest.mark.parametrize("method", METHODS)
def test_malformed_bodies_are_invalid_argument(served, method, body, caplog):
    error = rpc_error(lambda: raw_call(served.channel, method, body))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"malformed {METHODS[method]}: ")
    assert "Traceback" not in caplog.text and "Exception deserializing" not in caplog.text
    assert served.decisions.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()


def test_a_malformed_outcome_in_a_stream_is_refused_alone(served):
    decision = served.decisions.Decide(
        pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"]), timeout=5
    ).decisions[0]
    good = pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=1.0).SerializeToString()
    call = served.channel.stream_unary(
        "/decision_engine.v1.DecisionService/ReportOutcomes",
        response_deserializer=pb.ReportOutcomesResponse.FromString,
    )
    response = call(iter([TRUNCATED, good]), timeout=5)
    assert (response.accepted, response.refused) == (1, 1)
    (refused,) = response.rejected
    assert (refused.index, refused.decision_id, refused.code) == (0, 0, "INVALID_ARGUMENT")
    assert refused.message.startswith("malformed ReportOutcomeRequest: ")


def test_a_cancelled_stream_is_not_an_error(served, caplog):
    caplog.set_level(logging.DEBUG, logger="decision_engine.server")
    sent, stop = threading.Event(), threading.Event()

    def outcomes():
        yield pb.ReportOutcomeRequest(decision_id=999, reward=1.0)
        sent.set()
        stop.wait(10)

    call = served.decisions.ReportOutcomes.future(outcomes())
    assert sent.wait(5)
    _wait_for(lambda: served.server.metrics.stats.snapshot().rejected_outcomes == 1)  # the server has it
    call.cancel()
    stop.set()
    assert call.cancelled() or call.exception().code() == grpc.StatusCode.CANCELLED
    _wait_for(lambda: served.server.streams.active == 0)  # the server's handler has ended
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # not logged as an error
    assert served.decisions.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()


class Aborted(Exception):
    pass


class Context:
    def abort(self, code, details):
        self.aborted = (code, details)
        raise Aborted


def test_a_request_stream_ended_by_the_client_is_logged_at_debug(caplog):
    """The request iterator raises a bare grpc.RpcError when the client cancels (or its deadline
    passes) while the handler waits for a message; depending on timing it may end instead."""
    caplog.set_level(logging.DEBUG, logger="decision_engine.server")

    @handle_errors
    def ReportOutcomes(self, requests, context):
        next(requests)

    def cancelled():
        raise grpc.RpcError()
        yield

    context = Context()
    with pytest.raises(Aborted):
        ReportOutcomes(None, cancelled(), context)
    assert context.aborted == (grpc.StatusCode.CANCELLED, "cancelled")
    (record,) = caplog.records
    assert (record.levelname, record.getMessage()) == ("DEBUG", "call cancelled by the client")


def _wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_storage_errors_are_unavailable(served, monkeypatch, caplog):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(served.engine, "report_outcome", disk_full)
    error = rpc_error(
        lambda: served.decisions.ReportOutcome(pb.ReportOutcomeRequest(decision_id=1, reward=1.0))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAVAILABLE,
        "storage unavailable (OSError); see the server log",
    )
    assert "storage error" in caplog.text and "No space left on device" in caplog.text
    assert status_of(PermissionError(13, "denied"))[0] == grpc.StatusCode.UNAVAILABLE
    assert status_of(StorageError("journal: damaged record"))[0] == grpc.StatusCode.UNAVAILABLE
    assert served.admin.GetStats(admin.GetStatsRequest(), timeout=5).placements == 3
