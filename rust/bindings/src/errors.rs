//! The Python exception tree, created once, and the mapping from core errors.
//!
//! DecisionEngineError
//! ├── CatalogError            (attributes: kind, item, rule_line, rule_column, detail)
//! ├── InvalidInputError
//! ├── UnknownPlacementError
//! ├── UnknownOfferError
//! ├── UnknownDecisionError
//! ├── UnknownProfileError     (decide by id, or read, of a profile the store does not hold)
//! ├── OutcomeAlreadyReportedError
//! └── StorageError            (the engine's state could not be read or written)

use decision_engine_core::Error;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(_core, DecisionEngineError, PyException, "Base of every error the engine raises.");
pyo3::create_exception!(_core, CatalogError, DecisionEngineError, "The catalog is invalid; nothing was replaced.");
pyo3::create_exception!(_core, InvalidInputError, DecisionEngineError, "A request's input is malformed.");
pyo3::create_exception!(_core, UnknownPlacementError, DecisionEngineError, "No placement has that id.");
pyo3::create_exception!(_core, UnknownOfferError, DecisionEngineError, "No offer has that id.");
pyo3::create_exception!(_core, UnknownProfileError, DecisionEngineError, "The store holds no profile with that id.");
pyo3::create_exception!(_core, UnknownDecisionError, DecisionEngineError, "No pending decision has that id.");
pyo3::create_exception!(_core, OutcomeAlreadyReportedError, DecisionEngineError, "That outcome was reported before.");
pyo3::create_exception!(_core, StorageError, DecisionEngineError, "The engine's state could not be read or written.");

/// Converts a core error, attaching structured fields to catalog errors so the loader can
/// point at the YAML line.
pub fn to_py(err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Catalog { location, detail } => {
            Python::attach(|py| catalog_error(py, &message, &location, None, &detail))
        }
        Error::Rule { location, position, detail } => {
            Python::attach(|py| catalog_error(py, &message, &location, Some((position.line, position.column)), &detail))
        }
        Error::InvalidInput(_) => InvalidInputError::new_err(message),
        Error::UnknownPlacement(_) => UnknownPlacementError::new_err(message),
        Error::UnknownOffer(_) => UnknownOfferError::new_err(message),
        Error::UnknownDecision(_) => UnknownDecisionError::new_err(message),
        Error::UnknownProfile(_) => UnknownProfileError::new_err(message),
        Error::AlreadyReported { .. } | Error::AlreadySettled(_) => OutcomeAlreadyReportedError::new_err(message),
        Error::Storage(_) => StorageError::new_err(message),
    }
}

fn catalog_error(
    py: Python<'_>,
    message: &str,
    location: &decision_engine_core::Location,
    position: Option<(usize, usize)>,
    detail: &str,
) -> PyErr {
    let err = CatalogError::new_err(message.to_owned());
    let value = err.value(py);
    let set_fields = || -> PyResult<()> {
        value.setattr("kind", location.kind())?;
        value.setattr("item", location.item())?;
        value.setattr("rule_line", position.map(|p| p.0))?;
        value.setattr("rule_column", position.map(|p| p.1))?;
        value.setattr("detail", detail)
    };
    match set_fields() {
        Ok(()) => err,
        Err(e) => e,
    }
}
