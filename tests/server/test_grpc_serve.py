"""`decision-engine serve` as a child process on a free loopback port: SIGHUP reloads (a bad
catalog file is refused, a good one swapped in), SIGTERM drains calls in flight and exits 0."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import admin_pb2_grpc, decision_pb2_grpc
from decision_engine.v1 import decision_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.server.server_helpers import GOOD, rpc_error

pytestmark = pytest.mark.serve

ADMIN = "admin-secret"
# The console script `decision-engine` is exactly this; running it through this interpreter
# keeps the child on the same environment as the tests.
CLI = [sys.executable, "-c", "import sys; from decision_engine.cli import main; sys.exit(main())"]


class Child:
    """The server process and its JSON log lines (read on a thread so the pipe never fills)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [*CLI, "serve", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.log: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                self.lines.put({"message": line.rstrip()})

    def wait_log(self, message: str, timeout: float = 60.0) -> dict[str, Any]:
        # a bound, not a timing claim: a loaded 2-core machine can take many seconds to start serve
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                entry = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.log.append(entry)
            if entry.get("message", "").startswith(message):
                return entry
        raise AssertionError(f"no log line {message!r}; got {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    children: list[Child] = []

    def start(*args: str) -> Child:
        env = {**os.environ, "DECISION_ENGINE_ADMIN_TOKEN": ADMIN}
        child = Child(list(args), env)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


def poll(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_serve_reload_and_graceful_shutdown(spawn, inline_yaml, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(inline_yaml)
    child = spawn(
        "--catalog", str(catalog), "--address", "127.0.0.1:0", "--metrics-port", "0", "--grace", "10"
    )
    serving = child.wait_log("serving")
    assert serving["auth"] is True and serving["tls"] is False
    channel = grpc.insecure_channel(f"127.0.0.1:{serving['port']}")
    decisions = decision_pb2_grpc.DecisionServiceStub(channel)
    admins = admin_pb2_grpc.AdminServiceStub(channel)
    token = [("authorization", f"Bearer {ADMIN}")]

    def stats() -> admin.GetStatsResponse:
        return admins.GetStats(admin.GetStatsRequest(), metadata=token, timeout=5)

    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert rpc_error(lambda: stats_without_token(admins)).code() == grpc.StatusCode.UNAUTHENTICATED

    # SIGHUP with a bad catalog file: refused, logged with file:line:col, old catalog kept.
    catalog.write_text(inline_yaml.replace("age >= 21", "agee >= 21"))
    child.process.send_signal(signal.SIGHUP)
    refused = child.wait_log("catalog reload refused")
    assert refused["issues"] == [
        f"{catalog}:16:12: offer 'gold_card': unknown feature 'agee'; did you mean 'age'?"
    ]
    assert stats().failed_catalog_reloads == 1 and stats().offers == 8

    # SIGHUP with a good one: swapped in.
    catalog.write_text(inline_yaml + "  - {id: extra, placements: [hero], value: 1000.0}\n")
    child.process.send_signal(signal.SIGHUP)
    child.wait_log("catalog reloaded")
    assert (stats().catalog_reloads, stats().offers) == (1, 9)

    # Metrics on their own port.
    decide = pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"])
    decision = decisions.Decide(decide, timeout=5).decisions[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{serving['metrics_port']}/metrics", timeout=5) as response:
        assert (
            'decision_engine_rpc_requests_total{code="OK",method="DecisionService/Decide"'
            in response.read().decode()
        )

    # SIGTERM with calls in flight: they complete, new calls are refused, exit code 0.
    gate = threading.Event()

    def outcomes() -> Iterator[pb.ReportOutcomeRequest]:
        yield pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=1.0)
        gate.wait(10)
        yield pb.ReportOutcomeRequest(decision_id=123456, reward=1.0)

    in_flight = decisions.ReportOutcomes.future(outcomes(), timeout=20)
    poll(lambda: stats().outcomes == 1)
    child.process.send_signal(signal.SIGTERM)
    child.wait_log("stopping")
    with grpc.insecure_channel(f"127.0.0.1:{serving['port']}") as fresh:
        stub = decision_pb2_grpc.DecisionServiceStub(fresh)
        # Refused, not served: UNAVAILABLE when the listener is gone, CANCELLED when a
        # connection raced in as it closed (grpc's code for a call the stopping server drops).
        refused = rpc_error(lambda: stub.Ping(pb.PingRequest(), timeout=2)).code()
        assert refused in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), refused
    assert child.process.poll() is None  # still draining
    gate.set()
    result = in_flight.result(timeout=10)
    assert result.accepted == 1 and [r.code for r in result.rejected] == ["NOT_FOUND"]
    assert child.process.wait(10) == 0
    child.wait_log("stopped")
    channel.close()
    assert all(ADMIN not in json.dumps(entry) for entry in child.log)  # no token in the logs


def stats_without_token(admins: admin_pb2_grpc.AdminServiceStub) -> object:
    return admins.GetStats(admin.GetStatsRequest(), timeout=5)


def test_serve_workers_share_one_port(spawn, inline_yaml, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(inline_yaml)
    child = spawn("--catalog", str(catalog), "--address", "127.0.0.1:0", "--no-metrics", "--workers", "2")
    first, second = child.wait_log("serving"), child.wait_log("serving")
    assert first["port"] == second["port"] and first["pid"] != second["pid"]
    assert {first["worker"], second["worker"]} == {0, 1}
    workers = set()
    for _ in range(12):  # new connections are spread over the workers by the kernel
        with grpc.insecure_channel(
            f"127.0.0.1:{first['port']}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            decision = stub.Decide(
                pb.DecideRequest(profile=pb.Profile(features=GOOD), placements=["hero"]), timeout=5
            )
            workers.add(decision.decisions[0].decision_id >> 56)
    assert workers <= {0, 1} and workers
    child.process.send_signal(signal.SIGTERM)
    assert child.process.wait(15) == 0


def test_serve_refuses_an_invalid_catalog(spawn, inline_yaml, tmp_path: Path) -> None:
    catalog = tmp_path / "bad.yaml"
    catalog.write_text(inline_yaml.replace("slots: 3", "slots: three"))
    child = spawn("--catalog", str(catalog), "--address", "127.0.0.1:0", "--no-metrics")
    entry = child.wait_log("invalid catalog")
    assert entry["issues"] == [f"{catalog}:10:37: placement 'feed': slots: Input should be a valid integer"]
    assert child.process.wait(10) == 1
