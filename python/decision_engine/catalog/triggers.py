"""Triggers in the catalog (the `triggers:` section): an event starts an instance, a delay
later the trigger's outbound placement is decided for the profile, unless a cancel-on event,
quiet hours, the re-entry window or the contact policy says otherwise.

Only the structure is checked here; the Rust core checks what it means (the placement is
outbound, the filter type-checks over the profile's features and the event's properties,
hours are 0..23, a queue's ttl, ...) and reports it by trigger id, with the filter's line and
column for an error inside the filter.
"""

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, Strict

from decision_engine.catalog.fields import Delay, Duration, fail
from decision_engine.catalog.profiles import SparseModel

__all__ = ["CancelOn", "EventProperty", "QuietHours", "Trigger"]

_Text = Annotated[str, Strict(), Field(min_length=1)]
_Count = Annotated[int, Strict(), Field(ge=0)]  # the core checks the range


def _rule_text(value: object) -> object:
    if isinstance(value, bool):  # `filter: true` is a valid rule, YAML reads a bool
        return "true" if value else "false"
    if isinstance(value, str) and not value.strip():
        fail("empty filter: leave 'filter' out for a trigger every such event starts")
    return value


class EventProperty(SparseModel):
    """An event property the filter reads, typed like a feature."""

    name: _Text
    type: Literal["int", "float", "bool", "category"]
    values: tuple[_Text, ...] | None = None


class CancelOn(SparseModel):
    """An event that cancels the profile's live instances: those with the same `key` value,
    or every instance when the key is left out."""

    event: _Text
    key: _Text | None = None


class QuietHours(SparseModel):
    """Local hours (from `start` to `end`, may wrap midnight) when nothing is sent, in the
    profile's time zone: `time_zone` names a numeric feature holding its UTC offset in hours,
    or a category feature whose values are IANA zones (daylight saving followed; the core checks
    each value)."""

    start: _Count
    end: _Count
    time_zone: _Text
    without_time_zone: Literal["utc", "ignore", "discard"]
    action: Literal["queue", "discard"]
    ttl: Duration | None = None


class Trigger(SparseModel):
    id: _Text
    event: _Text
    properties: tuple[EventProperty, ...] | None = None
    filter: Annotated[str, Strict(), BeforeValidator(_rule_text)] | None = None
    key: _Text | None = None
    delay: Delay
    cancel_on: tuple[CancelOn, ...] | None = None
    placement: _Text
    quiet_hours: QuietHours | None = None
    reentry: Duration | None = None
    max_live: _Count | None = None
    delivery_ttl: Duration | None = None
