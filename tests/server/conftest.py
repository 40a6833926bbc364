"""Fixtures for the gRPC server tests: a real server on 127.0.0.1, port 0, in this process,
and real channels to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from decision_engine import Engine, LoadedCatalog
from decision_engine.server import create_server
from decision_engine.v1 import admin_pb2_grpc, decision_pb2_grpc

from tests.server.server_helpers import Running


@pytest.fixture
def start_server() -> Iterator[Callable[..., Running]]:
    """start_server(engine, **create_server options) -> Running; stopped after the test."""
    started: list[Running] = []

    def start(
        engine: Engine, *, credentials: grpc.ChannelCredentials | None = None, **options: Any
    ) -> Running:
        server, port = create_server("127.0.0.1:0", engine, **options)
        server.start()
        target = f"127.0.0.1:{port}"
        channel = (
            grpc.secure_channel(target, credentials)
            if credentials is not None
            else grpc.insecure_channel(target)
        )
        running = Running(
            server,
            port,
            channel,
            decision_pb2_grpc.DecisionServiceStub(channel),
            admin_pb2_grpc.AdminServiceStub(channel),
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.channel.close()
        running.server.stop(None).wait(5)


@pytest.fixture
def served(start_server: Callable[..., Running], inline_catalog: LoadedCatalog) -> Running:
    """A server over a fresh inline-catalog engine (seed 7), its AdminService open without a
    token (the auth tests start their own servers with tokens)."""
    return start_server(Engine(inline_catalog, seed=7, clock="simulated"), insecure_admin=True)
