"""What one client can take from a server, and the grpc core options that enforce it.

Every bound answers with a status the client can act on (the README's "Security and limits"
lists them): RESOURCE_EXHAUSTED past the call or stream bounds and the message size,
UNAVAILABLE for a connection past the connection bound (closed on accept), a GOAWAY for a
connection idle or too old, CANCELLED for a request stream that sends nothing for too long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    threads: int = 16  # threads for unary calls; streams get `max_streams` threads of their own
    max_batch: int = 10_000  # profiles per DecideBatch (and per ApplyCatalog sample)
    max_message_bytes: int = 16 * 1024 * 1024  # one request or response
    max_concurrent_rpcs: int = 128  # calls running or queued for a thread, streams included
    max_streams: int = 8  # streaming calls at once: ReportOutcomes, health Watch, reflection
    stream_idle_seconds: float = 30.0  # a request stream waiting that long for a message is cancelled
    max_connections: int = 1024
    max_calls_per_connection: int = 100  # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
    connection_idle_seconds: float = 300.0  # no call on a connection for that long: GOAWAY
    connection_age_seconds: float = 3600.0  # then GOAWAY, so no connection holds a stream forever
    connection_age_grace_seconds: float = 30.0  # calls in flight get this long after that GOAWAY
    handshake_seconds: float = 10.0  # to send the HTTP/2 preface (and finish TLS) after connecting
    keepalive_seconds: float = 60.0  # server pings an idle connection this often
    keepalive_timeout_seconds: float = 20.0  # and closes it when the ping is not answered in time
    min_client_ping_seconds: float = 10.0  # clients pinging more often than this are sent away
    max_listed_refusals: int = 1_000  # refused outcomes listed in one ReportOutcomes reply

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"limit {name} must be positive, got {value!r}")
        if self.max_concurrent_rpcs <= self.max_streams:
            raise ValueError(
                f"max_concurrent_rpcs ({self.max_concurrent_rpcs}) must be more than max_streams "
                f"({self.max_streams}), or streams could take every call"
            )

    @property
    def pool_threads(self) -> int:
        """The server's thread pool: streams cannot take the threads of unary calls and health."""
        return self.threads + self.max_streams

    def grpc_options(self) -> list[tuple[str, Any]]:
        """Channel arguments of the server (grpc core's names)."""
        ms = _milliseconds
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_allowed_incoming_connections", self.max_connections),
            ("grpc.max_concurrent_streams", self.max_calls_per_connection),
            ("grpc.max_connection_idle_ms", ms(self.connection_idle_seconds)),
            ("grpc.max_connection_age_ms", ms(self.connection_age_seconds)),
            ("grpc.max_connection_age_grace_ms", ms(self.connection_age_grace_seconds)),
            ("grpc.server_handshake_timeout_ms", ms(self.handshake_seconds)),
            ("grpc.keepalive_time_ms", ms(self.keepalive_seconds)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_seconds)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", ms(self.min_client_ping_seconds)),
            ("grpc.http2.max_ping_strikes", 2),
        ]


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))
