"""Health, reflection, catalog reload, graceful stop with calls in flight, and metrics."""

import threading
import time
import urllib.request

import grpc
import pytest
from decision_engine import Engine
from decision_engine.server import Metrics
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb
from google.protobuf import descriptor_pool
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from prometheus_client.parser import text_string_to_metric_families

from tests.server.server_helpers import GOOD, rpc_error

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = [
    "decision_engine.v1.DecisionService",
    "decision_engine.v1.AdminService",
    "decision_engine.v1.ProfileService",
    "decision_engine.v1.TriggerService",
]


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_health(served):
    stub = health_pb2_grpc.HealthStub(served.channel)
    for service in ["", *SERVICES]:
        assert stub.Check(health_pb2.HealthCheckRequest(service=service)).status == SERVING
    error = rpc_error(lambda: stub.Check(health_pb2.HealthCheckRequest(service="nope")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


REFLECTION = {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}


def test_reflection_lists_the_services(served):
    database = ProtoReflectionDescriptorDatabase(served.channel)  # a v1alpha client
    assert set(database.get_services()) == {*SERVICES, "grpc.health.v1.Health", *REFLECTION}
    pool = DescriptorPool(database)
    methods = [m.name for m in pool.FindServiceByName(SERVICES[0]).methods]
    assert methods == ["Decide", "DecideBatch", "ReportOutcome", "ReportOutcomes", "Release", "Ping"]
    admin_methods = [m.name for m in pool.FindServiceByName(SERVICES[1]).methods]
    assert admin_methods == ["GetCatalog", "ValidateCatalog", "ApplyCatalog", "GetPolicyState", "GetStats"]
    profile_methods = [m.name for m in pool.FindServiceByName(SERVICES[2]).methods]
    assert profile_methods == [
        "UpsertProfiles",
        "UpsertProfileStream",
        "TrackEvents",
        "GetProfile",
        "DeleteProfile",
    ]
    trigger_methods = [m.name for m in pool.FindServiceByName(SERVICES[3]).methods]
    assert trigger_methods == ["SubscribeDecisions", "AckDecisions", "GetTriggerHistory"]


def v1_reflection(channel, **request):
    """One request to grpc.reflection.v1 (as a client that knows only v1 sends it)."""
    pool = descriptor_pool.Default()  # holds grpc/reflection/v1/reflection.proto once a server started
    request_type = GetMessageClass(pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest"))
    response_type = GetMessageClass(pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse"))
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    (response,) = list(call(iter([request_type(**request)]), timeout=5))
    return response


def test_reflection_v1(served):
    listed = v1_reflection(served.channel, list_services="*").list_services_response.service
    assert {s.name for s in listed} == {*SERVICES, "grpc.health.v1.Health", *REFLECTION}
    found = v1_reflection(served.channel, file_containing_symbol="decision_engine.v1.DecisionService")
    files = {
        f.name: f
        for f in map(FileDescriptorProto.FromString, found.file_descriptor_response.file_descriptor_proto)
    }
    assert [s.name for s in files["decision_engine/v1/decision.proto"].service] == [
        "DecisionService",
        "ProfileService",
        "TriggerService",
    ]
    itself = v1_reflection(served.channel, file_containing_symbol="grpc.reflection.v1.ServerReflection")
    (file,) = map(FileDescriptorProto.FromString, itself.file_descriptor_response.file_descriptor_proto)
    assert (file.name, file.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
    missing = v1_reflection(served.channel, file_containing_symbol="no.such.Service")
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_graceful_stop_finishes_calls_in_flight(served):
    gate = threading.Event()
    decision = served.decisions.Decide(
        pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["feed"])
    )
    decision_id, offers = decision.decisions[0].decision_id, decision.decisions[0].offers

    def outcomes():
        yield pb.ReportOutcomeRequest(decision_id=decision_id, offer_id=offers[0].offer_id, reward=1.0)
        gate.wait(10)
        yield pb.ReportOutcomeRequest(decision_id=decision_id, offer_id=offers[1].offer_id, reward=0.0)

    in_flight = served.decisions.ReportOutcomes.future(outcomes())
    wait_for(lambda: served.server.metrics.stats.snapshot().outcomes == 1)
    stopped = served.server.stop(grace=10)
    health = served.server.health.Check(health_pb2.HealthCheckRequest(), None)
    assert health.status == NOT_SERVING
    error = rpc_error(lambda: served.decisions.Ping(pb.PingRequest(), timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # new calls are refused
    assert not stopped.is_set()
    gate.set()
    assert in_flight.result(timeout=10).accepted == 2  # the call in flight completes
    assert stopped.wait(10)


def test_stop_without_grace_cancels_calls_in_flight(served):
    gate = threading.Event()

    def outcomes():
        yield pb.ReportOutcomeRequest(decision_id=1, reward=1.0)
        gate.wait(10)

    in_flight = served.decisions.ReportOutcomes.future(outcomes())
    wait_for(lambda: served.server.metrics.stats.snapshot().rejected_outcomes == 1)
    served.server.stop(None).wait(5)
    with pytest.raises(grpc.RpcError):
        in_flight.result(timeout=5)
    gate.set()


def test_reload_keeps_the_old_catalog_when_the_new_one_is_invalid(
    start_server, inline_yaml, tmp_path, caplog
):
    path = tmp_path / "catalog.yaml"
    path.write_text(inline_yaml)
    running = start_server(Engine(path, seed=7, clock="simulated"), insecure_admin=True)
    path.write_text(inline_yaml.replace("age >= 21", "agee >= 21"))
    assert not running.server.reload_catalog(path)
    assert f"{path}:16:12: offer 'gold_card': unknown feature 'agee'" in caplog.text
    assert running.admin.GetCatalog(admin.GetCatalogRequest()).yaml == inline_yaml
    path.write_text(inline_yaml + "  - {id: extra, placements: [hero], value: 100.0}\n")
    assert running.server.reload_catalog(path)
    summary = running.admin.GetCatalog(admin.GetCatalogRequest()).summary
    assert summary.offers == 9 and "extra" in summary.placements[0].offer_ids
    stats = running.admin.GetStats(admin.GetStatsRequest())
    assert (stats.catalog_reloads, stats.failed_catalog_reloads) == (1, 1)


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_endpoint(start_server, inline_catalog):
    metrics = Metrics()
    running = start_server(Engine(inline_catalog, seed=7, clock="simulated"), metrics=metrics)
    http = metrics.serve_http("127.0.0.1", 0)
    try:
        hero = running.decisions.Decide(
            pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"])
        )
        page = running.decisions.Decide(
            pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero", "feed"])
        )
        running.decisions.DecideBatch(pb.DecideBatchRequest(placement="hero", features=GOOD * 4, rows=4))
        rpc_error(lambda: running.decisions.Decide(pb.DecideRequest(profile=pb.Profile(features=GOOD[:2]))))
        rpc_error(lambda: running.decisions.Decide(pb.DecideRequest(placements=["made_up"])))
        running.decisions.ReportOutcome(
            pb.ReportOutcomeRequest(decision_id=hero.decisions[0].decision_id, reward=1)
        )
        rpc_error(lambda: running.decisions.ReportOutcome(pb.ReportOutcomeRequest(decision_id=999, reward=1)))
        samples = scrape(http.port)
    finally:
        http.close()

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    decide = "DecisionService/Decide"
    assert value("decision_engine_rpc_requests_total", method=decide, placement="hero", code="OK") == 1
    assert value("decision_engine_rpc_requests_total", method=decide, placement="multiple", code="OK") == 1
    assert (
        value("decision_engine_rpc_requests_total", method=decide, placement="unknown", code="NOT_FOUND") == 1
    )
    assert value("decision_engine_rpc_errors_total", method=decide, code="INVALID_ARGUMENT") == 1
    assert (
        value("decision_engine_rpc_errors_total", method="DecisionService/ReportOutcome", code="NOT_FOUND")
        == 1
    )
    assert (
        value(
            "decision_engine_rpc_duration_seconds_count",
            method="DecisionService/DecideBatch",
            placement="hero",
        )
        == 1
    )
    assert (
        value("decision_engine_rpc_duration_seconds_bucket", method=decide, placement="hero", le="+Inf") == 1
    )
    chosen = sum(v for (name, labels), v in samples.items() if name == "decision_engine_decisions_total")
    assert chosen == 1 + sum(len(d.offers) for d in page.decisions) + 4  # hero, a page, a batch of 4
    assert value("decision_engine_outcomes_total", result="accepted") == 1
    assert value("decision_engine_outcomes_total", result="NOT_FOUND") == 1
    assert value("decision_engine_pending_decisions") == 1 + 2 + 4 - 1
