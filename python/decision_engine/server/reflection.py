"""Server reflection under both names clients ask for: `grpc.reflection.v1` (grpcurl, Postman,
current clients) and `grpc.reflection.v1alpha` (older ones).

grpcio-reflection ships only v1alpha. v1 is the same protocol under a new package name: the
same messages, field for field, so the v1alpha servicer answers v1 calls byte for byte. The
v1 file descriptor (the v1alpha one renamed) is added to the descriptor pool so the v1
service describes itself through reflection like any other.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha

__all__ = ["SERVICE_NAMES", "V1_FILE", "V1_SERVICE", "enable_reflection"]

V1ALPHA_SERVICE = reflection.SERVICE_NAME  # grpc.reflection.v1alpha.ServerReflection
V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
SERVICE_NAMES = (V1_SERVICE, V1ALPHA_SERVICE)


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """grpc/reflection/v1/reflection.proto, made from the v1alpha file by renaming its package."""
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    renamed = descriptor_pb2.FileDescriptorProto()
    v1alpha.DESCRIPTOR.CopyToProto(renamed)
    old, new = renamed.package, "grpc.reflection.v1"
    renamed.name = V1_FILE
    renamed.package = new
    renamed.options.Clear()  # v1alpha's options name its own language packages
    for message in renamed.message_type:
        for field in message.field:
            if field.type_name.startswith(f".{old}."):
                field.type_name = f".{new}." + field.type_name.removeprefix(f".{old}.")
    for service in renamed.service:
        for method in service.method:
            method.input_type = f".{new}." + method.input_type.removeprefix(f".{old}.")
            method.output_type = f".{new}." + method.output_type.removeprefix(f".{old}.")
    pool.Add(renamed)


def enable_reflection(service_names: tuple[str, ...], server: grpc.Server) -> None:
    """Reflection of `service_names` (and of reflection itself), under v1 and v1alpha."""
    _add_v1_descriptor(descriptor_pool.Default())
    servicer = reflection.ReflectionServicer((*service_names, *SERVICE_NAMES))
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=v1alpha.ServerReflectionRequest.FromString,
        response_serializer=v1alpha.ServerReflectionResponse.SerializeToString,
    )
    for service in SERVICE_NAMES:
        handlers = {"ServerReflectionInfo": handler}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)
