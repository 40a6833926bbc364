//! Conversions between Python values and the core's inputs, shared by the Engine methods.

use std::collections::HashMap;

use decision_engine_core::engine::{ContactEvent, ContactKind, Loaded};
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

use crate::errors::{InvalidInputError, UnknownDecisionError};

pub(crate) fn now_or(now: Option<f64>) -> f64 {
    now.unwrap_or_else(decision_engine_core::limits::wall_seconds)
}

/// An owned copy of a large input, copied on all cores (the copy lets the work run without
/// the GIL while other Python threads may write the caller's array).
pub(crate) fn owned(values: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let mut copy = vec![0.0; values.len()];
    copy.par_chunks_mut(1 << 16).zip(values.par_chunks(1 << 16)).for_each(|(to, from)| to.copy_from_slice(from));
    copy
}

pub(crate) fn contiguous<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    array: &'a numpy::PyReadonlyArray<'_, T, D>,
    what: &str,
) -> PyResult<&'a [T]> {
    array.as_slice().map_err(|_| InvalidInputError::new_err(format!("{what} must be a C-contiguous array")))
}

/// Batch features must be rows of exactly the catalog's features: never silently re-cut.
pub(crate) fn check_features(array: &PyReadonlyArray2<'_, f32>, expected: usize) -> PyResult<()> {
    match array.as_array().ncols() {
        columns if columns == expected => Ok(()),
        columns => Err(InvalidInputError::new_err(format!("expected {expected} features per row, got {columns}"))),
    }
}

/// Consents must be one row per profile and one column per channel.
pub(crate) fn check_consents(array: &PyReadonlyArray2<'_, bool>, rows: usize, channels: usize) -> PyResult<()> {
    let (r, c) = array.as_array().dim();
    if (r, c) == (rows, channels) {
        Ok(())
    } else {
        Err(InvalidInputError::new_err(format!(
            "consents must be {rows} x {channels} (rows x channels), got {r} x {c}"
        )))
    }
}

/// A batch's features and consents as the core takes them: checked against the catalog and
/// copied (another Python thread may write the arrays while the batch runs detached).
pub(crate) fn batch_arrays(
    loaded: &Loaded,
    features: &PyReadonlyArray2<'_, f32>,
    consents: Option<&PyReadonlyArray2<'_, bool>>,
) -> PyResult<(Vec<f32>, Option<Vec<u8>>)> {
    check_features(features, loaded.catalog.schema.len())?;
    let rows = features.as_array().nrows();
    let features = owned(contiguous(features, "features")?);
    let consents = match consents {
        Some(c) => {
            check_consents(c, rows, loaded.catalog.channels.len())?;
            Some(contiguous(c, "consents")?.iter().map(|&b| u8::from(b)).collect())
        }
        None => None,
    };
    Ok((features, consents))
}

/// Values given by offer id, one per catalog offer (`missing` for offers not named).
pub(crate) fn by_offer<T: Copy>(
    loaded: &Loaded,
    by_id: HashMap<String, T>,
    missing: T,
    what: &str,
) -> PyResult<Vec<T>> {
    let offers = &loaded.catalog.offers;
    let mut values = vec![missing; offers.len()];
    for (id, value) in by_id {
        let Some(o) = offers.iter().position(|offer| offer.id == id) else {
            return Err(InvalidInputError::new_err(format!("{what}: unknown offer '{id}'")));
        };
        values[o] = value;
    }
    Ok(values)
}

/// Runs heavy work without the GIL, with its own rayon pool when `threads` is given.
pub(crate) fn run_detached<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    match threads {
        None => Ok(py.detach(work)),
        Some(0) => Err(InvalidInputError::new_err("threads must be at least 1")),
        Some(n) => {
            let pool = pool_of(n)?;
            Ok(py.detach(|| pool.install(work)))
        }
    }
}

/// One rayon pool per thread count, built on first use: building a pool per call would
/// cost more than a small batch.
fn pool_of(threads: usize) -> PyResult<std::sync::Arc<rayon::ThreadPool>> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};
    static POOLS: OnceLock<Mutex<BTreeMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pool) = pools.get(&threads) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| InvalidInputError::new_err(format!("cannot start {threads} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(threads, Arc::clone(&pool));
    Ok(pool)
}

/// (placement, chosen offer ids) per decision.
pub(crate) type DecisionSummary = Vec<(String, Vec<String>)>;

/// A contact as Python passes it: (offer_id, channel, time, kind, group, decision_id); the
/// contacts of one decision (same non-zero id) count as one message for channel caps.
pub(crate) type HistoryItem = (String, String, f64, String, Option<String>, u64);

pub(crate) fn kind_name(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Shown => "shown",
        ContactKind::Converted => "converted",
        ContactKind::Dismissed => "dismissed",
    }
}

pub(crate) fn contact_event((offer, channel, time, kind, group, decision_id): HistoryItem) -> PyResult<ContactEvent> {
    let kind = match kind.as_str() {
        "shown" => ContactKind::Shown,
        "converted" => ContactKind::Converted,
        "dismissed" => ContactKind::Dismissed,
        other => {
            return Err(InvalidInputError::new_err(format!(
                "contact kind must be shown, converted or dismissed, got '{other}'"
            )));
        }
    };
    if !time.is_finite() {
        return Err(InvalidInputError::new_err(format!("contact time must be a finite number, got {time}")));
    }
    Ok(ContactEvent {
        time,
        offer: offer.into(),
        channel: channel.into(),
        group: group.map(Into::into),
        kind,
        decision_id,
    })
}

/// Ids are u64; any other integer cannot name a decision.
pub(crate) fn decision_id_of(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    value.extract().map_err(|_| UnknownDecisionError::new_err(format!("unknown decision id {value}")))
}
