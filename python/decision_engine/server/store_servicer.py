"""DecisionService over the Redis store: Decide, outcomes and releases go through
`RedisStore` (shared caps, budgets and pending decisions) instead of the raw-bytes fast path,
which cannot take the shared history. DecideBatch stays in the local engine (campaign
batches: no shared caps, no pending decision in Redis). Its decision ids carry this server's
number like the others, but only the server that decided one knows it (its engine holds the
decision): report its outcome or release there. Another server answers UnknownDecisionError
(while Redis is down it buffers the report instead, and the replay forwards it there).

Health: the store's state is the standard health service's status of the service name
`decision_engine.v1.Store` (SERVING, or NOT_SERVING while degraded); the server itself
("" and the other services) stays SERVING, since decisions go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from decision_engine.engine import Contact
from decision_engine.errors import InvalidInputError
from decision_engine.server import converters as convert
from decision_engine.server.errors import RequestError, check_deadline, handle_errors
from decision_engine.server.interceptors import note_placement
from decision_engine.server.limits import Limits
from decision_engine.server.metrics import Metrics
from decision_engine.server.servicers import DecisionServicer
from decision_engine.store import RedisStore, SharedDecision
from decision_engine.v1 import decision_pb2 as pb

__all__ = ["STORE_SERVICE", "StoreDecisionServicer"]

STORE_SERVICE = "decision_engine.v1.Store"
PROFILES_NOT_SHARED = (
    "deciding by id on a Redis store needs the profiles in Redis too (decision-engine serve keeps "
    "them there; an Engine needs profile_store=)"
)

_KINDS = {pb.CONTACT_KIND_CONVERTED: "converted", pb.CONTACT_KIND_DISMISSED: "dismissed"}


def _profile(profile: pb.Profile) -> Any:
    """The feature vector, or a mapping by name (as the fast path reads them)."""
    if len(profile.features) and len(profile.named_features):
        raise InvalidInputError(
            "give the profile's features either packed (features) or by name (named_features), not both"
        )
    if not len(profile.named_features):
        return np.array(profile.features, dtype=np.float32)
    named: dict[str, float | bool | str] = {}
    for name, value in profile.named_features.items():
        kind = value.WhichOneof("value")
        if kind is None:
            raise InvalidInputError(f"feature '{name}' has no value (number, flag or category)")
        named[name] = getattr(value, kind)
    return named


def _contact(c: pb.Contact) -> Contact:
    time = c.time.seconds + c.time.nanos * 1e-9
    if not math.isfinite(time):
        raise InvalidInputError(f"contact time must be a finite number, got {time}")
    kind = _KINDS.get(c.kind, "shown")
    return Contact(c.offer_id, c.channel, time, kind, c.group if c.HasField("group") else None)  # type: ignore[arg-type]


def _response(decisions: Sequence[SharedDecision]) -> pb.DecideResponse:
    return pb.DecideResponse(
        decisions=[
            pb.Decision(
                decision_id=d.decision_id,
                placement=d.placement,
                offers=[
                    pb.ChosenOffer(offer_id=o.offer_id, slot=slot, score=o.score, propensity=o.propensity)
                    for slot, o in enumerate(d.offers)
                ],
                reasons=d.reasons,
                experiments=[pb.ExperimentGroup(experiment=e, group=g) for e, g in d.experiments],
            )
            for d in decisions
        ]
    )


class StoreDecisionServicer(DecisionServicer):
    def __init__(self, store: RedisStore, metrics: Metrics, limits: Limits) -> None:
        super().__init__(store.engine, metrics, limits, store.ids)
        self.store = store

    @handle_errors
    def Decide(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        check_deadline(context, "deciding")
        try:
            message = pb.DecideRequest.FromString(request)
        except DecodeError as exc:
            raise InvalidInputError(f"malformed DecideRequest: {exc}") from None
        placements = list(message.placements)
        note_placement(placements)
        profile = message.profile
        now = convert.seconds(message)
        features = _profile(profile)
        consents, purchases = list(profile.consents), list(profile.purchases)
        if self._by_id(profile):
            # The core's rule: the stored profile, named features over it, consents and
            # purchases added to the stored ones.
            named = features if isinstance(features, dict) else None
            stored = self.engine.stored_vector(profile.id, named, consents, purchases, now)
            features, consents, purchases = stored
        decisions = self.store.decide_page(
            placements,
            features,
            consents=consents,
            now=now,
            explain=message.explain,
            profile_id=profile.id or None,
            history=[_contact(c) for c in profile.history],
            purchases=purchases,
        )
        for d in decisions:
            self.metrics.decided(d.placement, d.offer_ids)
        return _response(decisions).SerializeToString()

    def _by_id(self, profile: pb.Profile) -> bool:
        """Decide by id (the core's rule, as on the embedded wire path). Needs the engine's
        profiles in Redis (`profile_store`), where every server reads them."""
        if not self.engine.decides_by_id(profile.id, len(profile.features), len(profile.named_features)):
            return False
        if self.engine.profile_count is not None:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, PROFILES_NOT_SHARED)
        return True

    def _report(self, request: pb.ReportOutcomeRequest) -> None:
        """Outcomes settle in Redis, for a decision any server made (ReportOutcome and
        ReportOutcomes come from the base class)."""
        offer_id = request.offer_id if request.HasField("offer_id") else None
        self.store.report_outcome(request.decision_id, request.reward, offer_id, dismissed=request.dismissed)

    @handle_errors
    def Release(self, request: pb.ReleaseRequest, context: grpc.ServicerContext) -> pb.ReleaseResponse:
        self.store.release(request.decision_id)
        return pb.ReleaseResponse()
