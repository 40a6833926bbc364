//! Policy configuration, filled in and checked by the core for the catalog loader, so each
//! policy's defaults and ranges live once.

use decision_engine_core::policy::PolicyConfig;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The policy in `policy_json` (a mapping with a `type`) with every default filled in, as
/// JSON. When the core refuses it: `ValueError(message, parameter)`, `parameter` naming the
/// one at fault (None when the fault is the policy's shape).
#[pyfunction]
pub fn fill_policy(policy_json: &str) -> PyResult<String> {
    let value: serde_json::Value = serde_json::from_str(policy_json)
        .map_err(|e| PyValueError::new_err((format!("policy is not JSON: {e}"), None::<&str>)))?;
    let config = PolicyConfig::from_value(value).map_err(|e| PyValueError::new_err((e.message, e.parameter)))?;
    serde_json::to_string(&config).map_err(|e| PyValueError::new_err((e.to_string(), None::<&str>)))
}

/// The names of the policy types, in the order the core documents them.
#[pyfunction]
pub fn policy_types() -> Vec<&'static str> {
    decision_engine_core::policy::POLICY_TYPES.to_vec()
}
