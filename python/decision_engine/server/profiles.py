"""ProfileService: profiles and events from the customer data platform into the engine's
store, wire bytes in and out as Decide does (the Rust core decodes the requests, checks every
row and encodes the response; no Python protobuf object on the way).

The two client streams (UpsertProfileStream, TrackEvents) write message by message and answer
the sum: rows accepted and duplicated over the whole call, rejections by row index over the
whole call (the first `max_listed_rejections` of the core's LIMITS listed, `refused` counting
all). A bad row is a rejection, never a failed call; a message that does not parse ends the
call with INVALID_ARGUMENT saying what the messages before it wrote.

An engine on the Redis store (or with `profile_store=`) keeps its profiles in Redis, so every
server sharing it answers for the same customers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from decision_engine import _core
from decision_engine.engine import Engine
from decision_engine.errors import InvalidInputError
from decision_engine.server.errors import check_deadline, handle_errors
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc

__all__ = ["PROFILE_SERVICE", "ProfileServicer", "register_profile_service"]

PROFILE_SERVICE = "decision_engine.v1.ProfileService"

Wire = Callable[[bytes], bytes]


def _rows(response: pb.WriteResponse) -> int:
    """Rows of the message a response answers: each is accepted, a duplicate or refused."""
    return response.accepted + response.duplicates + response.refused


class ProfileServicer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @handle_errors
    def UpsertProfiles(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        check_deadline(context, "writing the profiles")
        return self.engine.upsert_profiles_wire(request)

    @handle_errors
    def UpsertProfileStream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return self._sum(requests, self.engine.upsert_profiles_wire, "UpsertProfilesRequest")

    @handle_errors
    def TrackEvents(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return self._sum(requests, self.engine.track_events_wire, "TrackEventsRequest")

    @handle_errors
    def GetProfile(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return self.engine.get_profile_wire(request)

    @handle_errors
    def DeleteProfile(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return self.engine.delete_profile_wire(request)

    def _sum(self, requests: Iterator[bytes], write: Wire, message: str) -> bytes:
        total = pb.WriteResponse()
        listed = int(_core.LIMITS["max_listed_rejections"])
        offset = 0
        for index, request in enumerate(requests):
            try:
                part = pb.WriteResponse.FromString(write(request))
            except InvalidInputError as exc:
                raise InvalidInputError(
                    f"{message} #{index} of the stream: {exc} (the {index} messages before it wrote "
                    f"{total.accepted} rows, {total.duplicates} duplicates, {total.refused} refused)"
                ) from None
            total.accepted += part.accepted
            total.duplicates += part.duplicates
            total.refused += part.refused
            room = listed - len(total.rejected)
            for row in part.rejected[: max(room, 0)]:
                total.rejected.add(index=row.index + offset, id=row.id, message=row.message)
            offset += _rows(part)
        return total.SerializeToString()


def register_profile_service(
    server: grpc.Server,
    servicer: ProfileServicer,
    register: Callable[..., None],
) -> None:
    """Every method takes and returns wire bytes (handlers without (de)serializers)."""
    unary = grpc.unary_unary_rpc_method_handler
    stream = grpc.stream_unary_rpc_method_handler
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "UpsertProfiles": unary(servicer.UpsertProfiles),
        "UpsertProfileStream": stream(servicer.UpsertProfileStream),
        "TrackEvents": stream(servicer.TrackEvents),
        "GetProfile": unary(servicer.GetProfile),
        "DeleteProfile": unary(servicer.DeleteProfile),
    }
    add = decision_pb2_grpc.add_ProfileServiceServicer_to_server
    register(server, PROFILE_SERVICE, add, servicer, **handlers)
