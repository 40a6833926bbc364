"""The exceptions the engine raises, created once in the Rust extension.

::

    DecisionEngineError
    ├── CatalogError                 the catalog is invalid; nothing was replaced
    ├── InvalidInputError            malformed request input (feature count, NaN, ...)
    ├── UnknownPlacementError
    ├── UnknownOfferError
    ├── UnknownDecisionError         never issued, or already settled
    └── OutcomeAlreadyReportedError
"""

from decision_engine._core import (
    CatalogError,
    DecisionEngineError,
    InvalidInputError,
    OutcomeAlreadyReportedError,
    UnknownDecisionError,
    UnknownOfferError,
    UnknownPlacementError,
)

__all__ = [
    "CatalogError",
    "DecisionEngineError",
    "InvalidInputError",
    "OutcomeAlreadyReportedError",
    "UnknownDecisionError",
    "UnknownOfferError",
    "UnknownPlacementError",
]
