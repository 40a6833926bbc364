"""gRPC serving cost: an empty RPC (`Ping`) against `Decide` on the same server, closed loop
with concurrent client threads for a fixed time; p50/p99 latency at a fixed request rate; and
`DecideBatch` profiles per second beside the in-process `decide_batch` on the same rows.

The server (100 offers, 50 rules, warmed-up posteriors, as `engine_100`) runs in its own
process (grpc_server.py) so the client threads do not share its GIL. Besides client-side
throughput, the server's own CPU time per call is read from /proc: on a small machine the
Python client can be the bottleneck, and then CPU per call is the fairer cost comparison.

The same measurements are then taken with a client that is not ours: the Rust (tonic) load
client of benches/grpc-client, generated from the same protos, built once per session with
cargo (skipped when cargo is missing) and run as a subprocess against the same server.

    python3 -m pytest benches/bench_grpc.py --benchmark-only

Environment: GRPC_BENCH_SECONDS (closed-loop and fixed-rate duration, default 3),
GRPC_BENCH_CLIENTS (client threads, default 8), GRPC_BENCH_RATE (requests/s, default 500).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from decision_engine import Engine
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from results import Recorder, percentiles
from rust_client import RustClient, build, write_features
from workload import HERO, profiles

SECONDS = float(os.environ.get("GRPC_BENCH_SECONDS", "3"))
CLIENTS = int(os.environ.get("GRPC_BENCH_CLIENTS", "8"))
RATE = float(os.environ.get("GRPC_BENCH_RATE", "500"))
WARMUP_CALLS = 200
BATCH_ROWS = [1_000, 10_000]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    port: int
    pid: int

    def channel(self) -> grpc.Channel:
        # A channel of its own per client thread: its own connection, as separate clients have.
        return grpc.insecure_channel(
            f"127.0.0.1:{self.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("grpc_server.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    port = int(process.stdout.readline())
    yield Server(port, process.pid)
    process.stdin.close()
    process.wait(30)
    process.stdout.close()


@pytest.fixture(scope="module")
def rows() -> npt.NDArray[np.float32]:
    return profiles(max(BATCH_ROWS), seed=99)


@pytest.fixture(scope="module")
def requests(rows: npt.NDArray[np.float32]) -> dict[str, list[Any]]:
    """Prebuilt requests per method, cycled through by the clients."""
    decide = [
        pb.DecideRequest(profile=pb.Profile(features=row.tolist()), placements=[HERO]) for row in rows[:1000]
    ]
    return {"Ping": [pb.PingRequest()], "Decide": decide}


@dataclass(frozen=True)
class LoopResult:
    calls: int
    seconds: float
    server_cpu: float  # seconds

    @property
    def cpu_per_call(self) -> float:
        return self.server_cpu / self.calls


def closed_loop(server: Server, method: str, requests: list[Any], clients: int, seconds: float) -> LoopResult:
    """`clients` threads, each calling `method` back to back on its own channel for `seconds`."""
    channels = [server.channel() for _ in range(clients)]
    calls = [getattr(decision_pb2_grpc.DecisionServiceStub(c), method) for c in channels]
    for call in calls:  # connect and warm up
        for request in itertools.islice(itertools.cycle(requests), WARMUP_CALLS // clients + 1):
            call(request)
    counts = [0] * clients
    start_line = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        call, cycle = calls[i], itertools.cycle(requests[i::clients] or requests)
        start_line.wait()
        n, end = 0, stop_at[0]
        while time.perf_counter() < end:
            call(next(cycle))
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before, started = server.cpu_seconds(), time.perf_counter()
    stop_at[0] = started + seconds
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu_before
    for channel in channels:
        channel.close()
    return LoopResult(sum(counts), elapsed, cpu)


@pytest.mark.parametrize("method", ["Ping", "Decide"])
@pytest.mark.benchmark(group="grpc closed loop")
def test_closed_loop(benchmark: Any, record: Recorder, server: Server, requests: Any, method: str) -> None:
    result = benchmark.pedantic(
        closed_loop, args=(server, method, requests[method], CLIENTS, SECONDS), rounds=1, iterations=1
    )
    assert result.calls > 0
    label = f"{result.cpu_per_call * 1e6:.0f} us server CPU/call"
    record(f"grpc.{method.lower()}", result.calls, label=label)


def fixed_rate(
    server: Server, method: str, requests: list[Any], rate: float, seconds: float
) -> npt.NDArray[np.int64]:
    """Latency (ns) of each call, issued on a fixed schedule whatever the answers do; measured
    from the scheduled send time, so a stall is not hidden (no coordinated omission)."""
    n = int(rate * seconds)
    latencies = np.zeros(n, dtype=np.int64)
    remaining = [n]
    done, lock = threading.Event(), threading.Lock()
    with server.channel() as channel:
        call = getattr(decision_pb2_grpc.DecisionServiceStub(channel), method)
        for request in requests[:WARMUP_CALLS]:
            call(request)

        def finished(index: int, due: int) -> Callable[[Any], None]:
            def callback(future: Any) -> None:
                latencies[index] = time.perf_counter_ns() - due
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

            return callback

        start = time.perf_counter_ns() + 10_000_000
        for i, request in zip(range(n), itertools.cycle(requests), strict=False):
            due = start + int(i * 1e9 / rate)
            wait = (due - time.perf_counter_ns()) / 1e9
            if wait > 0:
                time.sleep(wait)
            call.future(request).add_done_callback(finished(i, due))
        assert done.wait(60)
    return latencies


@pytest.mark.parametrize("method", ["Ping", "Decide"])
@pytest.mark.benchmark(group="grpc fixed rate")
def test_fixed_rate_latency(
    benchmark: Any, record: Recorder, server: Server, requests: Any, method: str
) -> None:
    latencies = benchmark.pedantic(
        fixed_rate, args=(server, method, requests[method], RATE, SECONDS), rounds=1, iterations=1
    )
    p50, p99 = percentiles(latencies)
    record(f"grpc.{method.lower()}_latency", len(latencies), p50=p50, p99=p99, label=f"{RATE:.0f}/s")


@pytest.mark.parametrize("n", BATCH_ROWS)
@pytest.mark.benchmark(group="grpc DecideBatch")
def test_decide_batch(benchmark: Any, record: Recorder, server: Server, rows: Any, n: int) -> None:
    request = pb.DecideBatchRequest(placement=HERO, features=rows[:n].ravel().tolist(), rows=n)
    with server.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        response = benchmark.pedantic(stub.DecideBatch, args=(request,), rounds=5, warmup_rounds=1)
    assert response.rows == n
    record(f"grpc.batch{n}", n)


@pytest.mark.benchmark(group="grpc DecideBatch")
def test_decide_batch_in_process(benchmark: Any, record: Recorder, engine_100: Engine, rows: Any) -> None:
    n = max(BATCH_ROWS)
    batch = benchmark.pedantic(engine_100.decide_batch, args=(HERO, rows[:n]), rounds=5, warmup_rounds=1)
    assert len(batch.decision_ids) == n
    record(f"grpc.engine_batch{n}", n)


# The Rust (tonic) client: same server, same requests, measured by the client itself.


@pytest.fixture(scope="session")
def rust_client() -> RustClient:
    client = build()
    if isinstance(client, str):
        pytest.skip(client)
    return client


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory, rows: Any) -> dict[str, Path]:
    """The rows the Python client sends (Ping sends nothing): 1,000 profiles for Decide, the
    largest batch for DecideBatch."""
    folder = tmp_path_factory.mktemp("grpc-client")
    return {
        "Decide": write_features(folder / "decide.json", HERO, rows[:1000]),
        "DecideBatch": write_features(folder / "batch.json", HERO, rows[: max(BATCH_ROWS)]),
    }


def rust_run(
    client: RustClient, server: Server, method: str, features: Path | None, **options: Any
) -> tuple[dict[str, Any], float]:
    """The client's report and the server's CPU seconds per call (warm-up calls included)."""
    cpu_before = server.cpu_seconds()
    rpc = {"Ping": "ping", "Decide": "decide", "DecideBatch": "decide-batch"}[method]
    report = client.run(server.port, rpc, seconds=SECONDS, features=features, **options)
    calls = report["calls"] + report["warmup_calls"]
    return report, (server.cpu_seconds() - cpu_before) / calls


@pytest.mark.parametrize("method", ["Ping", "Decide"])
@pytest.mark.benchmark(group="grpc closed loop, Rust client")
def test_rust_closed_loop(
    benchmark: Any, record: Recorder, server: Server, rust_client: RustClient, features: Any, method: str
) -> None:
    report, cpu_per_call = benchmark.pedantic(
        rust_run,
        args=(rust_client, server, method, features.get(method)),
        kwargs={"concurrency": CLIENTS},
        rounds=1,
        iterations=1,
    )
    assert report["ok"] > 0
    label = f"{cpu_per_call * 1e6:.0f} us server CPU/call"
    record(f"grpc.rust.{method.lower()}", report["ok"], seconds=report["elapsed_s"], label=label)


@pytest.mark.parametrize("method", ["Ping", "Decide"])
@pytest.mark.benchmark(group="grpc fixed rate, Rust client")
def test_rust_fixed_rate_latency(
    benchmark: Any, record: Recorder, server: Server, rust_client: RustClient, features: Any, method: str
) -> None:
    report, _ = benchmark.pedantic(
        rust_run,
        args=(rust_client, server, method, features.get(method)),
        kwargs={"mode": "rate", "rate": RATE, "concurrency": 1},  # one channel, as the Python client
        rounds=1,
        iterations=1,
    )
    assert report["ok"] == round(RATE * SECONDS)
    latency = report["latency_us"]
    record(
        f"grpc.rust.{method.lower()}_latency",
        report["ok"],
        seconds=report["elapsed_s"],
        p50=latency["p50"] * 1e-6,
        p99=latency["p99"] * 1e-6,
        label=f"{RATE:.0f}/s",
    )


@pytest.mark.benchmark(group="grpc DecideBatch, Rust client")
def test_rust_decide_batch(
    benchmark: Any, record: Recorder, server: Server, rust_client: RustClient, features: Any
) -> None:
    """Back-to-back DecideBatch calls of the largest batch, one in flight, as the Python client."""
    report, _ = benchmark.pedantic(
        rust_run, args=(rust_client, server, "DecideBatch", features["DecideBatch"]), rounds=1, iterations=1
    )
    assert report["ok"] > 0 and report["rows_per_call"] == max(BATCH_ROWS)
    decided = report["ok"] * report["rows_per_call"]
    record(f"grpc.rust.batch{report['rows_per_call']}", decided, seconds=report["elapsed_s"])
