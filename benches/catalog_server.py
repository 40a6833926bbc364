"""A server under test in test_triggers.py and test_freshness.py, in its own process so the
Python client does not share its GIL: the engine of the catalog file given on the command
line, on the wall clock as `decision-engine serve` runs it, behind `create_server` on
127.0.0.1, any free port. An engine of a catalog with a Redis `store:` section keeps its whole
state there, profiles included, so several of these processes share one redis-server.

    python benches/catalog_server.py CATALOG.yaml [WORKER]

Prints the port on stdout, then serves until its stdin closes.
"""

from __future__ import annotations

import sys

from decision_engine import Engine
from decision_engine.server import create_server


def main() -> None:
    worker = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    engine = Engine(sys.argv[1], seed=1 + worker)
    server, port = create_server("127.0.0.1:0", engine, worker=worker)
    server.start()
    print(port, flush=True)
    try:
        sys.stdin.read()  # until the bench closes our stdin
    finally:
        server.stop(1).wait()
        engine.close()


if __name__ == "__main__":
    main()
