"""The profile plane in the catalog: computed attributes of features, what events do, and the
embedded profile store's bounds (the `events:` and `profiles:` sections).

Only the structure is checked here; the Rust core checks what it means (which aggregate needs
a property or a default, which channel an event grants, ...) and reports it by feature, event
type or `profiles`.
"""

import math
from typing import Annotated, Literal

from pydantic import Field, PlainValidator, SerializerFunctionWrapHandler, Strict, model_serializer

from decision_engine.catalog.fields import Duration, Model, fail

__all__ = ["Computed", "EventSpec", "FeatureDefault", "ProfilesConfig", "SparseModel"]

_Text = Annotated[str, Strict(), Field(min_length=1)]


class SparseModel(Model):
    """A model whose JSON leaves out the optional keys that are absent (None)."""

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> object:
        data = handler(self)
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def _scalar(value: object) -> bool | int | float | str:
    if isinstance(value, float) and not math.isfinite(value):
        fail(f"a default must be finite, got {value}")
    if isinstance(value, bool | int | float | str):
        return value
    fail(f"a default is a number, true/false or a category value name, got {value!r}")


# A number, a bool or a category value name; the core checks it fits the feature's type.
FeatureDefault = Annotated[bool | int | float | str, PlainValidator(_scalar)]


class Computed(SparseModel):
    """A feature the engine computes from a profile's events (never written by upserts)."""

    event: _Text
    aggregate: Literal["count", "sum", "last", "time_since"]
    property: _Text | None = None
    window: Duration | None = None
    unit: Literal["seconds", "minutes", "hours", "days"] | None = None


class EventSpec(SparseModel):
    """What an event type does besides feeding computed attributes: the property naming the
    product it buys, the channel whose consent it grants or revokes."""

    type: _Text
    purchase: _Text | None = None
    grant: _Text | None = None
    revoke: _Text | None = None


class ProfilesConfig(SparseModel):
    """The profile store: what a never-seen id gets, how many profiles the embedded store holds
    (least recently used go beyond), and how long an untouched profile is kept."""

    unknown: Literal["defaults", "not_found"] | None = None
    capacity: Annotated[int, Strict(), Field(ge=1)] | None = None
    idle_ttl: Duration | None = None
