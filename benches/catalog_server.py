"""A server under test in test_triggers.py and test_freshness.py, in its own process so the
Python client does not share its GIL: the engine of the catalog file given on the command
line, on the wall clock as `decision-engine serve` runs it, behind `create_server` on
127.0.0.1, any free port. A catalog with a Redis `store:` section gets the Redis store and
keeps its profiles in Redis too (the way `serve` opens them), so several of these processes
share one redis-server.

    python benches/catalog_server.py CATALOG.yaml [WORKER]

Prints the port on stdout, then serves until its stdin closes.
"""

from __future__ import annotations

import sys

from decision_engine import Engine
from decision_engine.catalog import load_catalog
from decision_engine.server import create_server
from decision_engine.server.run import profile_store
from decision_engine.store import open_store


def main() -> None:
    worker = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    catalog = load_catalog(sys.argv[1])
    url, prefix = profile_store(catalog, None)
    engine = Engine(catalog, seed=1 + worker, profile_store=url, profile_prefix=prefix)
    store = open_store(engine)
    server, port = create_server("127.0.0.1:0", engine, store=store, worker=worker)
    server.start()
    print(port, flush=True)
    try:
        sys.stdin.read()  # until the bench closes our stdin
    finally:
        server.stop(1).wait()
        if store is not None:
            store.close()


if __name__ == "__main__":
    main()
