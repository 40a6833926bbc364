"""Contact events as the Redis store keeps them: compact JSON members of a sorted set scored
by time, naming the decision that made them (and so the server, in its top bits)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, cast

from decision_engine.engine import Contact
from decision_engine.ids import DecisionIds

__all__ = ["decode_shared", "shown_member"]

Kind = Literal["shown", "converted", "dismissed"]


def shown_member(offer: str, channel: str, time: float, group: str | None, decision_id: int) -> str:
    """The sorted-set member of a `shown` contact; unique per (decision, offer)."""
    event = {"o": offer, "c": channel, "t": time, "k": "shown", "g": group, "d": str(decision_id)}
    return json.dumps(event, separators=(",", ":"))


def decode_shared(members: Iterable[str], ids: DecisionIds) -> list[Contact]:
    """The contacts to add to a decision's check: every event except the `shown` contacts of
    this server's own decisions, which its engine already holds as reservations (counting
    them twice would tighten every cap). Cooldown events may appear twice: harmless, a
    cooldown looks at the latest time only."""
    out = []
    for member in members:
        event: dict[str, Any] = json.loads(member)
        kind = cast(Kind, event["k"])
        if kind == "shown" and ids.worker_of(int(event["d"])) == ids.worker:
            continue
        decision_id = int(event["d"]) if "d" in event else 0
        out.append(Contact(event["o"], event["c"], float(event["t"]), kind, event.get("g"), decision_id))
    return out
