"""Helpers shared by the gRPC server tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from decision_engine import Engine
from decision_engine.server import DecisionServer
from decision_engine.v1 import admin_pb2_grpc, decision_pb2_grpc

GOOD = [30.0, 2000.0, 0.0, 2.0]  # inline catalog: an adult gold customer without a card


@dataclass
class Running:
    server: DecisionServer
    port: int
    channel: grpc.Channel
    decisions: decision_pb2_grpc.DecisionServiceStub
    admin: admin_pb2_grpc.AdminServiceStub

    @property
    def engine(self) -> Engine:
        return self.server.engine


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    """The RpcError `call` raises (fails the test when it succeeds)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value
