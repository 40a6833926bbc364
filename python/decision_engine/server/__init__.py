"""The gRPC decision service: `create_server(address, engine) -> (server, port)`.

::

    server.py        create_server, DecisionServer (health, reflection, graceful stop, reload)
    servicers.py     DecisionService and AdminService: convert, call the engine, convert back
    profiles.py      ProfileService: profile and event writes, wire bytes to the core and back
    triggers.py      TriggerService: triggered decisions streamed, acknowledged; the ticker
    converters.py    protobuf messages <-> engine arguments and results
    interceptors.py  bearer-token auth (AdminService closed without its token), per-RPC metrics
    limits.py        what one client can take: connections, calls, streams, message sizes
    streams.py       the bound on streaming calls and the idle timeout of request streams
    reflection.py    server reflection under grpc.reflection.v1 and v1alpha
    errors.py        the decorator mapping exceptions to status codes
    catalogs.py      catalog reload, validation, apply and dry run
    metrics.py       Prometheus metrics and GetStats counters
    metrics_http.py  the bounded /metrics HTTP server (token, TLS)
    run.py           `decision-engine serve`: signals, worker processes
"""

from decision_engine.server.interceptors import Tokens
from decision_engine.server.limits import Limits
from decision_engine.server.metrics import Metrics
from decision_engine.server.server import DecisionServer, TlsConfig, create_server

__all__ = ["DecisionServer", "Limits", "Metrics", "TlsConfig", "Tokens", "create_server"]
