//! Rule checks for the catalog loader, outside a full catalog compile.

use decision_engine_core::Error;
use pyo3::prelude::*;

use crate::errors::to_py;

/// A rule error's (offer id, rule line, rule column, detail).
type RuleIssue = (Option<String>, Option<usize>, Option<usize>, String);

/// Every rule error of `rules` ((offer id, text) pairs) against the features in
/// `features_json`, each rule compiled on its own.
#[pyfunction]
pub fn check_rules(py: Python<'_>, features_json: &str, rules: Vec<(String, String)>) -> PyResult<Vec<RuleIssue>> {
    let errors = py.detach(|| decision_engine_core::catalog::check_rules(features_json, &rules)).map_err(to_py)?;
    Ok(errors
        .into_iter()
        .map(|e| match e {
            Error::Rule { location, position, detail } => {
                (location.item().map(str::to_owned), Some(position.line), Some(position.column), detail)
            }
            Error::Catalog { location, detail } => (location.item().map(str::to_owned), None, None, detail),
            other => (None, None, None, other.to_string()),
        })
        .collect())
}
