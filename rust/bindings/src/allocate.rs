//! Budget allocation on a plain score matrix, for comparing with exact solvers from Python.

use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::errors::InvalidInputError;

/// Allocates up to `slots` offers per row of `scores` (rows x offers; NaN or <= 0 where an
/// offer is not a candidate) within per-offer `capacity`. `method` is "price" (the engine's
/// allocation) or "greedy" (best score first). Returns rows x slots offer indices, -1 empty.
#[pyfunction]
#[pyo3(signature = (scores, capacity, slots = 1, method = "price"))]
pub fn allocate<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f64>,
    capacity: Vec<u64>,
    slots: usize,
    method: &str,
) -> PyResult<Bound<'py, PyArray2<i32>>> {
    use decision_engine_core::allocate::{Groups, allocate, greedy};
    let scores = scores.as_array();
    if scores.ncols() != capacity.len() {
        return Err(InvalidInputError::new_err(format!(
            "capacity must have {} entries, one per offer",
            scores.ncols()
        )));
    }
    if slots == 0 {
        return Err(InvalidInputError::new_err("slots must be at least 1"));
    }
    let rows: Vec<Vec<(u32, f64)>> = scores
        .rows()
        .into_iter()
        .map(|r| r.iter().enumerate().filter(|(_, s)| **s > 0.0).map(|(j, s)| (j as u32, *s)).collect())
        .collect();
    let chosen = match method {
        "price" => py.detach(|| allocate(&rows, &capacity, slots, &Groups::NONE)),
        "greedy" => py.detach(|| greedy(&rows, &capacity, slots, &Groups::NONE)),
        other => return Err(InvalidInputError::new_err(format!("method must be 'price' or 'greedy', got '{other}'"))),
    };
    let mut out = numpy::ndarray::Array2::from_elem((rows.len(), slots), -1i32);
    for (i, picks) in chosen.iter().enumerate() {
        for (k, &j) in picks.iter().enumerate() {
            out[(i, k)] = j as i32;
        }
    }
    Ok(out.into_pyarray(py))
}
