"""Bearer tokens (separate for decisions and admin) and TLS with a self-signed certificate."""

import datetime
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from decision_engine import Engine
from decision_engine.server import TlsConfig, Tokens
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.server.server_helpers import rpc_error

DECISION, ADMIN = "decision-secret", "admin-secret"
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


def bearer(token):
    return [("authorization", f"Bearer {token}")]


@pytest.fixture
def secured(start_server, inline_catalog):
    return start_server(
        Engine(inline_catalog, seed=7, clock="simulated"), tokens=Tokens(decision=DECISION, admin=ADMIN)
    )


def ping(running, metadata=None):
    return running.decisions.Ping(pb.PingRequest(), metadata=metadata)


def stats(running, metadata=None):
    return running.admin.GetStats(admin.GetStatsRequest(), metadata=metadata)


def test_tokens(secured):
    assert ping(secured, bearer(DECISION)) == pb.PingResponse()
    assert ping(secured, bearer(ADMIN)) == pb.PingResponse()  # the admin token grants decisions too
    assert stats(secured, bearer(ADMIN)).placements == 3
    assert ping(secured, [("authorization", f"bearer  {DECISION}")]) == pb.PingResponse()


@pytest.mark.parametrize(
    ("call", "metadata", "code", "message"),
    [
        (ping, None, UNAUTHENTICATED, "missing bearer token (metadata 'authorization: Bearer <token>')"),
        (ping, bearer("nope"), UNAUTHENTICATED, "invalid bearer token"),
        (ping, [("authorization", f"Basic {DECISION}")], UNAUTHENTICATED, "missing bearer token"),
        (stats, None, UNAUTHENTICATED, "missing bearer token"),
        (stats, bearer("nope"), UNAUTHENTICATED, "invalid bearer token"),
        (stats, bearer(DECISION), PERMISSION_DENIED, "the AdminService needs the admin token"),
    ],
)
def test_refused(secured, call, metadata, code, message):
    error = rpc_error(lambda: call(secured, metadata))
    assert error.code() == code
    assert error.details().startswith(message)


def test_refused_streams_too(secured):
    request = iter([pb.ReportOutcomeRequest(decision_id=1, reward=1.0)])
    error = rpc_error(lambda: secured.decisions.ReportOutcomes(request, metadata=bearer("nope")))
    assert error.code() == UNAUTHENTICATED


def test_health_needs_no_token(secured):
    response = health_pb2_grpc.HealthStub(secured.channel).Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_only_a_decision_token_closes_admin(start_server, inline_catalog):
    running = start_server(
        Engine(inline_catalog, seed=7, clock="simulated"), tokens=Tokens(decision=DECISION)
    )
    assert ping(running, bearer(DECISION)) == pb.PingResponse()
    assert rpc_error(lambda: stats(running, bearer(DECISION))).code() == PERMISSION_DENIED


def test_only_an_admin_token_leaves_decisions_open(start_server, inline_catalog):
    running = start_server(Engine(inline_catalog, seed=7, clock="simulated"), tokens=Tokens(admin=ADMIN))
    assert ping(running) == pb.PingResponse()
    assert rpc_error(lambda: stats(running)).code() == UNAUTHENTICATED
    assert stats(running, bearer(ADMIN)).offers == 8


def test_tokens_never_show_in_repr():
    assert "secret" not in repr(Tokens(decision=DECISION, admin=ADMIN))


def self_signed() -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls_with_tokens(start_server, inline_catalog, tmp_path):
    cert, key = self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    credentials = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=cert), grpc.access_token_call_credentials(ADMIN)
    )
    running = start_server(
        Engine(inline_catalog, seed=7, clock="simulated"),
        tls=TlsConfig.from_files(tmp_path / "cert.pem", tmp_path / "key.pem"),
        tokens=Tokens(decision=DECISION, admin=ADMIN),
        credentials=credentials,
    )
    assert stats(running).offers == 8
    assert ping(running) == pb.PingResponse()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as plain:
        error = rpc_error(
            lambda: decision_pb2_grpc.DecisionServiceStub(plain).Ping(pb.PingRequest(), timeout=5)
        )
        assert error.code() == grpc.StatusCode.UNAVAILABLE
