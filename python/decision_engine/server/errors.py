"""One decorator that turns exceptions into gRPC status codes with a useful message.

Engine exceptions map by type; `RequestError` carries a code chosen by the server (batch
limit, deadline); a storage failure (the engine's `StorageError`, or an `OSError`) is
UNAVAILABLE; anything else is INTERNAL, logged with its traceback, and the
server keeps serving. A request body that does not parse reaches the method as a
`MalformedRequest` (see `tolerant`) and is INVALID_ARGUMENT; a call the client cancelled is
logged at debug level, not as an error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from decision_engine.errors import (
    CatalogError,
    DecisionEngineError,
    InvalidInputError,
    OutcomeAlreadyReportedError,
    StorageError,
    UnknownDecisionError,
    UnknownOfferError,
    UnknownPlacementError,
    UnknownProfileError,
)

__all__ = [
    "MalformedRequest",
    "RequestError",
    "check_deadline",
    "handle_errors",
    "parsed",
    "status_of",
    "tolerant",
]

log = logging.getLogger("decision_engine.server")

S = TypeVar("S")
R = TypeVar("R")
T = TypeVar("T")

MAX_MESSAGE_CHARS = 4_000  # status messages travel in a header; keep them well under its limit

_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (CatalogError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownPlacementError, grpc.StatusCode.NOT_FOUND),
    (UnknownOfferError, grpc.StatusCode.NOT_FOUND),
    (UnknownDecisionError, grpc.StatusCode.NOT_FOUND),
    (UnknownProfileError, grpc.StatusCode.NOT_FOUND),
    (OutcomeAlreadyReportedError, grpc.StatusCode.ALREADY_EXISTS),
)
_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)
# Storage failures, the core's own kind and the OS's: not the client's fault (not
# INVALID_ARGUMENT); UNAVAILABLE tells it to retry later.
_STORAGE_ERRORS: tuple[type[BaseException], ...] = (StorageError, OSError)


@dataclass(frozen=True)
class MalformedRequest:
    """A request body that does not parse as the method's message."""

    message_type: str
    error: str


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """`deserializer`, returning a MalformedRequest where grpc would answer INTERNAL (and log
    a traceback) for bytes that do not parse."""
    message_type = getattr(getattr(deserializer, "__self__", None), "__name__", "request")

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError, or whatever else the bytes provoke
            return MalformedRequest(message_type, str(exc) or type(exc).__name__)

    return deserialize


def parsed(request: T) -> T:
    """`request`, or InvalidInputError when its body did not parse."""
    if isinstance(request, MalformedRequest):
        raise InvalidInputError(f"malformed {request.message_type}: {request.error}")
    return request


class RequestError(Exception):
    """A request the server refuses itself, with the status code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _shorten(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    kept = message[:MAX_MESSAGE_CHARS].rsplit("\n", 1)[0]
    more = message.count("\n") - kept.count("\n")
    return f"{kept}\n... ({more} more lines)"


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """(status code, message) to answer for `exc`."""
    if isinstance(exc, RequestError):
        return exc.code, _shorten(exc.message)
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code, _shorten(str(exc))
    if isinstance(exc, _STORAGE_ERRORS):
        return grpc.StatusCode.UNAVAILABLE, f"storage unavailable ({type(exc).__name__}); see the server log"
    if isinstance(exc, DecisionEngineError):
        return grpc.StatusCode.UNKNOWN, _shorten(f"{type(exc).__name__}: {exc}")
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


def handle_errors(
    method: Callable[[S, R, grpc.ServicerContext], T],
) -> Callable[[S, R, grpc.ServicerContext], T]:
    """Servicer method decorator: exceptions become `context.abort(code, message)`."""

    @functools.wraps(method)
    def wrapper(self: S, request: R, context: grpc.ServicerContext) -> T:
        try:
            return method(self, parsed(request), context)
        except _PASS_THROUGH:
            raise
        except grpc.RpcError:  # a request stream ended by the client (cancelled, deadline)
            log.debug("call cancelled by the client", extra={"rpc": method.__name__})
            code, message = grpc.StatusCode.CANCELLED, "cancelled"
        except BaseException as exc:  # PanicException from the core is a BaseException
            code, message = status_of(exc)
            if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                log.error("unexpected error", exc_info=exc, extra={"rpc": method.__name__})
            elif code == grpc.StatusCode.UNAVAILABLE:
                log.error("storage error", exc_info=exc, extra={"rpc": method.__name__})
            else:
                log.debug("request refused", extra={"rpc": method.__name__, "code": code.name})
        context.abort(code, message)

    return wrapper


def check_deadline(context: grpc.ServicerContext, before: str) -> None:
    """Raises DEADLINE_EXCEEDED when the caller's deadline has passed (no work is wasted)."""
    remaining: float | None = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline exceeded before {before}")
