"""decision-engine: a real-time next-best-offer decision engine.

Eligibility rules, bandit policies and contact policy in a Rust core, with a thin Python
layer that loads catalogs, serves decisions and gives Python code the same engine.
"""

from decision_engine._core import Bandit, BatchDecision, ChosenOffer, Decision, WriteReport
from decision_engine.catalog import LoadedCatalog, load_catalog, parse_catalog
from decision_engine.engine import ArmState, Contact, Engine
from decision_engine.errors import (
    CatalogError,
    DecisionEngineError,
    InvalidInputError,
    OutcomeAlreadyReportedError,
    StorageError,
    UnknownDecisionError,
    UnknownOfferError,
    UnknownPlacementError,
    UnknownProfileError,
)

__all__ = [
    "ArmState",
    "Bandit",
    "BatchDecision",
    "CatalogError",
    "ChosenOffer",
    "Contact",
    "Decision",
    "DecisionEngineError",
    "Engine",
    "InvalidInputError",
    "LoadedCatalog",
    "OutcomeAlreadyReportedError",
    "StorageError",
    "UnknownDecisionError",
    "UnknownOfferError",
    "UnknownPlacementError",
    "UnknownProfileError",
    "WriteReport",
    "load_catalog",
    "parse_catalog",
]
