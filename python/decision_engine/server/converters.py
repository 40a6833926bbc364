"""Protobuf messages <-> engine arguments and results. No engine calls here.

Malformed requests raise the engine's own `InvalidInputError` (INVALID_ARGUMENT) with a
message that says what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import grpc
import numpy as np
import numpy.typing as npt
from google.protobuf.timestamp_pb2 import Timestamp

from decision_engine._core import BatchDecision
from decision_engine.catalog import CatalogIssue, LoadedCatalog
from decision_engine.engine import ArmState
from decision_engine.errors import InvalidInputError
from decision_engine.ids import DecisionIds
from decision_engine.server.catalogs import ApplyReport
from decision_engine.server.errors import RequestError
from decision_engine.server.metrics import StatsSnapshot
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb

__all__ = [
    "DecisionIds",
    "apply_response",
    "batch_consents",
    "batch_features",
    "batch_response",
    "catalog_response",
    "issues",
    "outcome",
    "policy_state_response",
    "profile_ids",
    "sample_rows",
    "seconds",
    "stats_response",
    "summary",
    "validate_response",
]


class _HasNow(Protocol):
    @property
    def now(self) -> Timestamp: ...

    def HasField(self, field_name: str) -> bool: ...


def _seconds(timestamp: Timestamp) -> float:
    return timestamp.seconds + timestamp.nanos * 1e-9


def seconds(request: _HasNow) -> float | None:
    """The request's `now` as Unix seconds, or None (the server's clock) when unset."""
    return _seconds(request.now) if request.HasField("now") else None


# --- Decide: decoded and encoded by the Rust core (Engine.decide_wire), nothing here ---


# --- DecideBatch ---


def _matrix(
    features: Sequence[float], rows: int, n_features: int, max_rows: int, what: str
) -> npt.NDArray[np.float32]:
    if rows > max_rows:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what} of {rows:,} profiles is over the limit of {max_rows:,} profiles per request",
        )
    if len(features) != rows * n_features:
        raise InvalidInputError(
            f"expected rows x features = {rows} x {n_features} = {rows * n_features} floats, "
            f"got {len(features)}"
        )
    return np.fromiter(features, dtype=np.float32, count=len(features)).reshape(rows, n_features)


def batch_features(request: pb.DecideBatchRequest, n_features: int, max_rows: int) -> npt.NDArray[np.float32]:
    return _matrix(request.features, request.rows, n_features, max_rows, "a batch")


def profile_ids(request: pb.DecideBatchRequest) -> list[str] | None:
    return list(request.profile_ids) if request.profile_ids else None


def batch_consents(request: pb.DecideBatchRequest, channels: Sequence[str]) -> npt.NDArray[np.bool_] | None:
    """The consent matrix in the engine's channel order, or None when none is given."""
    named = list(request.consent_channels)
    if not named:
        if request.consents:
            raise InvalidInputError("consents need consent_channels naming their columns")
        return None
    unknown = [c for c in named if c not in channels]
    if unknown:
        raise InvalidInputError(
            f"unknown consent channels {', '.join(unknown)}; channels are {', '.join(channels)}"
        )
    if len(request.consents) != request.rows * len(named):
        raise InvalidInputError(
            f"expected rows x consent_channels = {request.rows} x {len(named)} consents, "
            f"got {len(request.consents)}"
        )
    given = np.array(request.consents, dtype=np.bool_).reshape(request.rows, len(named))
    mask = np.zeros((request.rows, len(channels)), dtype=np.bool_)
    mask[:, [channels.index(c) for c in named]] = given
    return mask


def batch_response(
    placement: str, batch: BatchDecision, offer_ids: Sequence[str], ids: DecisionIds
) -> tuple[pb.DecideBatchResponse, list[tuple[str, int]]]:
    """The response, and (offer id, times chosen) with '' counting rows that got no offer."""
    offers = batch.offers
    rows, slots = offers.shape
    used = np.unique(offers[offers >= 0])
    remap = np.full(len(offer_ids) + 1, -1, dtype=np.int32)  # remap[-1] stays -1: empty slot
    remap[used] = np.arange(len(used), dtype=np.int32)
    wire = remap[offers]
    used_ids = [offer_ids[i] for i in used.tolist()]
    counts = list(zip(used_ids, np.bincount(wire[wire >= 0], minlength=len(used)).tolist(), strict=True))
    empty_rows = int((offers < 0).all(axis=1).sum()) if slots else rows
    if empty_rows:
        counts.append(("", empty_rows))
    propensities = batch.propensities
    response = pb.DecideBatchResponse(
        placement=placement,
        rows=rows,
        slots=slots,
        decision_ids=ids.to_wire_array(batch.decision_ids).tolist(),
        offer_ids=used_ids,
        offers=wire.ravel().tolist(),
        scores=batch.scores.ravel().tolist(),
        propensities=[] if propensities is None else propensities.ravel().tolist(),
    )
    return response, counts


# --- outcomes ---


def outcome(request: pb.ReportOutcomeRequest, ids: DecisionIds) -> tuple[int, float, str | None]:
    """(engine decision id, reward, offer id or None); `request.dismissed` goes as is."""
    offer_id = request.offer_id if request.HasField("offer_id") else None
    return ids.from_wire(request.decision_id), request.reward, offer_id


# --- admin ---


def summary(loaded: LoadedCatalog) -> admin.CatalogSummary:
    model = loaded.model
    placements = [
        admin.PlacementSummary(
            id=p.id,
            channel=p.channel,
            slots=p.slots,
            policy=p.policy.type,
            offer_ids=[o.id for o in model.offers if p.id in o.placements],
        )
        for p in model.placements
    ]
    return admin.CatalogSummary(
        features=[f.name for f in model.features],
        channels=[c.id for c in model.channels],
        placements=placements,
        offers=len(model.offers),
        rules=sum(1 for o in model.offers if o.rule),
    )


def catalog_response(loaded: LoadedCatalog) -> admin.GetCatalogResponse:
    return admin.GetCatalogResponse(source=loaded.path, yaml=loaded.source_map.text, summary=summary(loaded))


def issues(found: Iterable[CatalogIssue]) -> list[admin.CatalogIssue]:
    return [
        admin.CatalogIssue(
            file=i.file, line=i.line or 0, column=i.column or 0, where=i.where, message=i.message
        )
        for i in found
    ]


def validate_response(
    found: Sequence[CatalogIssue], loaded: LoadedCatalog | None
) -> admin.ValidateCatalogResponse:
    return admin.ValidateCatalogResponse(
        valid=loaded is not None,
        issues=issues(found),
        summary=summary(loaded) if loaded is not None else None,
    )


def sample_rows(
    request: admin.ApplyCatalogRequest, n_features: int, max_rows: int
) -> npt.NDArray[np.float32] | None:
    if not request.HasField("sample"):
        return None
    return _matrix(request.sample.features, request.sample.rows, n_features, max_rows, "a sample")


def apply_response(report: ApplyReport) -> admin.ApplyCatalogResponse:
    return admin.ApplyCatalogResponse(
        applied=report.applied,
        summary=summary(report.catalog),
        sample_rows=report.sample_rows,
        eligibility=[
            admin.EligibilityChange(offer_id=o, before=b, after=a) for o, b, a in report.eligibility
        ],
        added_offers=report.added,
        removed_offers=report.removed,
    )


def policy_state_response(states: Mapping[str, Sequence[ArmState]]) -> admin.GetPolicyStateResponse:
    return admin.GetPolicyStateResponse(
        placements=[
            admin.PlacementPolicyState(
                placement=placement,
                arms=[
                    admin.ArmState(offer_id=a.offer_id, alpha=a.alpha, beta=a.beta, mean=a.mean) for a in arms
                ],
            )
            for placement, arms in states.items()
        ]
    )


def stats_response(
    stats: StatsSnapshot, pending: int, offers: int, placements: int
) -> admin.GetStatsResponse:
    return admin.GetStatsResponse(
        decisions=stats.decisions,
        batch_profiles=stats.batch_profiles,
        outcomes=stats.outcomes,
        rejected_outcomes=stats.rejected_outcomes,
        pending_decisions=pending,
        catalog_reloads=stats.catalog_reloads,
        failed_catalog_reloads=stats.failed_catalog_reloads,
        uptime_seconds=stats.uptime_seconds,
        offers=offers,
        placements=placements,
    )
