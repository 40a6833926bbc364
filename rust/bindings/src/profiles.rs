//! Python values for the customer plane: profile writes and events from dicts, columns
//! from numpy, the write report and profile views back.

use decision_engine_core::engine::{Column, Event, ProfileView, ProfileWrite, WriteReport};
use decision_engine_core::schema::{FeatureKind, Schema};
use decision_engine_core::store::Value;
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::errors::InvalidInputError;

/// What a write did with each row: accepted, duplicates (events seen before), and the
/// rejected rows with their reasons (the first 1,000 listed, all counted in `refused`).
#[pyclass(frozen, name = "WriteReport", module = "decision_engine._core")]
pub struct PyWriteReport {
    #[pyo3(get)]
    accepted: u64,
    #[pyo3(get)]
    duplicates: u64,
    /// (row index, id, reason) per rejected row, by index.
    #[pyo3(get)]
    rejected: Vec<(u64, String, String)>,
    #[pyo3(get)]
    refused: u64,
}

#[pymethods]
impl PyWriteReport {
    fn __repr__(&self) -> String {
        format!(
            "WriteReport(accepted={}, duplicates={}, refused={}, rejected={:?})",
            self.accepted,
            self.duplicates,
            self.refused,
            self.rejected.iter().take(3).collect::<Vec<_>>()
        )
    }
}

impl From<WriteReport> for PyWriteReport {
    fn from(r: WriteReport) -> Self {
        Self {
            accepted: r.accepted,
            duplicates: r.duplicates,
            rejected: r.rejected.into_iter().map(|e| (e.index, e.id, e.message)).collect(),
            refused: r.refused,
        }
    }
}

/// A Python scalar as a value: bool, int or float, or str.
pub fn value(item: &Bound<'_, PyAny>) -> Result<Value, String> {
    if item.is_instance_of::<PyBool>() {
        return Ok(Value::Flag(item.extract::<bool>().map_err(|e| e.to_string())?));
    }
    if item.is_instance_of::<PyInt>() || item.is_instance_of::<PyFloat>() {
        return item.extract::<f64>().map(Value::Number).map_err(|e| e.to_string());
    }
    if let Ok(text) = item.cast::<PyString>() {
        return Ok(Value::Text(text.to_string()));
    }
    // numpy scalars and other numbers
    if let Ok(number) = item.extract::<f64>() {
        return Ok(Value::Number(number));
    }
    let kind = item.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string());
    Err(format!("a value must be a number, bool or str, got {kind}"))
}

/// Values given by name in a dict (None counts as absent); `what` names one in messages,
/// e.g. "feature" or "context".
pub fn named_values(dict: &Bound<'_, PyDict>, what: &str) -> PyResult<Vec<(String, Value)>> {
    let mut values = Vec::with_capacity(dict.len());
    for (key, item) in dict.iter() {
        if item.is_none() {
            continue;
        }
        let name: String = key.extract()?;
        let value = value(&item).map_err(|m| InvalidInputError::new_err(format!("{what} '{name}': {m}")))?;
        values.push((name, value));
    }
    Ok(values)
}

fn names(item: &Bound<'_, PyAny>, key: &str) -> Result<Vec<String>, String> {
    item.extract::<Vec<String>>().map_err(|_| format!("'{key}' must be a list of str"))
}

fn id_of(row: &Bound<'_, PyDict>, key: &str) -> Result<String, (String, String)> {
    match row.get_item(key) {
        Ok(Some(id)) => id.extract::<String>().map_err(|_| (String::new(), format!("'{key}' must be a str"))),
        _ => Ok(String::new()),
    }
}

/// One profile write from a flat dict: `id`, feature names, and the reserved lists.
pub fn profile_write(row: &Bound<'_, PyAny>) -> Result<ProfileWrite, (String, String)> {
    let row = row.cast::<PyDict>().map_err(|_| (String::new(), "a profile row must be a dict".to_owned()))?;
    let mut write = ProfileWrite { id: id_of(row, "id")?, ..ProfileWrite::default() };
    let fail = |m: String| (write.id.clone(), m);
    for (key, item) in row.iter() {
        let key: String = key.extract().map_err(|_| fail("keys must be str".to_owned()))?;
        match key.as_str() {
            "id" => {}
            "consents" => write.consents = names(&item, &key).map_err(fail)?,
            "revoked_consents" => write.revoked_consents = names(&item, &key).map_err(fail)?,
            "purchases" => write.purchases = names(&item, &key).map_err(fail)?,
            _ => {
                let v = value(&item).map_err(|m| fail(format!("feature '{key}': {m}")))?;
                write.features.push((key, v));
            }
        }
    }
    Ok(write)
}

/// One event from a dict: `id`, `profile_id`, `type`, `time` (unix seconds), `properties`.
pub fn event(row: &Bound<'_, PyAny>) -> Result<Event, (String, String)> {
    let row = row.cast::<PyDict>().map_err(|_| (String::new(), "an event must be a dict".to_owned()))?;
    let id = id_of(row, "id")?;
    let fail = |m: String| (id.clone(), m);
    let text = |key: &str| id_of(row, key).map_err(|(_, m)| fail(m));
    let time = match row.get_item("time").ok().flatten() {
        None => f64::NAN,
        Some(t) => t.extract::<f64>().map_err(|_| fail("'time' must be unix seconds (a number)".to_owned()))?,
    };
    let mut properties = Vec::new();
    if let Some(props) = row.get_item("properties").ok().flatten() {
        let props = props.cast::<PyDict>().map_err(|_| fail("'properties' must be a dict".to_owned()))?;
        for (key, item) in props.iter() {
            let key: String = key.extract().map_err(|_| fail("property names must be str".to_owned()))?;
            let v = value(&item).map_err(|m| fail(format!("property '{key}': {m}")))?;
            properties.push((key, v));
        }
    }
    Ok(Event { profile_id: text("profile_id")?, kind: text("type")?, time, properties, id })
}

/// Columns by feature name: numbers with an optional validity mask, and dictionary-coded
/// categories.
pub fn columns(numeric: &Bound<'_, PyDict>, categorical: &Bound<'_, PyDict>) -> PyResult<Vec<(String, Column)>> {
    let mut all = Vec::with_capacity(numeric.len() + categorical.len());
    for (name, item) in numeric.iter() {
        let (values, present): (PyReadonlyArray1<'_, f64>, Option<PyReadonlyArray1<'_, bool>>) = item.extract()?;
        let present = present.map(|p| p.as_array().to_vec());
        all.push((name.extract()?, Column::Numbers { values: values.as_array().to_vec(), present }));
    }
    for (name, item) in categorical.iter() {
        let (names, codes): (Vec<String>, PyReadonlyArray1<'_, i32>) = item.extract()?;
        all.push((name.extract()?, Column::Categories { names, codes: codes.as_array().to_vec() }));
    }
    Ok(all)
}

fn py_value<'py>(py: Python<'py>, value: &Value, whole: bool) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Number(n) if whole => (*n as i64).into_pyobject(py)?.into_any(),
        Value::Number(n) => n.into_pyobject(py)?.into_any(),
        Value::Flag(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Text(t) => PyString::new(py, t).into_any(),
    })
}

/// `{"id", "features": {name: value}, "consents": [...], "purchases": [...]}`.
/// Int features come back as int, float features as float.
pub fn view<'py>(py: Python<'py>, view: &ProfileView, schema: &Schema) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("id", &view.id)?;
    let features = PyDict::new(py);
    for (name, value) in &view.features {
        let whole = schema.index_of(name).is_some_and(|i| schema.features()[i].kind == FeatureKind::Int);
        features.set_item(name, py_value(py, value, whole)?)?;
    }
    dict.set_item("features", features)?;
    dict.set_item("consents", PyList::new(py, &view.consents)?)?;
    dict.set_item("purchases", PyList::new(py, &view.purchases)?)?;
    Ok(dict)
}
