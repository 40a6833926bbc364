"""TriggerService: the decisions triggers made, streamed to the channels' senders, their
acknowledgements, and what became of a profile's trigger instances.

SubscribeDecisions is a server stream on the server's stream budget (see streams.py: a slot
of `max_streams`, RESOURCE_EXHAUSTED past it). It polls the engine for its channel's
deliveries, about every 20 ms while there are none, and ends when the client cancels or the
server stops (a connection's age bound ends it too: a sender reconnects). A decision sent and
not acknowledged within the visibility timeout comes again, on this stream or another, with
`attempt` counting up (at least once; the decision id is the idempotency key). One stream has
at most `max_in_flight` decisions sent and neither acknowledged nor past their visibility.

`Ticker` fires the due trigger instances every 50 ms on the wall clock while the catalog has
triggers; an error is logged and counted, and the ticker goes on.

On the Redis store every server fires and delivers for all: a due instance is leased to the
server whose ticker claims it, and a delivery goes out on any server's subscription until one of
them takes its acknowledgement (the core's `store::shared`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from decision_engine._core import LIMITS
from decision_engine.engine import Engine
from decision_engine.errors import InvalidInputError
from decision_engine.ids import DecisionIds
from decision_engine.server.errors import handle_errors, status_of
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc

__all__ = [
    "TRIGGER_SERVICE",
    "Ticker",
    "TriggerServicer",
    "register_trigger_service",
]

log = logging.getLogger("decision_engine.server")

TRIGGER_SERVICE = "decision_engine.v1.TriggerService"

# A subscription's bounds (the proto documents them): seconds a sent decision waits for its
# acknowledgement before it is sent again, and decisions sent and unacknowledged at once.
# min, max, default (0: the default), owned by the core
VISIBILITY_SECONDS = (
    LIMITS["min_visibility_seconds"],
    LIMITS["max_visibility_seconds"],
    LIMITS["default_visibility_seconds"],
)
MAX_IN_FLIGHT = (1, int(LIMITS["max_in_flight"]), int(LIMITS["default_in_flight"]))
POLL_SECONDS = 0.02  # a subscription's wait between polls that found nothing
TICK_SECONDS = 0.05


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def triggered_decision(delivery: dict[str, Any], ids: DecisionIds) -> pb.TriggeredDecision:
    """A delivery of `Engine.poll_deliveries` as its message (its id tagged with the worker, as
    an inbound decision's is, so ReportOutcome takes it)."""
    offers = [
        pb.ChosenOffer(offer_id=offer_id, slot=slot, score=score, propensity=propensity)
        for slot, (offer_id, score, propensity) in enumerate(delivery["offers"])
    ]
    decision = pb.Decision(
        decision_id=ids.to_wire(delivery["decision_id"]), placement=delivery["placement"], offers=offers
    )
    return pb.TriggeredDecision(
        decision=decision,
        trigger=delivery["trigger"],
        profile_id=delivery["profile_id"],
        channel=delivery["channel"],
        attempt=delivery["attempt"],
        decided_at=_timestamp(delivery["decided_at"]),
    )


def trigger_outcome(entry: dict[str, Any], ids: DecisionIds) -> pb.TriggerOutcome:
    """An entry of `Engine.trigger_history` as its message (a decision id tagged, 0 stays 0)."""
    return pb.TriggerOutcome(
        trigger=entry["trigger"],
        key=entry["key"],
        time=_timestamp(entry["time"]),
        outcome=entry["outcome"],
        detail=entry["detail"],
        decision_id=ids.to_wire(entry["decision_id"]) if entry["decision_id"] else 0,
    )


def _bounded(value: float, bounds: tuple[float, float, float], what: str) -> float:
    low, high, default = bounds
    if value == 0:
        return default
    if not low <= value <= high:
        raise InvalidInputError(f"{what} must be {low:g}..{high:g} (0 for {default:g}), got {value:g}")
    return value


class _InFlight:
    """The decisions each open subscription sent that are neither acknowledged nor past their
    visibility timeout (monotonic deadlines), so a stream holds at most `max_in_flight`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, dict[int, float]] = {}
        self._next = 0

    def open(self) -> int:
        with self._lock:
            self._next += 1
            self._streams[self._next] = {}
            return self._next

    def close(self, stream: int) -> None:
        with self._lock:
            self._streams.pop(stream, None)

    def sent(self, stream: int, decision_id: int, visibility: float) -> None:
        with self._lock:
            if (held := self._streams.get(stream)) is not None:
                held[decision_id] = time.monotonic() + visibility

    def room(self, stream: int, limit: int) -> int:
        now = time.monotonic()
        with self._lock:
            held = self._streams.get(stream, {})
            for decision_id in [d for d, deadline in held.items() if deadline <= now]:
                del held[decision_id]
            return limit - len(held)

    def acknowledged(self, decision_ids: Iterable[int]) -> None:
        ids = set(decision_ids)
        with self._lock:
            for held in self._streams.values():
                for decision_id in ids & held.keys():
                    del held[decision_id]


class TriggerServicer:
    def __init__(self, engine: Engine, ids: DecisionIds | None = None) -> None:
        self.engine = engine
        self.ids = ids or DecisionIds()
        self.stopping = threading.Event()
        self.ticker = Ticker(engine)
        self._in_flight = _InFlight()

    @handle_errors
    def SubscribeDecisions(
        self, request: pb.SubscribeDecisionsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.TriggeredDecision]:
        """Checks the request and polls once (an unknown channel is INVALID_ARGUMENT with the
        core's message before the stream starts), then streams."""
        if not request.channel:
            raise InvalidInputError("SubscribeDecisionsRequest needs the channel to subscribe to")
        visibility = _bounded(
            request.visibility_timeout_seconds, VISIBILITY_SECONDS, "visibility_timeout_seconds"
        )
        limit = int(_bounded(request.max_in_flight, MAX_IN_FLIGHT, "max_in_flight"))
        first = self.engine.poll_deliveries(request.channel, max=limit, visibility=visibility)
        return self._stream(request.channel, visibility, limit, first, context)

    def _stream(
        self,
        channel: str,
        visibility: float,
        limit: int,
        first: list[dict[str, Any]],
        context: grpc.ServicerContext,
    ) -> Iterator[pb.TriggeredDecision]:
        stream = self._in_flight.open()
        ended = threading.Event()
        context.add_callback(ended.set)  # the call ended: cancelled, or the server stopped
        try:
            batch = first
            while True:
                for delivery in batch:
                    self._in_flight.sent(stream, delivery["decision_id"], visibility)
                    yield triggered_decision(delivery, self.ids)
                if ended.is_set() or self.stopping.is_set() or not context.is_active():
                    return
                room = self._in_flight.room(stream, limit)
                batch = []
                if room > 0:
                    try:
                        batch = self.engine.poll_deliveries(channel, max=room, visibility=visibility)
                    except Exception as exc:  # e.g. a catalog reload removed the channel
                        context.abort(*status_of(exc))
                if not batch:
                    ended.wait(POLL_SECONDS)
        finally:
            self._in_flight.close(stream)

    @handle_errors
    def AckDecisions(
        self, request: pb.AckDecisionsRequest, context: grpc.ServicerContext
    ) -> pb.AckDecisionsResponse:
        # another worker's ids are unknown here: they count nothing
        mine = [i for i in request.decision_ids if self.ids.worker_of(i) == self.ids.worker]
        ids = [self.ids.engine_id(i) for i in mine]
        acknowledged = self.engine.ack_deliveries(ids)
        self._in_flight.acknowledged(ids)
        return pb.AckDecisionsResponse(acknowledged=acknowledged)

    @handle_errors
    def GetTriggerHistory(
        self, request: pb.GetTriggerHistoryRequest, context: grpc.ServicerContext
    ) -> pb.GetTriggerHistoryResponse:
        if not request.profile_id:
            raise InvalidInputError("GetTriggerHistoryRequest needs the profile_id")
        entries = self.engine.trigger_history(request.profile_id)
        return pb.GetTriggerHistoryResponse(outcomes=[trigger_outcome(e, self.ids) for e in entries])

    def start(self) -> None:
        self.ticker.start()

    def stop(self) -> None:
        """Stops the ticker; every subscription ends at its next poll."""
        self.stopping.set()
        self.ticker.stop()


class Ticker:
    """A thread that fires the engine's due trigger instances every `period` seconds of wall
    time, while its catalog has triggers (a reload may add or remove them)."""

    def __init__(self, engine: Engine, period: float = TICK_SECONDS) -> None:
        self.engine = engine
        self.period = period
        self.ticks = 0  # fire_due calls, since start
        self.fired = 0  # instances ended or delivered, since start
        self.errors = 0  # fire_due calls that raised, since start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trigger-ticker", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            if not self.engine.catalog.model.triggers:
                continue
            try:
                self.fired += self.engine.fire_due()
            except Exception:
                self.errors += 1
                log.exception("firing the due triggers failed", extra={"errors": self.errors})
            self.ticks += 1


def register_trigger_service(
    server: grpc.Server,
    servicer: TriggerServicer,
    register: Callable[..., None],
) -> None:
    add = decision_pb2_grpc.add_TriggerServiceServicer_to_server
    register(server, TRIGGER_SERVICE, add, servicer)
