//! `DecideOptions`: everything a decision is asked with besides its placements and the
//! profile, one type for `decide`, `decide_page` and `decide_stored`. It mirrors the core's
//! `DecideRequest` and `StoredDecideRequest`, and is checked and converted once, when built.

use decision_engine_core::DecideRequest;
use decision_engine_core::engine::{ContactEvent, StoredDecideRequest};
use decision_engine_core::store::Value;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString, PyTuple};

use crate::convert::{HistoryItem, contact_event, now_or};
use crate::errors::InvalidInputError;
use crate::profiles;

/// No options (`Default`): no consents, the server clock, no contact history.
#[pyclass(frozen, name = "DecideOptions", module = "decision_engine._core")]
#[derive(Default)]
pub struct PyDecideOptions {
    consents: Vec<String>,
    now: Option<f64>,
    explain: bool,
    profile_id: Option<String>,
    history: Vec<ContactEvent>,
    purchases: Vec<String>,
    exclude: Vec<String>,
    /// Features by name overriding stored values (decisions by id only).
    context: Vec<(String, Value)>,
}

#[pymethods]
impl PyDecideOptions {
    /// `consents`, `purchases` and `exclude` take a list, any iterable of str, or one str;
    /// `history` contact tuples or objects with `as_tuple()`; `context` a mapping.
    #[new]
    #[pyo3(signature = (*, consents = None, now = None, explain = false, profile_id = None,
                        history = None, purchases = None, exclude = None, context = None))]
    #[expect(clippy::too_many_arguments, reason = "one per Python keyword argument")]
    fn new(
        consents: Option<Bound<'_, PyAny>>,
        now: Option<f64>,
        explain: bool,
        profile_id: Option<String>,
        history: Option<Bound<'_, PyAny>>,
        purchases: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut contacts = Vec::new();
        for item in history.iter().map(|h| h.try_iter()).collect::<PyResult<Vec<_>>>()?.into_iter().flatten() {
            let item = item?;
            let tuple = if item.is_instance_of::<PyTuple>() { item } else { item.call_method0("as_tuple")? };
            contacts.push(contact_event(tuple.extract::<HistoryItem>()?)?);
        }
        let values = match context.filter(|c| !c.is_none()) {
            None => Vec::new(),
            Some(context) => {
                let dict = match context.cast::<PyDict>() {
                    Ok(dict) => dict.clone(),
                    Err(_) => {
                        let dict = PyDict::new(context.py());
                        dict.update(context.cast::<PyMapping>().map_err(|_| {
                            InvalidInputError::new_err("context must be a mapping of feature names to values")
                        })?)?;
                        dict
                    }
                };
                profiles::named_values(&dict, "context")?
            }
        };
        Ok(Self {
            consents: names(consents, "consents")?,
            now,
            explain,
            profile_id,
            history: contacts,
            purchases: names(purchases, "purchases")?,
            exclude: names(exclude, "exclude")?,
            context: values,
        })
    }

    /// Were features given by name for a decision by id?
    #[getter]
    fn has_context(&self) -> bool {
        !self.context.is_empty()
    }
}

/// A list of str, any iterable of str, or one str.
fn names(given: Option<Bound<'_, PyAny>>, what: &str) -> PyResult<Vec<String>> {
    let Some(given) = given.filter(|g| !g.is_none()) else { return Ok(Vec::new()) };
    if let Ok(one) = given.cast::<PyString>() {
        return Ok(vec![one.to_string()]);
    }
    if let Ok(list) = given.cast::<PyList>() {
        return list.extract();
    }
    let items = given.try_iter().map_err(|_| InvalidInputError::new_err(format!("{what} must be str names")))?;
    items.map(|item| item?.extract::<String>()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

impl PyDecideOptions {
    /// Runs `f` with the core's request for a decision on a feature vector.
    pub(crate) fn with_request<T>(
        &self,
        placements: &[String],
        features: &[f32],
        f: impl FnOnce(&DecideRequest<'_>) -> T,
    ) -> PyResult<T> {
        if !self.context.is_empty() {
            return Err(InvalidInputError::new_err(
                "context features go with deciding by id (profile None and a profile_id)",
            ));
        }
        let (placements, consents, purchases, exclude) =
            (strs(placements), strs(&self.consents), strs(&self.purchases), strs(&self.exclude));
        Ok(f(&DecideRequest {
            placements: &placements,
            features,
            consents: &consents,
            now: now_or(self.now),
            explain: self.explain,
            profile_id: self.profile_id.as_deref(),
            history: &self.history,
            purchases: &purchases,
            exclude: &exclude,
        }))
    }

    /// Runs `f` with the core's request for a decision on the stored profile.
    pub(crate) fn with_stored_request<T>(
        &self,
        placements: &[String],
        f: impl FnOnce(&StoredDecideRequest<'_>) -> T,
    ) -> PyResult<T> {
        let Some(profile_id) = self.profile_id.as_deref() else {
            return Err(InvalidInputError::new_err(
                "give the profile's features, or profile_id to decide on the stored profile",
            ));
        };
        let context: Vec<(&str, _)> = self.context.iter().map(|(n, v)| (n.as_str(), v.named())).collect();
        let (placements, consents, purchases, exclude) =
            (strs(placements), strs(&self.consents), strs(&self.purchases), strs(&self.exclude));
        Ok(f(&StoredDecideRequest {
            placements: &placements,
            profile_id,
            context: &context,
            consents: &consents,
            purchases: &purchases,
            history: &self.history,
            now: now_or(self.now),
            explain: self.explain,
            exclude: &exclude,
        }))
    }
}
