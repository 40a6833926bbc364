//! `Bandit`: one policy over numbered arms, driven with numpy arrays.

use std::sync::{Mutex, PoisonError};

use decision_engine_core::bandit::Bandit;
use decision_engine_core::error::io_error;
use decision_engine_core::policy::PolicyConfig;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::run_detached;
use crate::errors::{InvalidInputError, to_py};

/// (choices, propensities) of a selection.
type Selected<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f64>>);

#[pyclass(frozen, name = "Bandit", module = "decision_engine._core")]
pub struct PyBandit {
    inner: Mutex<Bandit>,
}

/// A `rows x columns` float32 C-contiguous copy of any 2-d array-like (float64 included).
fn matrix(py: Python<'_>, x: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<f32>, usize, usize)> {
    // The common case, a C-contiguous float32 array, is read without calling numpy.
    if let Ok(array) = x.extract::<PyReadonlyArray2<'_, f32>>()
        && let Ok(values) = array.as_slice()
    {
        let (rows, columns) = array.as_array().dim();
        return Ok((values.to_vec(), rows, columns));
    }
    let numpy = py.import("numpy")?;
    let array = numpy.call_method1("ascontiguousarray", (x, numpy.getattr("float32")?))?;
    let array: PyReadonlyArray2<'_, f32> = array
        .extract()
        .map_err(|_| InvalidInputError::new_err(format!("{what} must be a 2-d array (rows x features)")))?;
    let (rows, columns) = array.as_array().dim();
    Ok((array.as_slice()?.to_vec(), rows, columns))
}

fn mask(eligible: Option<PyReadonlyArray2<'_, bool>>) -> PyResult<Option<Vec<bool>>> {
    eligible.map(|m| Ok(m.as_array().iter().copied().collect())).transpose()
}

impl PyBandit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Bandit> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyBandit {
    /// `policy` is a mapping with a `type` and its parameters (as under `policy:` in a
    /// catalog); `seed` fixes every random draw.
    #[new]
    #[pyo3(signature = (policy, n_arms, n_features = 0, seed = 0))]
    fn new(py: Python<'_>, policy: &Bound<'_, PyDict>, n_arms: usize, n_features: usize, seed: u64) -> PyResult<Self> {
        let json: String = py.import("json")?.call_method1("dumps", (policy,))?.extract()?;
        let config: PolicyConfig =
            serde_json::from_str(&json).map_err(|e| InvalidInputError::new_err(format!("policy: {e}")))?;
        let bandit = Bandit::new(config, n_arms, n_features, seed).map_err(to_py)?;
        Ok(Self { inner: Mutex::new(bandit) })
    }

    #[getter]
    fn n_arms(&self) -> usize {
        self.lock().n_arms()
    }

    #[getter]
    fn n_features(&self) -> usize {
        self.lock().n_features()
    }

    /// The policy with every default filled in.
    #[getter]
    fn policy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let json = serde_json::to_string(&self.lock().model().config).expect("policy serializes");
        py.import("json")?.call_method1("loads", (json,))
    }

    /// (choices, propensities), both `rows x slots`; -1 and NaN where a slot stayed empty.
    #[pyo3(signature = (x, slots = 1, eligible = None, threads = None))]
    fn select<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        slots: usize,
        eligible: Option<PyReadonlyArray2<'py, bool>>,
        threads: Option<usize>,
    ) -> PyResult<Selected<'py>> {
        let (values, rows, width) = matrix(py, x, "x")?;
        let eligible = mask(eligible)?;
        let selection =
            run_detached(py, threads, || self.lock().select(&values, (rows, width), eligible.as_deref(), slots, true))?
                .map_err(to_py)?;
        let choices = selection.choices.into_pyarray(py).reshape([rows, slots])?;
        let propensities = selection.propensities.into_pyarray(py).reshape([rows, slots])?;
        Ok((choices, propensities))
    }

    /// `rows x arms`: the first slot's choice probability of every arm in every context.
    #[pyo3(signature = (x, eligible = None))]
    fn action_probabilities<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        eligible: Option<PyReadonlyArray2<'py, bool>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (values, rows, width) = matrix(py, x, "x")?;
        let eligible = mask(eligible)?;
        let arms = self.lock().n_arms();
        let probabilities = py
            .detach(|| self.lock().action_probabilities(&values, (rows, width), eligible.as_deref()))
            .map_err(to_py)?;
        probabilities.into_pyarray(py).reshape([rows, arms])
    }

    /// Learns `rewards[i]` of `arms[i]` in context `x[i]`, in row order.
    fn update(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        arms: PyReadonlyArray1<'_, i64>,
        rewards: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let (values, rows, width) = matrix(py, x, "x")?;
        let arms = arms.as_array().to_vec();
        let rewards = rewards.as_array().to_vec();
        py.detach(|| self.lock().update(&values, (rows, width), &arms, &rewards)).map_err(to_py)
    }

    /// Per arm: pulls, mean reward and uncertainty (posterior sd, UCB bonus, or a linear
    /// arm's width at the average context it saw).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self.lock().state();
        let column = |f: fn(&(f64, f64, f64)) -> f64| -> Bound<'py, PyArray1<f64>> {
            state.iter().map(f).collect::<Vec<_>>().into_pyarray(py)
        };
        let dict = PyDict::new(py);
        dict.set_item("pulls", column(|s| s.0))?;
        dict.set_item("mean_reward", column(|s| s.1))?;
        dict.set_item("uncertainty", column(|s| s.2))?;
        Ok(dict)
    }

    /// The whole state as versioned JSON.
    fn to_json(&self) -> String {
        self.lock().to_json()
    }

    #[staticmethod]
    fn from_json(json: &str) -> PyResult<Self> {
        Ok(Self { inner: Mutex::new(Bandit::from_json(json).map_err(to_py)?) })
    }

    fn save(&self, path: std::path::PathBuf) -> PyResult<()> {
        let json = self.to_json();
        // Write then rename, so a crash never leaves half a file under the name.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| to_py(io_error(&path, "cannot write bandit file", e)))
    }

    #[staticmethod]
    fn load(path: std::path::PathBuf) -> PyResult<Self> {
        let json = std::fs::read_to_string(&path).map_err(|e| to_py(io_error(&path, "cannot read bandit file", e)))?;
        Self::from_json(&json).map_err(|e| {
            Python::attach(|py| InvalidInputError::new_err(format!("{}: {}", path.display(), e.value(py))))
        })
    }

    fn __repr__(&self) -> String {
        let b = self.lock();
        format!("Bandit({}, n_arms={}, n_features={})", b.model().config.name(), b.n_arms(), b.n_features())
    }
}
