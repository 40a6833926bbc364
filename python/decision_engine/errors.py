"""The exceptions the engine raises, created once in the Rust extension.

::

    DecisionEngineError
    ├── CatalogError                 the catalog is invalid; nothing was replaced
    ├── InvalidInputError            malformed request input (feature count, NaN, ...)
    ├── UnknownPlacementError
    ├── UnknownOfferError
    ├── UnknownDecisionError         never issued, expired, or it showed nothing
    ├── UnknownProfileError          decide by id, or read, of a profile the store does not hold
    ├── OutcomeAlreadyReportedError  a retried outcome (or release) of a settled decision
    └── StorageError                 the engine's state could not be read or written
"""

from decision_engine._core import (
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
    "CatalogError",
    "DecisionEngineError",
    "InvalidInputError",
    "OutcomeAlreadyReportedError",
    "StorageError",
    "UnknownDecisionError",
    "UnknownOfferError",
    "UnknownPlacementError",
    "UnknownProfileError",
]
