"""The gRPC decision service: `create_server(address, engine) -> (server, port)`.

::

    server.py        create_server, DecisionServer (health, reflection, graceful stop, reload)
    servicers.py     DecisionService and AdminService: convert, call the engine, convert back
    converters.py    protobuf messages <-> engine arguments and results
    interceptors.py  bearer-token auth, per-RPC metrics
    errors.py        the decorator mapping exceptions to status codes
    catalogs.py      catalog reload, validation, apply and dry run
    metrics.py       Prometheus metrics and GetStats counters
    run.py           `decision-engine serve`: signals, worker processes
"""

from decision_engine.server.interceptors import Tokens
from decision_engine.server.metrics import Metrics
from decision_engine.server.server import DecisionServer, TlsConfig, create_server

__all__ = ["DecisionServer", "Metrics", "TlsConfig", "Tokens", "create_server"]
