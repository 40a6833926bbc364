"""The embedded store under `kill -9`: a server is killed again and again in the middle of a
stream of outcomes; after every restart each acknowledged outcome is in the policy state and
each acknowledged decision still takes its outcome."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from decision_engine import Engine, load_catalog
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc

CLI = [sys.executable, "-c", "import sys; from decision_engine.cli import main; sys.exit(main())"]
GOOD = [30.0, 2000.0, 0.0, 2.0]  # the inline catalog's adult gold customer
KILLS = 6


class Server:
    """`decision-engine serve` on a free loopback port, killed with SIGKILL."""

    def __init__(self, catalog: Path) -> None:
        args = ["serve", "--catalog", str(catalog), "--address", "127.0.0.1:0", "--no-metrics"]
        env = {**os.environ, "DECISION_ENGINE_ADMIN_TOKEN": "admin"}
        self.process = subprocess.Popen(
            [*CLI, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        self.log: queue.Queue[dict[str, object]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.port = self._wait("serving")["port"]
        except AssertionError:
            self.process.kill()
            self.process.wait(10)
            raise
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = decision_pb2_grpc.DecisionServiceStub(self.channel)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                self.log.put(json.loads(line))
            except json.JSONDecodeError:
                self.log.put({"message": line.rstrip()})

    def _wait(self, message: str) -> dict[str, object]:
        seen = []
        deadline = time.monotonic() + 60  # a bound for a loaded machine, not a timing claim
        while time.monotonic() < deadline:
            try:
                entry = self.log.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            seen.append(entry)
            if entry.get("message") == message:
                return entry
        raise AssertionError(f"no {message!r} log line: {seen}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.channel.close()
        self.reader.join(5)
        assert self.process.stderr is not None
        self.process.stderr.close()


class Stream:
    """Decide, then report an outcome, as fast as the server answers; counts what was
    acknowledged, until the server dies."""

    def __init__(self, stub: decision_pb2_grpc.DecisionServiceStub, seed: int) -> None:
        self.stub = stub
        self.rng = random.Random(seed)
        self.acknowledged = 0
        self.unreported: list[int] = []  # decided (acknowledged), outcome not yet sent
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        profile = pb.Profile(features=GOOD)
        try:
            while True:
                decision = self.stub.Decide(pb.DecideRequest(profile=profile, placements=["hero"])).decisions[
                    0
                ]
                if self.rng.random() < 0.2:
                    self.unreported.append(decision.decision_id)  # its outcome comes after a restart
                    continue
                reward = float(self.rng.random() < 0.5)
                self.stub.ReportOutcome(
                    pb.ReportOutcomeRequest(decision_id=decision.decision_id, reward=reward)
                )
                self.acknowledged += 1
        except grpc.RpcError:
            return  # the server was killed


def learned(state_dir: Path, catalog) -> float:
    """Outcomes in the hero placement's policy state, read by an engine opened on the state."""
    engine = Engine(catalog, state_dir=state_dir)
    return sum(arm.pulls for arm in engine.policy_state("hero"))


@pytest.mark.parametrize("fsync", ["never", "interval"])
def test_no_acknowledged_outcome_is_lost_over_many_kills(inline_yaml, tmp_path, fsync):
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(
        inline_yaml + f"store: {{type: embedded, path: state, fsync: {fsync}, snapshot_every: 300}}\n"
    )
    catalog = load_catalog(catalog_path)
    acknowledged, in_flight_limit, carried = 0, 0, 0
    unreported: list[int] = []
    rng = random.Random(11)
    for kill in range(KILLS):
        server = Server(catalog_path)
        try:
            # Decisions acknowledged before the last kill still take their outcomes.
            for decision_id in unreported:
                request = pb.ReportOutcomeRequest(decision_id=decision_id, reward=1.0)
                server.stub.ReportOutcome(request, timeout=10)
                acknowledged += 1
            carried += len(unreported)
            stream = Stream(server.stub, seed=kill)
            time.sleep(rng.uniform(0.3, 0.9))
        finally:
            server.kill()
        stream.thread.join(10)
        acknowledged += stream.acknowledged
        unreported = stream.unreported
        in_flight_limit += 1  # at most one outcome was on the wire when the server died
        total = learned(tmp_path / "state", catalog)
        assert acknowledged <= total <= acknowledged + in_flight_limit, (kill, acknowledged, total)
    assert acknowledged > 100 * KILLS and carried > 0, (acknowledged, carried)


def test_a_torn_journal_tail_is_cut_with_a_warning(inline_yaml, tmp_path):
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(inline_yaml)
    catalog = load_catalog(catalog_path)
    engine = Engine(catalog, state_dir=tmp_path / "state")
    for _ in range(20):
        d = engine.decide("hero", np.array(GOOD, np.float32))
        engine.report_outcome(d.decision_id, reward=1.0)
    del engine
    journal = tmp_path / "state" / "journal-0.log"
    journal.write_bytes(journal.read_bytes() + b"\x40\x00\x00\x00torn")
    reopened = Engine(catalog, state_dir=tmp_path / "state")
    assert reopened.recovery is not None
    assert reopened.recovery["discarded_bytes"] == 8 and "torn record" in str(reopened.recovery["warning"])
    assert sum(a.pulls for a in reopened.policy_state("hero")) == 20
