"""/metrics: process and store-health metrics, a bounded pool of threads however many
connections are open, a bearer token, TLS."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest
from decision_engine import Engine
from decision_engine.server import Metrics
from decision_engine.server.metrics_http import serve_metrics
from prometheus_client.parser import text_string_to_metric_families

from tests.server.test_grpc_auth_tls import self_signed


@pytest.fixture
def endpoints():
    opened = []

    def start(metrics, **options):
        endpoint = serve_metrics(metrics.registry, "127.0.0.1", 0, **options)
        opened.append(endpoint)
        return endpoint

    yield start
    for endpoint in opened:
        endpoint.close()


def scrape(url, headers=None, context=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        text = response.read().decode()
    return {s.name: s for family in text_string_to_metric_families(text) for s in family.samples}


def test_process_and_store_health_metrics(start_server, inline_catalog, endpoints):
    metrics = Metrics()
    start_server(Engine(inline_catalog, seed=7), metrics=metrics)
    endpoint = endpoints(metrics)
    samples = scrape(f"http://127.0.0.1:{endpoint.port}/metrics")
    assert samples["process_resident_memory_bytes"].value > 1_000_000
    assert samples["process_cpu_seconds_total"].value > 0
    assert samples["process_open_fds"].value > 0
    store = samples["decision_engine_store_healthy"]
    assert (store.labels, store.value) == ({"store": "embedded"}, 1.0)


def test_a_shared_store_reports_its_health(endpoints):
    metrics = Metrics()
    healthy = [True]
    metrics.watch_store(lambda: healthy[0])
    endpoint = endpoints(metrics)
    url = f"http://127.0.0.1:{endpoint.port}/metrics"
    assert scrape(url)["decision_engine_store_healthy"].labels == {"store": "redis"}
    assert scrape(url)["decision_engine_store_healthy"].value == 1.0
    healthy[0] = False
    assert scrape(url)["decision_engine_store_healthy"].value == 0.0


def metrics_threads():
    return [t for t in threading.enumerate() if t.name.startswith("metrics-http_")]


def test_idle_connections_hold_no_thread_each(endpoints):
    endpoint = endpoints(Metrics(), workers=1, backlog=1, timeout=1.5)
    idle = [socket.create_connection(("127.0.0.1", endpoint.port)) for _ in range(8)]
    try:
        deadline = time.monotonic() + 5
        while endpoint.refused < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert endpoint.refused == 6  # 1 served, 1 waiting, the other 6 closed at once
        assert len(metrics_threads()) == 1
        for sock in idle:  # every idle connection is closed: at once, or after the timeout
            sock.settimeout(10)
            assert sock.recv(100) == b""
        samples = scrape(f"http://127.0.0.1:{endpoint.port}/metrics")  # and scrapes go on
        assert "process_resident_memory_bytes" in samples
    finally:
        for sock in idle:
            sock.close()


def test_token(endpoints):
    endpoint = endpoints(Metrics(), token="metrics-secret")
    url = f"http://127.0.0.1:{endpoint.port}/metrics"
    for headers in (None, {"Authorization": "Bearer nope"}, {"Authorization": "metrics-secret"}):
        with pytest.raises(urllib.error.HTTPError) as info:
            scrape(url, headers)
        with info.value:  # the error holds the response (and its socket)
            assert info.value.code == 401
            assert info.value.headers["WWW-Authenticate"] == "Bearer"
    assert "process_cpu_seconds_total" in scrape(url, {"Authorization": "Bearer metrics-secret"})


def test_tls(endpoints, tmp_path):
    cert, key = self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    endpoint = endpoints(Metrics(), tls=server_context, timeout=0.5)
    silent = socket.create_connection(("127.0.0.1", endpoint.port))  # never starts its handshake
    try:
        client = ssl.create_default_context(cadata=cert.decode())
        assert "process_cpu_seconds_total" in scrape(
            f"https://127.0.0.1:{endpoint.port}/metrics", context=client
        )
        with pytest.raises((OSError, http.client.HTTPException)):
            scrape(f"http://127.0.0.1:{endpoint.port}/metrics")  # plain HTTP gets no metrics
        silent.settimeout(5)
        assert silent.recv(100) == b""  # closed after the timeout, without blocking the scrapes above
    finally:
        silent.close()
