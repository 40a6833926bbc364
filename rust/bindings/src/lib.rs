//! PyO3 binding of the decision engine core: converts types, releases the GIL around the
//! work, maps errors. No decision logic lives here.

mod allocate;
mod bandit;
mod convert;
mod decision;
mod errors;
mod experiment;
mod policy;
mod profiles;
mod request;
mod rules;
mod triggers;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use decision_engine_core::engine::WriteReport;
use decision_engine_core::engine::{DEFAULT_ATTRIBUTION_WINDOW, DEFAULT_MAX_PENDING, spawn_sync};
use decision_engine_core::limits::{self, Clock};
use decision_engine_core::store::durable::{DurableOptions, Fsync, RecoveryReport};
use decision_engine_core::{BatchRequest, Catalog, Engine};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use convert::{
    DecisionSummary, HistoryItem, batch_arrays, by_offer, check_features, contiguous, decision_id_of, kind_name,
    now_or, owned, run_detached,
};
use decision::{PyBatchDecision, PyDecision};
use errors::{InvalidInputError, to_py};
use request::PyDecideOptions;

/// One arm of `policy_state`: (offer_id, alpha, beta, mean, pulls, uncertainty).
type ArmRow = (String, f64, f64, f64, f64, f64);

/// The engine over one compiled catalog. Thread-safe: share one instance.
#[pyclass(frozen, name = "Engine", module = "decision_engine._core")]
struct PyEngine {
    inner: Arc<Engine>,
    /// What opening the state directory recovered, when the engine has one.
    recovery: Option<RecoveryReport>,
}

impl PyEngine {
    /// The shared body of decide and decide_page.
    fn page(
        &self,
        py: Python<'_>,
        placements: &[String],
        features: PyReadonlyArray1<'_, f32>,
        options: Option<&PyDecideOptions>,
    ) -> PyResult<Vec<PyDecision>> {
        let features = contiguous(&features, "features")?.to_vec();
        let none = PyDecideOptions::default();
        let options = options.unwrap_or(&none);
        let decisions =
            py.detach(|| options.with_request(placements, &features, |request| self.inner.decide_page(request)))?;
        Ok(decisions.map_err(to_py)?.into_iter().map(PyDecision::from_core).collect())
    }
}

#[pymethods]
impl PyEngine {
    /// Compiles a catalog given as validated JSON (see `decision_engine.catalog`).
    #[new]
    /// With `state_dir`, state is journaled there and recovered from it on start (the
    /// embedded store); `fsync` is "always", "interval" (every `fsync_interval_ms`) or "never".
    #[pyo3(signature = (catalog_json, seed = 0, max_pending = DEFAULT_MAX_PENDING, state_dir = None,
                        fsync = "interval", fsync_interval_ms = 100, snapshot_every = 100_000,
                        attribution_window = DEFAULT_ATTRIBUTION_WINDOW, clock = "wall", max_clock_skew = None,
                        profile_store = None, profile_prefix = "de", shared_store = None,
                        shared_prefix = "decision-engine", shared_timeout_ms = 50))]
    #[expect(clippy::too_many_arguments, reason = "one per Python keyword argument")]
    fn new(
        py: Python<'_>,
        catalog_json: &str,
        seed: u64,
        max_pending: usize,
        state_dir: Option<std::path::PathBuf>,
        fsync: &str,
        fsync_interval_ms: u64,
        snapshot_every: u64,
        attribution_window: f64,
        clock: &str,
        max_clock_skew: Option<f64>,
        profile_store: Option<String>,
        profile_prefix: &str,
        shared_store: Option<String>,
        shared_prefix: &str,
        shared_timeout_ms: u64,
    ) -> PyResult<Self> {
        let clock = Clock::parse(clock, max_clock_skew).map_err(to_py)?;
        let catalog = py.detach(|| Catalog::from_json(catalog_json)).map_err(to_py)?;
        if !(attribution_window.is_finite() && attribution_window > 0.0) {
            return Err(InvalidInputError::new_err(format!(
                "attribution_window must be > 0, got {attribution_window}"
            )));
        }
        let Some(dir) = state_dir else {
            let mut engine = Engine::with_max_pending(catalog, seed, max_pending);
            engine.set_attribution_window(attribution_window);
            engine.set_clock(clock);
            if let Some(url) = &shared_store {
                let timeout = std::time::Duration::from_millis(shared_timeout_ms.max(1));
                py.detach(|| engine.use_redis_store(url, shared_prefix, timeout)).map_err(to_py)?;
            } else if let Some(url) = &profile_store {
                py.detach(|| engine.use_redis_profiles(url, profile_prefix)).map_err(to_py)?;
            }
            let inner = Arc::new(engine);
            // Learning from the other servers, the replay after an outage, the probes.
            spawn_sync(&inner);
            return Ok(Self { inner, recovery: None });
        };
        if shared_store.is_some() {
            return Err(InvalidInputError::new_err(
                "an engine keeps its state either in a directory (the embedded store) or in Redis, not both",
            ));
        }
        let fsync = match fsync {
            "always" => Fsync::Always,
            "interval" => Fsync::Interval(std::time::Duration::from_millis(fsync_interval_ms.max(1))),
            "never" => Fsync::Never,
            other => {
                return Err(InvalidInputError::new_err(format!(
                    "fsync must be 'always', 'interval' or 'never', got '{other}'"
                )));
            }
        };
        let options = DurableOptions { dir, fsync, snapshot_every: snapshot_every.max(1) };
        let (mut engine, report) = py.detach(|| Engine::open(catalog, seed, max_pending, options)).map_err(to_py)?;
        engine.set_attribution_window(attribution_window);
        engine.set_clock(clock);
        if let Some(url) = &profile_store {
            py.detach(|| engine.use_redis_profiles(url, profile_prefix)).map_err(to_py)?;
        }
        Ok(Self { inner: Arc::new(engine), recovery: Some(report) })
    }

    /// What recovery found when the engine opened its state directory (None without one):
    /// snapshot_loaded, generation, replayed, skipped, discarded_bytes, warning.
    #[getter]
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, pyo3::types::PyDict>>> {
        let Some(r) = &self.recovery else { return Ok(None) };
        let dict = pyo3::types::PyDict::new(py);
        dict.set_item("snapshot_loaded", r.snapshot_loaded)?;
        dict.set_item("generation", r.generation)?;
        dict.set_item("replayed", r.replayed)?;
        dict.set_item("skipped", r.skipped)?;
        dict.set_item("discarded_bytes", r.discarded_bytes)?;
        dict.set_item("warning", r.warning.clone())?;
        Ok(Some(dict))
    }

    /// Writes a snapshot of the whole state now and starts a fresh journal (no-op without a
    /// state directory).
    fn snapshot(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.snapshot()).map_err(to_py)
    }

    /// Compiles a new catalog and swaps it in atomically, keeping learned state for unchanged
    /// (placement, offer) ids. An invalid catalog raises and leaves the current one in place.
    fn replace_catalog(&self, py: Python<'_>, catalog_json: &str) -> PyResult<()> {
        let catalog = py.detach(|| Catalog::from_json(catalog_json)).map_err(to_py)?;
        py.detach(|| self.inner.replace_catalog(catalog)).map_err(to_py)?;
        Ok(())
    }

    /// Decides one placement for a profile's feature vector; `options` as built by
    /// `DecideOptions` (none: no consents, the server clock, no contact history).
    #[pyo3(signature = (placement, features, options = None))]
    fn decide(
        &self,
        py: Python<'_>,
        placement: String,
        features: PyReadonlyArray1<'_, f32>,
        options: Option<Bound<'_, PyDecideOptions>>,
    ) -> PyResult<PyDecision> {
        let mut decisions = self.page(py, &[placement], features, options.as_ref().map(Bound::get))?;
        Ok(decisions.remove(0))
    }

    /// Decides several placements of one page together: no offer twice on the page, group
    /// limits and caps across it. One decision per placement, in order.
    #[pyo3(signature = (placements, features, options = None))]
    fn decide_page(
        &self,
        py: Python<'_>,
        placements: Vec<String>,
        features: PyReadonlyArray1<'_, f32>,
        options: Option<Bound<'_, PyDecideOptions>>,
    ) -> PyResult<Vec<PyDecision>> {
        self.page(py, &placements, features, options.as_ref().map(Bound::get))
    }

    /// Writes profiles given as dicts (`id`, feature names, `consents`, `revoked_consents`,
    /// `purchases`); a bad row is rejected whole and reported, the others are written.
    #[pyo3(signature = (rows, now = None))]
    fn upsert_profiles(
        &self,
        py: Python<'_>,
        rows: Vec<Bound<'_, PyAny>>,
        now: Option<f64>,
    ) -> PyResult<profiles::PyWriteReport> {
        let rows: Vec<_> = rows.iter().map(profiles::profile_write).collect();
        let report = py.detach(|| WriteReport::with_unreadable(rows, |rows| self.inner.upsert_profiles(rows, now)));
        report.map(Into::into).map_err(to_py)
    }

    /// Writes profiles from columns: `numeric` maps a feature to (float64 values, validity
    /// mask or None), `categorical` to (value names, int32 codes, -1 for none).
    #[pyo3(signature = (ids, numeric, categorical, now = None))]
    fn upsert_columns(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        numeric: Bound<'_, pyo3::types::PyDict>,
        categorical: Bound<'_, pyo3::types::PyDict>,
        now: Option<f64>,
    ) -> PyResult<profiles::PyWriteReport> {
        let columns = profiles::columns(&numeric, &categorical)?;
        py.detach(|| self.inner.upsert_columns(&ids, &columns, now)).map(Into::into).map_err(to_py)
    }

    /// Applies events (dicts: `id`, `profile_id`, `type`, `time`, `properties`).
    fn track(&self, py: Python<'_>, events: Vec<Bound<'_, PyAny>>) -> PyResult<profiles::PyWriteReport> {
        let events: Vec<_> = events.iter().map(profiles::event).collect();
        let report = py.detach(|| WriteReport::with_unreadable(events, |events| self.inner.track(events)));
        report.map(Into::into).map_err(to_py)
    }

    /// The stored profile (computed attributes at `now`), or None.
    #[pyo3(signature = (profile_id, now = None))]
    fn profile<'py>(
        &self,
        py: Python<'py>,
        profile_id: &str,
        now: Option<f64>,
    ) -> PyResult<Option<Bound<'py, pyo3::types::PyDict>>> {
        let view = py.detach(|| self.inner.profile(profile_id, now)).map_err(to_py)?;
        view.map(|v| profiles::view(py, &v, &self.inner.current().catalog.schema)).transpose()
    }

    /// Erases a profile, its history and pending decisions; True if anything was held.
    fn delete_profile(&self, py: Python<'_>, profile_id: &str) -> PyResult<bool> {
        py.detach(|| self.inner.delete_profile(profile_id)).map_err(to_py)
    }

    /// Profiles held by the embedded store (None when profiles are in Redis).
    fn profile_count(&self) -> Option<usize> {
        self.inner.profile_count()
    }

    /// Decides by customer id on the stored profile, with `context` features over it.
    #[pyo3(signature = (placements, options))]
    fn decide_stored(
        &self,
        py: Python<'_>,
        placements: Vec<String>,
        options: Bound<'_, PyDecideOptions>,
    ) -> PyResult<Vec<PyDecision>> {
        let options = options.get();
        let decisions =
            py.detach(|| options.with_stored_request(&placements, |request| self.inner.decide_stored(request)))?;
        Ok(decisions.map_err(to_py)?.into_iter().map(PyDecision::from_core).collect())
    }

    /// Fires the trigger instances due at `now` (the server clock when None) and releases
    /// deliveries past their time to live; returns how many instances fired.
    #[pyo3(signature = (now = None))]
    fn fire_due(&self, py: Python<'_>, now: Option<f64>) -> PyResult<usize> {
        py.detach(|| self.inner.fire_due(now)).map_err(to_py)
    }

    /// Triggered decisions ready to send on `channel`; each is in flight for `visibility`
    /// seconds, then delivered again unless acknowledged.
    #[pyo3(signature = (channel, max = limits::DEFAULT_IN_FLIGHT, visibility = limits::DEFAULT_VISIBILITY, now = None))]
    fn poll_deliveries<'py>(
        &self,
        py: Python<'py>,
        channel: &str,
        max: usize,
        visibility: f64,
        now: Option<f64>,
    ) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        let deliveries = py.detach(|| self.inner.poll_deliveries(channel, max, visibility, now)).map_err(to_py)?;
        deliveries.iter().map(|d| triggers::delivery(py, d)).collect()
    }

    /// Acknowledges delivered decisions; returns how many were waiting.
    fn ack_deliveries(&self, py: Python<'_>, decision_ids: Vec<u64>) -> PyResult<usize> {
        py.detach(|| self.inner.ack_deliveries(&decision_ids)).map_err(to_py)
    }

    /// What became of a profile's trigger instances, oldest first.
    fn trigger_history<'py>(
        &self,
        py: Python<'py>,
        profile_id: &str,
    ) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        let entries = py.detach(|| self.inner.trigger_history(profile_id)).map_err(to_py)?;
        entries.iter().map(|e| triggers::history_entry(py, e)).collect()
    }

    /// Instances waiting to fire (on a shared store, every server's).
    fn pending_timers(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.inner.pending_timers()).map_err(to_py)
    }

    /// Triggered decisions waiting for their acknowledgement.
    fn pending_deliveries(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.inner.pending_deliveries()).map_err(to_py)
    }

    /// ProfileService on wire bytes: `UpsertProfilesRequest` in, `WriteResponse` out.
    fn upsert_profiles_wire<'py>(&self, py: Python<'py>, request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let response = py.detach(|| wire::upsert_profiles(&self.inner, request)).map_err(to_py)?;
        Ok(PyBytes::new(py, &response))
    }

    /// `TrackEventsRequest` in, `WriteResponse` out.
    fn track_events_wire<'py>(&self, py: Python<'py>, request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let response = py.detach(|| wire::track_events(&self.inner, request)).map_err(to_py)?;
        Ok(PyBytes::new(py, &response))
    }

    /// `GetProfileRequest` in, `StoredProfile` out; UnknownProfileError when not held.
    fn get_profile_wire<'py>(&self, py: Python<'py>, request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let response = py.detach(|| wire::get_profile(&self.inner, request)).map_err(to_py)?;
        Ok(PyBytes::new(py, &response))
    }

    /// `DeleteProfileRequest` in, `DeleteProfileResponse` out.
    fn delete_profile_wire<'py>(&self, py: Python<'py>, request: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let response = py.detach(|| wire::delete_profile(&self.inner, request)).map_err(to_py)?;
        Ok(PyBytes::new(py, &response))
    }

    /// The Decide RPC on wire bytes: a serialized `DecideRequest` in, a serialized
    /// `DecideResponse` out (decision ids OR-ed with `id_tag`), plus (placement, offer ids)
    /// per decision for the server's metrics.
    #[pyo3(signature = (request, id_tag = 0))]
    fn decide_wire<'py>(
        &self,
        py: Python<'py>,
        request: &[u8],
        id_tag: u64,
    ) -> PyResult<(Bound<'py, pyo3::types::PyBytes>, DecisionSummary)> {
        let (bytes, decisions) = py.detach(|| wire::decide(&self.inner, request, id_tag)).map_err(to_py)?;
        let summary =
            decisions.into_iter().map(|d| (d.placement, d.offers.into_iter().map(|o| o.offer_id).collect())).collect();
        Ok((pyo3::types::PyBytes::new(py, &bytes), summary))
    }

    /// Withdraws a decision that was not shown: its cap reservations and budget units are
    /// given back, and it takes no outcome.
    fn release(&self, py: Python<'_>, decision_id: &Bound<'_, PyAny>) -> PyResult<()> {
        let decision_id = decision_id_of(decision_id)?;
        py.detach(|| self.inner.release(decision_id)).map_err(to_py)
    }

    /// A profile's stored contacts, oldest first: (offer_id, channel, time, kind, group,
    /// decision_id).
    fn contact_history(&self, py: Python<'_>, profile_id: &str) -> PyResult<Vec<HistoryItem>> {
        let history = py.detach(|| self.inner.stored_history(profile_id)).map_err(to_py)?;
        Ok(history
            .into_iter()
            .map(|e| {
                (
                    e.offer.to_string(),
                    e.channel.to_string(),
                    e.time,
                    kind_name(e.kind).to_owned(),
                    e.group.map(|g| g.to_string()),
                    e.decision_id,
                )
            })
            .collect())
    }

    /// How the Redis store is doing (None for an engine keeping its state itself): healthy,
    /// server, buffered, dropped, learned, snapshots, lost_cooldowns.
    fn store_health<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, pyo3::types::PyDict>>> {
        let Some(h) = self.inner.store_health() else { return Ok(None) };
        let d = pyo3::types::PyDict::new(py);
        d.set_item("healthy", h.healthy)?;
        d.set_item("server", h.server)?;
        d.set_item("buffered", h.buffered)?;
        d.set_item("dropped", h.dropped)?;
        d.set_item("learned", h.learned)?;
        d.set_item("snapshots", h.snapshots)?;
        d.set_item("lost_cooldowns", h.lost_cooldowns)?;
        Ok(Some(d))
    }

    /// One round of the Redis store's background work now (it also runs every 10 ms on its
    /// own thread): the outcomes learned from the shared stream.
    fn sync_store(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.inner.sync_shared()).map_err(to_py)
    }

    /// Stops the Redis store's background work after a last policy snapshot.
    fn close_store(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.close_shared()).map_err(to_py)
    }

    /// A profile given by feature name (numbers, bools, category value names; None counts
    /// as absent) laid out as the catalog's feature vector. Every feature must be given.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        profile: &Bound<'py, pyo3::types::PyDict>,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f32>>> {
        let given = profiles::named_values(profile, "feature")?;
        let values = given.iter().map(|(name, value)| (name.as_str(), value.named()));
        let row = self.inner.current().catalog.schema.encode_named(values).map_err(to_py)?;
        Ok(row.into_pyarray(py))
    }

    /// (used, allowed now) of an offer's volume budget, or None without a budget.
    #[pyo3(signature = (offer_id, now = None))]
    fn budget_usage(&self, offer_id: &str, now: Option<f64>) -> PyResult<Option<(u64, u64)>> {
        self.inner.budget_usage(offer_id, now_or(now)).map_err(to_py)
    }

    /// Decides for every row of `features` (rows x features, float32). `consents` is a
    /// rows x channels bool array; without it no profile has any consent. Without
    /// `propensities` the result has none, and the batch runs faster.
    #[pyo3(signature = (placement, features, consents = None, now = None, threads = None, propensities = true,
                        profile_ids = None, allocate_budgets = false, stream = None, prices = None, quota = None,
                        contact_history = true))]
    #[expect(clippy::too_many_arguments, reason = "one per Python keyword argument")]
    fn decide_batch(
        &self,
        py: Python<'_>,
        placement: &str,
        features: PyReadonlyArray2<'_, f32>,
        consents: Option<PyReadonlyArray2<'_, bool>>,
        now: Option<f64>,
        threads: Option<usize>,
        propensities: bool,
        profile_ids: Option<Vec<String>>,
        allocate_budgets: bool,
        stream: Option<u64>,
        prices: Option<HashMap<String, f64>>,
        quota: Option<HashMap<String, u64>>,
        contact_history: bool,
    ) -> PyResult<PyBatchDecision> {
        let loaded = self.inner.current();
        let (features, consents) = batch_arrays(&loaded, &features, consents.as_ref())?;
        let ids: Option<Vec<&str>> = profile_ids.as_ref().map(|v| v.iter().map(String::as_str).collect());
        let prices = prices.map(|by_id| by_offer(&loaded, by_id, 0.0, "prices")).transpose()?;
        let quota = quota.map(|by_id| by_offer(&loaded, by_id, u64::MAX, "quota")).transpose()?;
        let request = BatchRequest {
            placement,
            features: &features,
            consents: consents.as_deref(),
            now: now_or(now),
            propensities,
            profile_ids: ids.as_deref(),
            without_history: !contact_history,
            stream,
            prices: prices.as_deref(),
            quota: quota.as_deref(),
        };
        let decide = || {
            if allocate_budgets { self.inner.allocate_batch(&request) } else { self.inner.decide_batch(&request) }
        };
        let batch = run_detached(py, threads, decide)?.map_err(to_py)?;
        PyBatchDecision::from_core(py, batch)
    }

    /// A campaign's budget prices from a sample of its profiles (`features`, `consents`) out
    /// of `total_rows`: (offer_id, price, remaining volume) per offer of the placement with
    /// an impression budget. `decide_batch(..., prices=)` takes them by offer id.
    #[pyo3(signature = (placement, features, total_rows, consents = None, now = None, threads = None))]
    #[expect(clippy::too_many_arguments, reason = "one per Python keyword argument")]
    fn budget_prices(
        &self,
        py: Python<'_>,
        placement: &str,
        features: PyReadonlyArray2<'_, f32>,
        total_rows: u64,
        consents: Option<PyReadonlyArray2<'_, bool>>,
        now: Option<f64>,
        threads: Option<usize>,
    ) -> PyResult<Vec<(String, f64, u64)>> {
        let loaded = self.inner.current();
        let (features, consents) = batch_arrays(&loaded, &features, consents.as_ref())?;
        let request = BatchRequest {
            placement,
            features: &features,
            consents: consents.as_deref(),
            now: now_or(now),
            ..BatchRequest::default()
        };
        let priced = run_detached(py, threads, || self.inner.budget_prices(&request, total_rows))?.map_err(to_py)?;
        let offers = &loaded.catalog.offers;
        Ok(priced.into_iter().map(|b| (offers[b.offer].id.clone(), b.price, b.room)).collect())
    }

    /// Every offer's rule over a batch: rows x offers uint8 (0/1), rules only.
    #[pyo3(signature = (features, threads = None))]
    fn evaluate_rules<'py>(
        &self,
        py: Python<'py>,
        features: PyReadonlyArray2<'py, f32>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<u8>>> {
        let loaded = self.inner.current();
        check_features(&features, loaded.catalog.schema.len())?;
        let rows = features.as_array().nrows();
        let features = owned(contiguous(&features, "features")?);
        let offers = loaded.catalog.offers.len();
        let out = run_detached(py, threads, || self.inner.evaluate_rules(&features))?.map_err(to_py)?;
        let grid = numpy::ndarray::Array2::from_shape_vec((rows, offers), out)
            .map_err(|e| InvalidInputError::new_err(e.to_string()))?;
        Ok(grid.into_pyarray(py))
    }

    /// Reports a reward in [0, 1] for a decision; name the offer when it showed several.
    #[pyo3(signature = (decision_id, reward, offer_id = None, dismissed = false))]
    fn report_outcome(
        &self,
        py: Python<'_>,
        decision_id: &Bound<'_, PyAny>,
        reward: f64,
        offer_id: Option<&str>,
        dismissed: bool,
    ) -> PyResult<()> {
        let decision_id = decision_id_of(decision_id)?;
        py.detach(|| self.inner.report_outcome(decision_id, offer_id, reward, dismissed)).map_err(to_py)
    }

    /// Per offer of a placement: (offer_id, alpha, beta, mean, pulls, uncertainty).
    fn policy_state(&self, placement: &str) -> PyResult<Vec<ArmRow>> {
        let arms = self.inner.policy_state(placement).map_err(to_py)?;
        Ok(arms.into_iter().map(|a| (a.offer_id, a.alpha, a.beta, a.mean, a.pulls, a.uncertainty)).collect())
    }

    /// Everything the placements' policies learned, as versioned JSON.
    fn save_policy_state(&self, py: Python<'_>) -> String {
        py.detach(|| self.inner.save_policy_state())
    }

    /// Loads a saved policy state: (arms loaded, arms skipped because the catalog changed).
    fn load_policy_state(&self, py: Python<'_>, json: &str) -> PyResult<(usize, usize)> {
        let report = py.detach(|| self.inner.load_policy_state(json)).map_err(to_py)?;
        Ok((report.loaded, report.skipped))
    }

    #[getter]
    fn pending_decisions(&self) -> usize {
        self.inner.pending_decisions()
    }

    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.inner.current().catalog.schema.features().iter().map(|f| f.name.clone()).collect()
    }

    #[getter]
    fn offer_ids(&self) -> Vec<String> {
        self.inner.current().catalog.offers.iter().map(|o| o.id.clone()).collect()
    }

    #[getter]
    fn channels(&self) -> Vec<String> {
        self.inner.current().catalog.channels.clone()
    }

    /// The catalog's experiments in order: (id, group names), the columns of a batch's `groups`.
    #[getter]
    fn experiments(&self) -> Vec<(String, Vec<String>)> {
        let loaded = self.inner.current();
        loaded
            .catalog
            .experiments
            .iter()
            .map(|x| (x.id.clone(), x.groups.iter().map(|g| g.name.clone()).collect()))
            .collect()
    }

    /// The channels a profile must have consented to before a placement on them decides.
    #[getter]
    fn consent_channels(&self) -> Vec<String> {
        let loaded = self.inner.current();
        let catalog = &loaded.catalog;
        catalog.channels.iter().zip(&catalog.consent_required).filter(|(_, r)| **r).map(|(c, _)| c.clone()).collect()
    }

    /// placement id -> (channel, slots, offer ids), in catalog order.
    #[getter]
    fn placements(&self) -> Vec<(String, String, usize, Vec<String>)> {
        let loaded = self.inner.current();
        let c = &loaded.catalog;
        c.placements
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    c.channels[p.channel].clone(),
                    p.slots,
                    p.offers.iter().map(|&o| c.offers[o].id.clone()).collect(),
                )
            })
            .collect()
    }
}

/// Panics inside Rust, so tests see a real `pyo3_runtime.PanicException` cross the boundary
/// (the servers must answer INTERNAL and keep serving).
#[pyfunction]
fn _panic_for_tests(message: &str) {
    panic!("{message}");
}

#[pymodule]
mod _core {
    use pyo3::prelude::*;

    /// The engine's limits by name (`decision_engine_core::limits`), for messages and docs, and
    /// the basis points experiment shares are counted in.
    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let limits = pyo3::types::PyDict::new(m.py());
        for (name, value) in decision_engine_core::limits::all() {
            limits.set_item(name, value)?;
        }
        m.add("LIMITS", limits)?;
        m.add("BASIS_POINTS", decision_engine_core::experiment::BASIS_POINTS)
    }

    #[pymodule_export]
    use super::_panic_for_tests;
    #[pymodule_export]
    use super::PyEngine;
    #[pymodule_export]
    use super::allocate::allocate;
    #[pymodule_export]
    use super::bandit::PyBandit;
    #[pymodule_export]
    use super::decision::{PyBatchDecision, PyChosenOffer, PyDecision};
    #[pymodule_export]
    use super::errors::{
        CatalogError, DecisionEngineError, InvalidInputError, OutcomeAlreadyReportedError, StorageError,
        UnknownDecisionError, UnknownOfferError, UnknownPlacementError, UnknownProfileError,
    };
    #[pymodule_export]
    use super::experiment::{bucket, buckets, group_basis_points, group_indices, share_basis_points};
    #[pymodule_export]
    use super::policy::{fill_policy, policy_types};
    #[pymodule_export]
    use super::profiles::PyWriteReport;
    #[pymodule_export]
    use super::request::PyDecideOptions;
    #[pymodule_export]
    use super::rules::check_rules;
}
