"""The AdminService is closed unless an admin token is set; `insecure_admin` opens it, with a
warning at start. The DecisionService stays open without a decision token."""

from __future__ import annotations

import grpc
import pytest
from decision_engine import Engine
from decision_engine.server import Tokens, create_server
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb

from tests.server.server_helpers import rpc_error

EXTRA_OFFER = "  - {id: extra, placements: [hero], value: 100.0}\n"
ADMIN_CALLS = {
    "GetCatalog": lambda yaml: admin.GetCatalogRequest(),
    "ValidateCatalog": lambda yaml: admin.ValidateCatalogRequest(yaml=yaml),
    "ApplyCatalog": lambda yaml: admin.ApplyCatalogRequest(yaml=yaml + EXTRA_OFFER),
    "GetPolicyState": lambda yaml: admin.GetPolicyStateRequest(),
    "GetStats": lambda yaml: admin.GetStatsRequest(),
}


@pytest.mark.parametrize(
    "tokens", [None, Tokens(decision="decision-secret")], ids=["no-tokens", "decision-only"]
)
@pytest.mark.parametrize("method", ADMIN_CALLS)
def test_admin_is_closed_without_an_admin_token(start_server, inline_catalog, inline_yaml, method, tokens):
    running = start_server(Engine(inline_catalog, seed=7), tokens=tokens)
    request = ADMIN_CALLS[method](inline_yaml)
    call = getattr(running.admin, method)
    for metadata in (None, [("authorization", "Bearer decision-secret")], [("authorization", "Bearer x")]):
        error = rpc_error(lambda metadata=metadata: call(request, metadata=metadata, timeout=5))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details().startswith("the AdminService is closed: the server has no admin token;")
        assert "--admin-token" in error.details() and "--insecure-admin" in error.details()
    assert "extra" not in running.engine.offer_ids  # ApplyCatalog applied nothing


def test_decisions_stay_open_without_a_decision_token(start_server, inline_catalog):
    running = start_server(Engine(inline_catalog, seed=7))
    assert running.decisions.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()


def test_insecure_admin_opens_it_and_warns(start_server, inline_catalog, inline_yaml, caplog):
    running = start_server(Engine(inline_catalog, seed=7), insecure_admin=True)
    assert running.admin.GetStats(admin.GetStatsRequest(), timeout=5).placements == 3
    applied = running.admin.ApplyCatalog(ADMIN_CALLS["ApplyCatalog"](inline_yaml), timeout=10)
    assert applied.applied and "extra" in running.engine.offer_ids
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage().startswith("the AdminService is open to every client (--insecure-admin)")


def test_insecure_admin_with_an_admin_token_is_refused(inline_catalog):
    with pytest.raises(ValueError, match="insecure_admin opens the AdminService without a token"):
        create_server(
            "127.0.0.1:0", Engine(inline_catalog, seed=7), tokens=Tokens(admin="a"), insecure_admin=True
        )
