//! Experiment bucketing, the core's, for Python's offline assignment and reports.

use decision_engine_core::experiment;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

/// The profile's bucket in basis points, [0, 10_000): xxh3_64(salt + "\x1f" + id) mod 10_000.
#[pyfunction]
pub fn bucket(salt: &str, profile_id: &str) -> u32 {
    experiment::bucket(salt, profile_id)
}

/// `bucket` for many profiles at once, as an int64 array.
#[pyfunction]
pub fn buckets<'py>(py: Python<'py>, salt: &str, profile_ids: Vec<String>) -> Bound<'py, PyArray1<i64>> {
    let out: Vec<i64> = py.detach(|| profile_ids.iter().map(|id| i64::from(experiment::bucket(salt, id))).collect());
    out.into_pyarray(py)
}

/// A share of traffic in basis points; `ValueError` unless it is in (0, 1] in steps of 0.0001.
#[pyfunction]
pub fn share_basis_points(share: f64) -> PyResult<u32> {
    experiment::share_basis_points(share).map_err(pyo3::exceptions::PyValueError::new_err)
}

/// The basis points of an experiment's groups; `ValueError` unless their shares sum to 1.
#[pyfunction]
pub fn group_basis_points(shares: Vec<f64>) -> PyResult<Vec<u32>> {
    experiment::group_basis_points(&shares).map_err(pyo3::exceptions::PyValueError::new_err)
}

/// The group index of each profile in an experiment of `salt` whose groups own buckets below
/// `uppers` (running sums of basis points), or -1 past the last (the layer is not checked).
#[pyfunction]
pub fn group_indices<'py>(
    py: Python<'py>,
    salt: &str,
    uppers: Vec<u32>,
    profile_ids: Vec<String>,
) -> Bound<'py, PyArray1<i64>> {
    let out: Vec<i64> = py.detach(|| {
        let index = |id: &String| experiment::group_of_bucket(uppers.iter().copied(), experiment::bucket(salt, id));
        profile_ids.iter().map(|id| index(id).map_or(-1, |g| g as i64)).collect()
    });
    out.into_pyarray(py)
}
