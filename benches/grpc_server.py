"""The server under test in bench_grpc.py, in its own process so the Python client threads do
not share its GIL: the 100-offer, 50-rule workload engine (posteriors warmed up as in the
`engine_100` fixture) behind `create_server` on 127.0.0.1, any free port.

Prints the port on stdout, then serves until its stdin closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the `seeds` package lives at the repository root
    sys.path.insert(0, str(ROOT))

import workload  # noqa: E402
from decision_engine import Engine  # noqa: E402
from decision_engine.server import Limits, create_server  # noqa: E402


def main() -> None:
    engine = Engine(workload.build(100, 50).catalog, seed=1, clock="simulated")
    warm_rows = workload.profiles(20_000, seed=workload.SEED + 7)
    workload.warm_up(engine, workload.HERO, warm_rows)
    workload.warm_up(engine, workload.FEED, warm_rows)
    limits = Limits(max_batch=100_000, max_message_bytes=64 << 20)
    server, port = create_server("127.0.0.1:0", engine, limits=limits)
    server.start()
    print(port, flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    server.stop(1).wait()


if __name__ == "__main__":
    main()
