"""The gRPC services: convert the request, call the engine, convert the result back.

Every method goes through `handle_errors`, which maps exceptions to status codes.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from google.protobuf.message import DecodeError

from decision_engine.engine import Engine
from decision_engine.errors import DecisionEngineError
from decision_engine.server import converters as convert
from decision_engine.server.catalogs import CatalogManager
from decision_engine.server.errors import MalformedRequest, check_deadline, handle_errors, parsed, status_of
from decision_engine.server.interceptors import note_placement
from decision_engine.server.limits import Limits
from decision_engine.server.metrics import Metrics
from decision_engine.v1 import admin_pb2 as admin
from decision_engine.v1 import decision_pb2 as pb

__all__ = ["AdminServicer", "DecisionServicer"]


def _placements_of(request: bytes) -> list[str]:
    try:
        return list(pb.DecideRequest.FromString(request).placements)
    except DecodeError:
        return []


class DecisionServicer:
    def __init__(self, engine: Engine, metrics: Metrics, limits: Limits, ids: convert.DecisionIds) -> None:
        self.engine = engine
        self.metrics = metrics
        self.limits = limits
        self.ids = ids

    @handle_errors
    def Decide(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Wire bytes straight to the Rust core and back: no Python protobuf objects on the
        hot path (registered without (de)serializers, see server.register_decision_service)."""
        check_deadline(context, "deciding")
        try:
            response, decided = self.engine.decide_wire(request, self.ids.to_wire(0))
        except Exception:
            note_placement(_placements_of(request))  # errors only: parse for the metrics label
            raise
        for placement, offer_ids in decided:
            self.metrics.decided(placement, offer_ids)
        note_placement([placement for placement, _ in decided])
        return response

    @handle_errors
    def DecideBatch(
        self, request: pb.DecideBatchRequest, context: grpc.ServicerContext
    ) -> pb.DecideBatchResponse:
        features = convert.batch_features(request, len(self.engine.feature_names), self.limits.max_batch)
        consents = convert.batch_consents(request, self.engine.channels)
        check_deadline(context, "deciding the batch")
        batch = self.engine.decide_batch(
            request.placement,
            features,
            consents=consents,
            now=convert.seconds(request),
            profile_ids=convert.profile_ids(request),
            allocate_budgets=request.allocate_budgets,
        )
        response, counts = convert.batch_response(request.placement, batch, self.engine.offer_ids, self.ids)
        self.metrics.batch_decided(request.placement, request.rows, counts)
        return response

    def _report(self, request: pb.ReportOutcomeRequest) -> None:
        """Records one outcome (ReportOutcome and each message of ReportOutcomes)."""
        self.engine.report_outcome(*convert.outcome(request, self.ids), dismissed=request.dismissed)

    @handle_errors
    def ReportOutcome(
        self, request: pb.ReportOutcomeRequest, context: grpc.ServicerContext
    ) -> pb.ReportOutcomeResponse:
        try:
            self._report(request)
        except DecisionEngineError as exc:
            self.metrics.outcome(status_of(exc)[0].name)
            raise
        self.metrics.outcome("accepted")
        return pb.ReportOutcomeResponse()

    @handle_errors
    def ReportOutcomes(
        self, requests: Iterator[pb.ReportOutcomeRequest], context: grpc.ServicerContext
    ) -> pb.ReportOutcomesResponse:
        response = pb.ReportOutcomesResponse()
        listed = self.limits.max_listed_refusals
        for index, request in enumerate(requests):
            try:
                self._report(parsed(request))
            except DecisionEngineError as exc:  # counted, the first ones listed; the stream goes on
                code, message = status_of(exc)
                self.metrics.outcome(code.name)
                response.refused += 1
                if len(response.rejected) < listed:
                    decision_id = 0 if isinstance(request, MalformedRequest) else request.decision_id
                    response.rejected.add(
                        index=index, decision_id=decision_id, code=code.name, message=message
                    )
                continue
            self.metrics.outcome("accepted")
            response.accepted += 1
        return response

    @handle_errors
    def Release(self, request: pb.ReleaseRequest, context: grpc.ServicerContext) -> pb.ReleaseResponse:
        self.engine.release(self.ids.from_wire(request.decision_id))
        return pb.ReleaseResponse()

    @handle_errors
    def Ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingResponse:
        return pb.PingResponse()


class AdminServicer:
    def __init__(self, engine: Engine, catalogs: CatalogManager, metrics: Metrics, limits: Limits) -> None:
        self.engine = engine
        self.catalogs = catalogs
        self.metrics = metrics
        self.limits = limits

    @handle_errors
    def GetCatalog(
        self, request: admin.GetCatalogRequest, context: grpc.ServicerContext
    ) -> admin.GetCatalogResponse:
        return convert.catalog_response(self.engine.catalog)

    @handle_errors
    def ValidateCatalog(
        self, request: admin.ValidateCatalogRequest, context: grpc.ServicerContext
    ) -> admin.ValidateCatalogResponse:
        issues, loaded = self.catalogs.validate(request.yaml, request.name or "<request>")
        return convert.validate_response(issues, loaded)

    @handle_errors
    def ApplyCatalog(
        self, request: admin.ApplyCatalogRequest, context: grpc.ServicerContext
    ) -> admin.ApplyCatalogResponse:
        sample = convert.sample_rows(request, len(self.engine.feature_names), self.limits.max_batch)
        check_deadline(context, "applying the catalog")
        report = self.catalogs.apply(
            request.yaml, request.name or "<request>", dry_run=request.dry_run, sample=sample
        )
        return convert.apply_response(report)

    @handle_errors
    def GetPolicyState(
        self, request: admin.GetPolicyStateRequest, context: grpc.ServicerContext
    ) -> admin.GetPolicyStateResponse:
        placements = list(request.placements) or list(self.engine.placements)
        return convert.policy_state_response({p: self.engine.policy_state(p) for p in placements})

    @handle_errors
    def GetStats(
        self, request: admin.GetStatsRequest, context: grpc.ServicerContext
    ) -> admin.GetStatsResponse:
        return convert.stats_response(
            self.metrics.stats.snapshot(),
            pending=self.engine.pending_decisions,
            offers=len(self.engine.offer_ids),
            placements=len(self.catalogs.placement_ids),
        )
