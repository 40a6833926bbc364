//! Triggered deliveries and trigger outcomes as Python dicts.

use decision_engine_core::triggers::{Delivery, HistoryEntry};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `decision_id`, `trigger`, `profile_id`, `key`, `placement`, `channel`, `offers` as
/// (offer_id, score, propensity), `attempt`, `decided_at`.
pub fn delivery<'py>(py: Python<'py>, d: &Delivery) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("decision_id", d.decision_id)?;
    dict.set_item("trigger", &d.trigger)?;
    dict.set_item("profile_id", &d.profile)?;
    dict.set_item("key", &d.key)?;
    dict.set_item("placement", &d.placement)?;
    dict.set_item("channel", &d.channel)?;
    dict.set_item("offers", d.offers.clone())?;
    dict.set_item("attempt", d.attempt)?;
    dict.set_item("decided_at", d.decided_at)?;
    Ok(dict)
}

/// `trigger`, `key`, `time`, `outcome`, `detail`, `decision_id` (0 when none).
pub fn history_entry<'py>(py: Python<'py>, e: &HistoryEntry) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("trigger", &e.trigger)?;
    dict.set_item("key", &e.key)?;
    dict.set_item("time", e.time)?;
    dict.set_item("outcome", &e.outcome)?;
    dict.set_item("detail", &e.detail)?;
    dict.set_item("decision_id", e.decision_id)?;
    Ok(dict)
}
