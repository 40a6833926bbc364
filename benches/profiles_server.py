"""The server under test in test_profiles.py, in its own process so the Python client does not
share its GIL: an engine of the demo catalog (profiles, computed attributes, consent events)
behind `create_server` on 127.0.0.1, any free port, its profile store empty (the bench fills it
over UpsertProfileStream).

Prints the port on stdout, then serves until its stdin closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the `seeds` package lives at the repository root
    sys.path.insert(0, str(ROOT))

from decision_engine import Engine  # noqa: E402
from decision_engine.server import create_server  # noqa: E402

from seeds.generator import DEMO_CATALOG  # noqa: E402


def main() -> None:
    engine = Engine(DEMO_CATALOG, seed=1, clock="simulated")
    server, port = create_server("127.0.0.1:0", engine)
    server.start()
    print(port, flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    server.stop(1).wait()


if __name__ == "__main__":
    main()
