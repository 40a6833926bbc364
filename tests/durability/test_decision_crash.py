"""The Redis store under `kill -9`: two `decision-engine serve` processes share one
redis-server; server A decides and both take outcomes while A is killed again and again
(and restarted). Every outcome acknowledged, on either server, is learned exactly once: by
the server that stayed up and by an engine started at the end from what Redis holds (the
policy snapshot and the learning stream).

An outcome whose RPC died with A was settled in Redis or not at all; the client retries it on
B, which takes it (OK) or refuses it as already reported (ALREADY_EXISTS: A settled it before
dying). Either answer settles it once, so the count learned is exact, with no allowance for
outcomes on the wire at a kill."""

from __future__ import annotations

import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from decision_engine import Engine, load_catalog
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import admin_pb2_grpc
from decision_engine.v1 import decision_pb2 as pb

from tests.durability.test_crash import Server
from tests.store.polling import wait_for
from tests.store.redis_server import RedisServer

pytestmark = [
    pytest.mark.serve,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

KILLS = 5
CATALOG = """\
version: 1
features:
  - {name: age, type: int}
channels: [web]
placements:
  - {id: hero, channel: web, slots: 1, policy: {type: thompson, alpha: 1.0, beta: 1.0}}
offers:
  - {id: gold_card, placements: [hero]}
  - {id: savings, placements: [hero]}
  - {id: loan, placements: [hero]}
store: {type: redis, url: "{url}", key_prefix: crash, timeout_ms: 500}
"""
PRIOR = 2.0  # alpha + beta of every arm before any outcome
ALREADY = (grpc.StatusCode.ALREADY_EXISTS,)  # the outcome was settled before


@dataclass
class Settled:
    """Outcomes settled in Redis, as the clients know them: acknowledged (OK), or refused as
    already reported when retried after the server died with the first attempt on the wire."""

    rewards: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, reward: float) -> None:
        with self.lock:
            self.rewards.append(reward)


class Stream:
    """Decides on server A and reports each outcome on A or B (at random), as fast as they
    answer, until A dies; the outcome in flight then (if any) is kept for a retry."""

    def __init__(self, a: Server, b: Server, settled: Settled, seed: int) -> None:
        self.a, self.b, self.settled = a, b, settled
        self.rng = random.Random(seed)
        self.in_flight: tuple[int, float] | None = None
        self.unreported: list[int] = []  # decided on A, their outcomes sent after its restart
        self.error: BaseException | None = None  # what went wrong other than A's death
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._stream()
        except BaseException as error:
            self.error = error

    def _stream(self) -> None:
        request = pb.DecideRequest(profile=pb.Profile(features=[30.0]), placements=["hero"])
        while True:
            try:
                decision = self.a.stub.Decide(request, timeout=10).decisions[0]
            except grpc.RpcError:
                return  # A was killed
            assert decision.offers, decision
            if self.rng.random() < 0.1:
                self.unreported.append(decision.decision_id)
                continue
            reward = float(self.rng.random() < 0.3)
            to = self.a if self.rng.random() < 0.5 else self.b
            self.in_flight = (decision.decision_id, reward)
            try:
                to.stub.ReportOutcome(
                    pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=reward), timeout=10
                )
            except grpc.RpcError as error:
                assert to is self.a, error  # B stays up: it must take every outcome
                return
            self.in_flight = None
            self.settled.add(reward)


def report(server: Server, decision_id: int, reward: float, settled: Settled) -> str:
    """Reports an outcome once; settled counts it whether this call or an earlier one did."""
    try:
        server.stub.ReportOutcome(pb.ReportOutcomeRequest(decision_id=decision_id, reward=reward), timeout=10)
    except grpc.RpcError as error:
        assert error.code() in ALREADY, error
        settled.add(reward)
        return "already"
    settled.add(reward)
    return "ok"


def learned_by_admin(server: Server) -> tuple[float, float]:
    """(outcomes, rewards) in server's hero policy, over the AdminService."""
    stub = admin_pb2_grpc.AdminServiceStub(server.channel)
    state = stub.GetPolicyState(
        admin.GetPolicyStateRequest(placements=["hero"]),
        metadata=[("authorization", "Bearer admin")],
        timeout=10,
    )
    arms = state.placements[0].arms
    return sum(a.alpha + a.beta - PRIOR for a in arms), sum(a.alpha - 1.0 for a in arms)


def test_every_acknowledged_outcome_is_learned_once_over_many_kills(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    try:
        catalog_path = tmp_path / "catalog.yaml"
        catalog_path.write_text(CATALOG.replace("{url}", redis_server.url), encoding="utf-8")
        b = Server(catalog_path)
        try:
            settled, carried = run_with_kills(catalog_path, b)
            total, rewards = len(settled.rewards), sum(settled.rewards)
            assert total > 50 * KILLS and carried > 0, (total, carried)
            # B stayed up and learns every outcome from the stream, A's included.
            assert wait_for(lambda: learned_by_admin(b) == (total, rewards), 20), (learned_by_admin(b), total)
        finally:
            b.kill()
        # An engine started now learns from the policy snapshot and the stream: the same.
        engine = Engine(load_catalog(catalog_path), seed=99)
        try:
            engine.sync_store()
            arms = engine.policy_state("hero")
            assert sum(arm.alpha + arm.beta - PRIOR for arm in arms) == total
            assert sum(arm.alpha - 1.0 for arm in arms) == rewards
            assert sum(arm.pulls for arm in arms) == total
        finally:
            engine.close()
    finally:
        redis_server.stop()


def run_with_kills(catalog_path: Path, b: Server) -> tuple[Settled, int]:
    """Starts server A, streams at it and B, kills A with SIGKILL at a random moment; KILLS
    times. The outcomes settled, and how many were of decisions A made before a kill."""
    settled = Settled()
    rng = random.Random(23)
    unreported: list[int] = []
    carried = 0
    for kill in range(KILLS):
        a = Server(catalog_path)
        try:
            # Decisions A made before its last death still take outcomes, on the new A.
            for decision_id in unreported:
                assert report(a, decision_id, 1.0, settled) == "ok"
            carried += len(unreported)
            streams = [Stream(a, b, settled, seed=kill * 10 + s) for s in range(2)]
            time.sleep(rng.uniform(0.4, 1.0))
        finally:
            a.kill()  # SIGKILL, while outcomes flow to A and B
        unreported = []
        for stream in streams:
            stream.thread.join(15)
            assert not stream.thread.is_alive(), "a stream did not notice A's death"
            assert stream.error is None, stream.error
            unreported += stream.unreported
            if stream.in_flight is not None:
                # Its RPC died with A: settled in Redis or not at all. The retry on B says which.
                report(b, *stream.in_flight, settled)
    return settled, carried
