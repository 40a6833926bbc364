"""Outcomes and releases in the Redis store: the engine's exception for a refusal of the
outcome or release script, and what the deciding server does with one another server
received for it (its inbox)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from decision_engine.engine import Engine
from decision_engine.errors import (
    DecisionEngineError,
    InvalidInputError,
    OutcomeAlreadyReportedError,
    UnknownDecisionError,
    UnknownOfferError,
)
from decision_engine.ids import DecisionIds

__all__ = ["apply_forwarded", "raise_refusal", "thompson_only"]

log = logging.getLogger("decision_engine.store")


def raise_refusal(result: list[str], decision_id: int, offer_ids: Sequence[str]) -> None:
    """The engine's exception for a refusal of the outcome script, as the engine words it."""
    status, detail = result[0], result[1] if len(result) > 1 else ""
    if status == "ok":
        return
    if status == "unknown":
        raise UnknownDecisionError(f"unknown decision id {decision_id}")
    if status == "already":
        raise OutcomeAlreadyReportedError(
            f"decision {decision_id} already has an outcome for offer '{detail}'"
        )
    if status == "no_offer":
        raise InvalidInputError(f"decision {decision_id} showed no offer")
    if status == "ambiguous":
        raise InvalidInputError(
            f"decision {decision_id} showed {len(detail.split(', '))} offers ({detail}); "
            "say which one the outcome is for"
        )
    if detail not in offer_ids:
        raise UnknownOfferError(detail)
    raise InvalidInputError(f"offer '{detail}' was not shown in decision {decision_id}")


def apply_forwarded(engine: Engine, ids: DecisionIds, op: dict[str, str]) -> None:
    """An outcome or release of this server's decision that another server received (and
    settled in Redis, or, replayed after an outage, found no longer there)."""
    local = ids.engine_id(int(op["id"]))
    try:
        if op["op"] == "outcome":
            dismissed = op["dismissed"] == "1"
            engine.report_outcome(local, float(op["reward"]), op["offer"] or None, dismissed=dismissed)
        else:
            engine.release(local)
    except DecisionEngineError as exc:  # e.g. decided before this server restarted
        log.info("forwarded %s not applied", op["op"], extra={"decision_id": op["id"], "error": str(exc)})


def thompson_only(engine: Engine) -> bool:
    """Whether every policy of the engine's catalog (placements and experiment groups) is
    Beta-Bernoulli thompson, whose rewards must lie in [0, 1]."""
    model = engine.catalog.model
    policies = [p.policy for p in model.placements]
    policies += [g.policy for e in model.experiments for g in e.groups if g.policy is not None]
    return all(p.type == "thompson" for p in policies)
