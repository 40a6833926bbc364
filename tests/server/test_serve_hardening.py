"""`decision-engine serve` as a child process: the AdminService closed by default and opened by
--insecure-admin with a warning; every stderr line JSON, grpc core's own lines included;
/metrics behind its token."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import admin_pb2_grpc, decision_pb2_grpc
from decision_engine.v1 import decision_pb2 as pb

from tests.server.server_helpers import rpc_error
from tests.server.test_grpc_serve import Child

pytestmark = pytest.mark.serve


@pytest.fixture
def serve_child(inline_yaml, tmp_path: Path) -> Iterator[Callable[..., Child]]:
    children: list[Child] = []
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(inline_yaml)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DECISION_ENGINE_", "GRPC_"))}

    def start(*args: str) -> Child:
        child = Child(["--catalog", str(catalog), "--metrics-port", "0", *args], env)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


def stubs(
    port: int,
) -> tuple[grpc.Channel, decision_pb2_grpc.DecisionServiceStub, admin_pb2_grpc.AdminServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, decision_pb2_grpc.DecisionServiceStub(channel), admin_pb2_grpc.AdminServiceStub(channel)


def test_admin_closed_by_default(serve_child) -> None:
    child = serve_child("--address", "127.0.0.1:0")
    serving = child.wait_log("serving")
    assert serving["admin"] == "closed"
    channel, decisions, admins = stubs(serving["port"])
    with channel:
        assert decisions.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()
        error = rpc_error(lambda: admins.GetStats(admin.GetStatsRequest(), timeout=5))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "--admin-token" in error.details()


def test_insecure_admin_opens_it_with_a_warning(serve_child) -> None:
    child = serve_child("--address", "127.0.0.1:0", "--insecure-admin")
    warning = child.wait_log("the AdminService is open to every client (--insecure-admin)")
    assert warning["level"] == "warning"
    serving = child.wait_log("serving")
    assert serving["admin"] == "open"
    channel, _, admins = stubs(serving["port"])
    with channel:
        assert admins.GetStats(admin.GetStatsRequest(), timeout=5).placements == 3


def test_every_stderr_line_is_json_even_when_grpc_core_fails(serve_child) -> None:
    with socket.socket() as taken:  # grpc core logs an error line of its own for a port in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        child = serve_child("--address", f"127.0.0.1:{taken.getsockname()[1]}")
        assert child.process.wait(30) == 1
    child._reader.join(5)
    lines = []
    while not child.lines.empty():
        lines.append(child.lines.get())
    assert any(entry.get("message") == "cannot listen" for entry in lines)
    assert all("level" in entry for entry in lines), lines  # no line failed to parse as JSON


def test_metrics_token(serve_child) -> None:
    child = serve_child("--address", "127.0.0.1:0", "--metrics-token", "scrape-secret")
    serving = child.wait_log("serving")
    assert serving["metrics_auth"] is True
    url = f"http://127.0.0.1:{serving['metrics_port']}/metrics"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=5)
    with info.value:  # the error holds the response (and its socket)
        assert info.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": "Bearer scrape-secret"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert b"process_resident_memory_bytes" in response.read()


def test_serve_runs_on_its_own_clock(serve_child) -> None:
    import time

    from google.protobuf.timestamp_pb2 import Timestamp

    child = serve_child("--address", "127.0.0.1:0", "--max-clock-skew", "60")
    serving = child.wait_log("serving")
    channel, decisions, _ = stubs(serving["port"])
    profile = pb.Profile(features=[30, 2000, 0, 2], id="c-1")
    with channel:
        now = Timestamp(seconds=int(time.time()))
        assert decisions.Decide(pb.DecideRequest(profile=profile, placements=["hero"], now=now), timeout=5)
        ahead = Timestamp(seconds=int(time.time()) + 365 * 86_400)
        request = pb.DecideRequest(profile=profile, placements=["hero"], now=ahead)
        error = rpc_error(lambda: decisions.Decide(request, timeout=5))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ahead of the server clock" in error.details() and "at most 60 s" in error.details()
