//! Python views of decisions.

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One offer chosen for one slot.
#[pyclass(frozen, get_all, name = "ChosenOffer", module = "decision_engine._core")]
#[derive(Clone)]
pub struct PyChosenOffer {
    pub offer_id: String,
    pub slot: usize,
    /// Sampled response rate x value x weight.
    pub score: f64,
    /// Probability the policy had of choosing this offer for this slot.
    pub propensity: f64,
}

#[pymethods]
impl PyChosenOffer {
    fn __repr__(&self) -> String {
        format!(
            "ChosenOffer(offer_id={:?}, slot={}, score={:.6}, propensity={:.4})",
            self.offer_id, self.slot, self.score, self.propensity
        )
    }
}

#[pyclass(frozen, name = "Decision", module = "decision_engine._core")]
pub struct PyDecision {
    #[pyo3(get)]
    pub decision_id: u64,
    #[pyo3(get)]
    pub placement: String,
    #[pyo3(get)]
    pub offers: Vec<PyChosenOffer>,
    pub reasons: Vec<(String, String)>,
    /// (experiment, group) for every experiment of the placement the profile is in.
    #[pyo3(get)]
    pub experiments: Vec<(String, String)>,
    /// With `explain=True`: the offers the policy chose among, in catalog order.
    #[pyo3(get)]
    pub eligible: Vec<String>,
}

#[pymethods]
impl PyDecision {
    /// With `explain=True`: offer id -> why it was left out, in catalog order.
    #[getter]
    fn reasons<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (offer, reason) in &self.reasons {
            dict.set_item(offer, reason)?;
        }
        Ok(dict)
    }

    /// Chosen offer ids in slot order.
    #[getter]
    fn offer_ids(&self) -> Vec<String> {
        self.offers.iter().map(|o| o.offer_id.clone()).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(decision_id={}, placement={:?}, offers={:?})",
            self.decision_id,
            self.placement,
            self.offer_ids()
        )
    }
}

impl PyDecision {
    pub fn from_core(d: decision_engine_core::Decision) -> Self {
        let offers = d
            .offers
            .into_iter()
            .enumerate()
            .map(|(slot, o)| PyChosenOffer { offer_id: o.offer_id, slot, score: o.score, propensity: o.propensity })
            .collect();
        let reasons = d.reasons.into_iter().map(|(o, r)| (o, r.to_string())).collect();
        Self {
            decision_id: d.decision_id,
            placement: d.placement,
            offers,
            reasons,
            experiments: d.experiments,
            eligible: d.eligible,
        }
    }
}

/// Decisions for a batch of profiles, as numpy arrays (row i is profile i).
#[pyclass(frozen, get_all, name = "BatchDecision", module = "decision_engine._core")]
pub struct PyBatchDecision {
    /// (rows,) uint64.
    pub decision_ids: Py<PyArray1<u64>>,
    /// (rows, slots) int32 catalog offer indices; -1 where a slot stayed empty.
    pub offers: Py<PyArray2<i32>>,
    /// (rows, slots) float32.
    pub scores: Py<PyArray2<f32>>,
    /// (rows, slots) float32, or None when not asked for.
    pub propensities: Option<Py<PyArray2<f32>>>,
    /// With profile ids: (rows, experiments) int32, each row's group index in each of the
    /// catalog's experiments (`Engine.experiments` order), -1 where it is in none.
    pub groups: Option<Py<PyArray2<i32>>>,
}

impl PyBatchDecision {
    pub fn from_core(py: Python<'_>, b: decision_engine_core::BatchDecision) -> PyResult<Self> {
        let shape = (b.rows, b.slots);
        let ids: Vec<u64> = (b.first_id..b.first_id + b.rows as u64).collect();
        Ok(Self {
            decision_ids: ids.into_pyarray(py).unbind(),
            offers: grid(py, shape, b.offers)?,
            scores: grid(py, shape, b.scores)?,
            propensities: b.propensities.map(|p| grid(py, shape, p)).transpose()?,
            groups: if b.groups.is_empty() {
                None
            } else {
                let experiments = b.groups.len() / b.rows.max(1);
                Some(grid(py, (b.rows, experiments), b.groups)?)
            },
        })
    }
}

fn grid<T: numpy::Element>(py: Python<'_>, shape: (usize, usize), values: Vec<T>) -> PyResult<Py<PyArray2<T>>> {
    let array = Array2::from_shape_vec(shape, values).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(array.into_pyarray(py).unbind())
}
