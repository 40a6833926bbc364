//! The learned state of one policy over a set of arms, and how it scores them.

use serde::{Deserialize, Serialize};

use super::config::{Kind, PolicyConfig};
use super::context::{ContextSpec, Encoder};
use super::counts::Counts;
use super::delta::ArmDelta;
use super::lifted::{lifted_len, weights};
use super::linear::LinearArm;
use super::propensity::{ScoreLaw, WinTable, normal_win_probability, win_probabilities};
use super::shared::Shared;
use super::thompson::ThompsonArm;

/// Bonus of an arm UCB1 has not tried yet: above any finite mean, still finite after scaling.
pub(super) const UNTRIED: f64 = 1e12;

/// What one arm has learned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Arm {
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearArm>,
}

/// How the picks of a decision are drawn from the scores the policy produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Picker {
    /// Scores are samples, each from a law the policy reports ([`ScoreLaw`]).
    Sampled,
    /// The best score, exact ties broken at random.
    Greedy,
    EpsilonGreedy(f64),
    Softmax(f64),
}

/// Per-arm values derived from the learned state, rebuilt when the arm learns.
#[derive(Debug, Clone)]
pub(super) struct Cached {
    pub(super) beta: Option<ThompsonArm>,
    /// Posterior (or empirical) mean and its standard deviation.
    pub(super) mean: f64,
    pub(super) std_dev: f64,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub config: PolicyConfig,
    /// Columns of a raw context (0 for context-free policies).
    pub dim: usize,
    /// The raw context's coordinates for the linear arms ([`super::context`]).
    encoder: Encoder,
    /// Observations learned since this model was built or loaded, counted from the rows
    /// its arms held then: the standardization is refreshed at each power of two.
    observed: u64,
    pub(super) arms: Vec<Arm>,
    pub(super) cached: Vec<Cached>,
    /// Linear policies, per arm: A^-1 as lifted weights ([`super::lifted`]), and theta, in
    /// f32, arm after arm (column-major `lifted_len x arms` and `coords x arms` matrices).
    weights: Vec<f32>,
    thetas: Vec<f32>,
    /// Sum of the arms' counts (UCB1's N).
    pub(super) total: f64,
    /// With sharing on: per arm, what it learned here since the last [`Self::take_learned`].
    learned: Option<Vec<ArmDelta>>,
    /// A context-free sampled policy's arms laid out for propensities ([`WinTable`]).
    table: TableCell,
    /// With `shared: true`, the one model of every arm (the arms keep their counts only).
    shared: Option<Shared>,
}

impl Model {
    /// A model over `n_arms` fresh arms whose context is `dim` numbers.
    pub fn new(config: PolicyConfig, n_arms: usize, dim: usize) -> Self {
        Self::from_arms(config, vec![Arm::default(); n_arms], dim)
    }

    /// A model over arms learned earlier (loaded from a file or carried over a reload),
    /// whose context is `dim` numbers.
    pub fn from_arms(config: PolicyConfig, arms: Vec<Arm>, dim: usize) -> Self {
        Self::from_arms_with(config, arms, ContextSpec::numeric(dim))
    }

    /// [`Self::from_arms`] with the context's columns described. A linear arm whose shape
    /// does not fit the context starts afresh.
    pub fn from_arms_with(config: PolicyConfig, mut arms: Vec<Arm>, context: ContextSpec) -> Self {
        let context = if config.is_contextual() { context } else { ContextSpec::default() };
        let (dim, encoder) = (context.columns.len(), Encoder::new(context));
        let coords = encoder.len();
        for arm in &mut arms {
            if config.is_contextual() {
                match &mut arm.linear {
                    Some(linear) if linear.dim() == coords => linear.settle(),
                    _ => arm.linear = config.fresh_arm(coords).linear,
                }
            } else {
                arm.linear = None;
            }
        }
        let mut model = Self {
            config,
            dim,
            encoder,
            observed: 0,
            cached: Vec::new(),
            weights: vec![0.0; lifted_len(coords) * arms.len()],
            thetas: vec![0.0; coords * arms.len()],
            arms,
            total: 0.0,
            learned: None,
            table: TableCell::default(),
            shared: None,
        };
        model.cached = (0..model.arms.len()).map(|i| model.derive(i)).collect();
        model.standardize(true);
        for i in 0..model.arms.len() {
            model.restack(i);
        }
        model.total = model.arms.iter().map(|a| a.counts.n).sum();
        model
    }

    /// Makes this contextual model one shared model over the profile's coordinates times
    /// each arm's offer coordinates `offers` ([`super::shared`]), learned afresh or from
    /// `saved`.
    pub fn with_shared(mut self, offers: Vec<Vec<f32>>, saved: Option<LinearArm>) -> Self {
        let (Kind::LinUcb { ridge, .. } | Kind::LinThompson { ridge, .. }) = self.config.kind else { return self };
        debug_assert_eq!(offers.len(), self.arms.len());
        self.arms.iter_mut().for_each(|arm| arm.linear = None);
        (self.weights, self.thetas) = (Vec::new(), Vec::new());
        let mut shared = Shared::new(self.coords(), offers, ridge, saved);
        shared.standardize(&self.encoder, ridge, true);
        self.observed = shared.rows().max(0.0) as u64;
        self.shared = Some(shared);
        self
    }

    /// The shared model's state, to save (`None` unless `shared: true`).
    pub fn shared_state(&self) -> Option<&LinearArm> {
        self.shared.as_ref().map(|s| &s.linear)
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Length of what one observation adds to a linear model (per arm, or shared).
    fn linear_dim(&self) -> usize {
        self.shared.as_ref().map_or(self.encoder.len(), |s| s.linear.dim())
    }

    /// What [`Self::linear_moments`] needs of encoded context `x`, once per context: its
    /// lifted products ([`super::lift`]), or for a shared model its folded moments.
    pub fn prepare(&self, x: &[f32], out: &mut Vec<f32>) {
        match &self.shared {
            Some(shared) => shared.prepare(x, out),
            None => super::lift(x, out),
        }
    }

    /// Coordinates of a context described by `context`.
    pub fn context_coords(context: &ContextSpec) -> usize {
        Encoder::new(context.clone()).len()
    }

    /// Coordinates of an encoded context (0 for context-free policies).
    pub fn coords(&self) -> usize {
        self.encoder.len()
    }

    /// The coordinates of raw context `raw` ([`Self::dim`] columns) into `out`.
    pub fn encode(&self, raw: &[f32], out: &mut Vec<f32>) {
        self.encoder.encode(raw, out);
    }

    /// Sets every linear arm's prior to standardize by what all arms have seen so far, or
    /// with `keep_saved`, by the standardization the arms were saved with (if any).
    fn standardize(&mut self, keep_saved: bool) {
        let (Kind::LinUcb { ridge, .. } | Kind::LinThompson { ridge, .. }) = self.config.kind else { return };
        if let Some(shared) = &mut self.shared {
            shared.standardize(&self.encoder, ridge, keep_saved);
            return;
        }
        let d = self.coords();
        let (mut sums, mut squares) = (vec![0.0; d], vec![0.0; d]);
        for linear in self.arms.iter().filter_map(|a| a.linear.as_ref()) {
            linear.add_sums(ridge, &mut sums, &mut squares);
        }
        let rows = sums.first().copied().unwrap_or(0.0); // the bias coordinate counts rows
        self.observed = rows.max(0.0) as u64;
        let saved = keep_saved
            .then(|| self.arms.iter().filter_map(|a| a.linear.as_ref()?.standardization()).next().cloned())
            .flatten();
        let standardization = saved.or_else(|| self.encoder.standardization(rows, &sums, &squares));
        for i in 0..self.arms.len() {
            if let Some(linear) = &mut self.arms[i].linear {
                linear.standardize(standardization.clone(), ridge);
            }
        }
        for i in 0..self.arms.len() {
            self.refresh(i);
        }
    }

    /// Counts `rows` more observations; at each power of two the standardization follows.
    fn count_observed(&mut self, rows: u64) {
        let before = self.observed;
        self.observed += rows;
        if self.encoder.is_empty() || rows == 0 {
            return;
        }
        let crossed = before.checked_ilog2() != self.observed.checked_ilog2();
        if crossed && self.observed >= 32 {
            self.standardize(false);
        }
    }

    pub fn arms(&self) -> &[Arm] {
        &self.arms
    }

    pub fn len(&self) -> usize {
        self.arms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arms.is_empty()
    }

    /// P(`eligible[pick]` draws the highest score among the arms `eligible`) whose laws are
    /// `laws` (at per-arm `scale`). A context-free policy reads it off its [`WinTable`],
    /// brought up to date for these arms; a contextual one integrates afresh.
    pub fn win_probability(&self, eligible: &[usize], laws: &[ScoreLaw], pick: usize, scale: &[f64]) -> f64 {
        if self.config.is_contextual() {
            return normal_win_probability(laws, pick).unwrap_or_else(|| win_probabilities(laws)[pick]);
        }
        let current = |table: &WinTable| eligible.iter().zip(laws).all(|(&i, &law)| table.law(i) == law);
        {
            let table = self.table.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(table) = table.as_ref().filter(|t| current(t)) {
                return table.win_probability(eligible, pick);
            }
        }
        let mut table = self.table.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A copy of the model (a batch's snapshot) may still share this table: copy on write.
        let fits = table.as_mut().is_some_and(|t| {
            let t = std::sync::Arc::make_mut(t);
            eligible.iter().zip(laws).all(|(&i, &law)| t.update(i, law))
        });
        if !fits {
            let all: Option<Vec<ScoreLaw>> = (0..self.arms.len()).map(|i| self.sampled_law(i, scale[i])).collect();
            *table = all.map(|all| std::sync::Arc::new(WinTable::new(&all)));
        }
        match table.as_ref().filter(|t| current(t)) {
            Some(table) => table.win_probability(eligible, pick),
            None => win_probabilities(laws)[pick],
        }
    }

    /// The law of a context-free sampled arm's score at `scale`.
    fn sampled_law(&self, i: usize, scale: f64) -> Option<ScoreLaw> {
        let c = &self.cached[i];
        match self.config.kind {
            Kind::Thompson { .. } => c.beta.as_ref().map(|b| b.law(scale)),
            Kind::GaussianThompson { .. } => {
                Some(ScoreLaw::Normal { mean: c.mean * scale, std_dev: c.std_dev * scale })
            }
            _ => None,
        }
    }

    /// Starts (or stops) keeping what this model learns, for sharing with other servers.
    pub fn share_learning(&mut self, on: bool) {
        self.learned = on.then(|| vec![ArmDelta::default(); self.arms.len()]);
    }

    /// What each arm learned since the last call (empty without sharing).
    pub fn take_learned(&mut self) -> Vec<ArmDelta> {
        match &mut self.learned {
            Some(learned) => std::mem::replace(learned, vec![ArmDelta::default(); self.arms.len()]),
            None => Vec::new(),
        }
    }

    /// Adds what other servers learned. Not recorded as learned here.
    pub fn merge(&mut self, i: usize, delta: &ArmDelta) {
        let arm = &mut self.arms[i];
        arm.counts.add(&delta.counts);
        self.total += delta.counts.n;
        let mut merged = false;
        if let Some((a, b, x_sum)) = &delta.linear {
            if let Some(shared) = &mut self.shared {
                merged = a.nrows() == shared.linear.dim();
                shared.add(a, b, x_sum);
            } else if let Some(linear) = &mut arm.linear
                && a.nrows() == self.encoder.len()
            {
                linear.add(a, b, x_sum);
                merged = true;
            }
        }
        self.refresh(i);
        if merged {
            self.count_observed(delta.counts.n.max(0.0) as u64);
        }
    }

    /// Learns one reward of arm `i` in context `x` (ignored by context-free policies).
    /// Linear arms with a discount need [`Self::settle`] before the next decision.
    pub fn observe(&mut self, i: usize, x: &[f32], reward: f64) {
        self.observe_deferred(i, x, reward, false);
    }

    /// Learns a batch of (arm, context, reward) in order. Linear arms with many rows in the
    /// batch rebuild A^-1 once at the end instead of once per row.
    pub fn observe_batch<'a>(&mut self, rows: impl Iterator<Item = (usize, &'a [f32], f64)> + Clone) {
        /// Rows of one arm above which one O(d^3) rebuild beats O(d^2) updates per row.
        const DEFER_FROM: usize = 16;
        let mut per_arm = vec![0usize; self.arms.len()];
        if self.dim > 0 {
            rows.clone().for_each(|(i, _, _)| per_arm[i] += 1);
        }
        let shared_defer = self.shared.is_some() && per_arm.iter().sum::<usize>() >= DEFER_FROM;
        for (i, x, reward) in rows {
            self.observe_deferred(i, x, reward, shared_defer || per_arm[i] >= DEFER_FROM);
        }
        if shared_defer && let Some(shared) = &mut self.shared {
            shared.settle();
        }
        for (i, &n) in per_arm.iter().enumerate() {
            if n >= DEFER_FROM {
                if let Some(linear) = &mut self.arms[i].linear {
                    linear.settle();
                }
                self.refresh(i);
            }
        }
        self.settle();
    }

    fn observe_deferred(&mut self, i: usize, raw: &[f32], reward: f64, defer: bool) {
        let mut x = Vec::new();
        self.encoder.encode(raw, &mut x);
        let config = &self.config;
        if let (Some(shared), Kind::LinUcb { ridge, .. } | Kind::LinThompson { ridge, .. }) =
            (&mut self.shared, &config.kind)
        {
            // Shared: what other servers add is the pair's features, not the profile's.
            x = shared.observe(&x, i, reward, config.discount, *ridge, defer);
            if !defer && config.discount == 1.0 {
                shared.restack();
            }
        }
        if let Some(learned) = &mut self.learned {
            learned[i].observe(&x, reward, x.len());
        }
        let arm = &mut self.arms[i];
        self.total -= arm.counts.n;
        arm.counts.observe(reward, config.discount, config.window);
        self.total += arm.counts.n;
        if let (Some(linear), Kind::LinUcb { ridge, .. } | Kind::LinThompson { ridge, .. }) =
            (&mut arm.linear, &config.kind)
        {
            linear.observe(&x, reward, config.discount, *ridge, defer);
        }
        if (config.discount == 1.0 && !defer) || !config.is_contextual() {
            self.refresh(i);
        }
        if self.config.is_contextual() {
            self.count_observed(1);
        }
    }

    /// Rebuilds what discounted linear updates left stale.
    pub fn settle(&mut self) {
        if self.config.discount < 1.0
            && let Some(shared) = &mut self.shared
        {
            shared.settle();
        }
        if self.config.discount < 1.0 && self.config.is_contextual() {
            for i in 0..self.arms.len() {
                if let Some(linear) = &mut self.arms[i].linear {
                    linear.settle();
                }
                self.refresh(i);
            }
        }
    }

    /// Counts `delta` as learned here (carried over a catalog reload before it was shared).
    pub fn add_learned(&mut self, i: usize, delta: &ArmDelta) {
        let dim = self.linear_dim();
        if let Some(learned) = &mut self.learned {
            let mine = &mut learned[i];
            mine.counts.add(&delta.counts);
            match (&mut mine.linear, &delta.linear) {
                (Some((a, b, x)), Some((da, db, dx))) if a.shape() == da.shape() => {
                    *a += da;
                    *b += db;
                    *x += dx;
                }
                (None, Some(linear)) if linear.0.nrows() == dim => mine.linear = Some(linear.clone()),
                _ => {}
            }
        }
    }

    pub fn is_sharing(&self) -> bool {
        self.learned.is_some()
    }

    fn refresh(&mut self, i: usize) {
        self.cached[i] = self.derive(i);
        self.restack(i);
    }

    fn derive(&self, i: usize) -> Cached {
        let counts = &self.arms[i].counts;
        match self.config.kind {
            Kind::Thompson { alpha, beta } => {
                let arm = ThompsonArm::new(alpha + counts.sum, beta + (counts.n - counts.sum).max(0.0));
                Cached { mean: arm.mean(), std_dev: arm.std_dev(), beta: Some(arm) }
            }
            Kind::GaussianThompson { prior_mean, prior_strength, prior_variance } => {
                let k = prior_strength + counts.n;
                let mean = (prior_strength * prior_mean + counts.sum) / k;
                let variance = (prior_strength * prior_variance + counts.squared_deviations()) / k;
                Cached { beta: None, mean, std_dev: (variance / k).sqrt() }
            }
            _ => {
                let mean = counts.mean_or(0.0);
                let std_dev =
                    if counts.n > 0.0 { (counts.squared_deviations() / counts.n / counts.n).sqrt() } else { 0.0 };
                Cached { beta: None, mean, std_dev }
            }
        }
    }

    fn restack(&mut self, i: usize) {
        let Some(linear) = &self.arms[i].linear else { return };
        let (d, p) = (self.coords(), lifted_len(self.coords()));
        weights(linear.a_inv(), &mut self.weights[i * p..(i + 1) * p]);
        for (to, &t) in self.thetas[i * d..(i + 1) * d].iter_mut().zip(linear.theta().iter()) {
            *to = t as f32;
        }
    }

    /// theta'x and sqrt(x' A^-1 x) of linear arm `i` at encoded context `x`
    /// ([`Self::encode`]), given `lifted` = [`super::lift`]`(x)`.
    pub fn linear_moments(&self, i: usize, x: &[f32], lifted: &[f32]) -> (f64, f64) {
        if let Some(shared) = &self.shared {
            return shared.moments(i, lifted);
        }
        let (d, p) = (self.coords(), lifted_len(self.coords()));
        let quad = dot(&self.weights[i * p..(i + 1) * p], lifted);
        let mean = dot(&self.thetas[i * d..(i + 1) * d], x);
        (f64::from(mean), f64::from(quad.max(0.0)).sqrt())
    }

    /// The linear arms' lifted A^-1 weights (`lifted_len x arms`) and thetas (`coords x
    /// arms`), column-major, for scoring a batch of encoded contexts by matrix products.
    pub fn linear_matrices(&self) -> (&[f32], &[f32]) {
        (&self.weights, &self.thetas)
    }

    /// Expected reward of arm `i` in raw context `x` (the point estimate, no exploration).
    pub fn mean(&self, i: usize, x: &[f32]) -> f64 {
        if self.config.is_contextual() {
            let mut u = Vec::new();
            self.encoder.encode(x, &mut u);
            if let Some(shared) = &self.shared {
                return shared.mean(i, &u);
            }
            let d = self.coords();
            f64::from(dot(&self.thetas[i * d..(i + 1) * d], &u))
        } else {
            self.cached[i].mean
        }
    }

    /// Pulls, mean reward and uncertainty of arm `i` (posterior sd, UCB bonus, or for
    /// linear arms the width at the average context seen).
    pub fn summary(&self, i: usize) -> (f64, f64, f64) {
        let counts = &self.arms[i].counts;
        let c = &self.cached[i];
        let uncertainty = match self.config.kind {
            Kind::Ucb1 { exploration } if counts.n > 0.0 => {
                exploration * (2.0 * self.total.max(1.0).ln() / counts.n).sqrt()
            }
            Kind::Ucb1 { .. } => f64::INFINITY,
            Kind::LinUcb { alpha, .. } => alpha * self.linear_width(i),
            Kind::LinThompson { scale, .. } => scale * self.linear_width(i),
            _ => c.std_dev,
        };
        let mean = match self.config.kind {
            Kind::Thompson { .. } | Kind::GaussianThompson { .. } => c.mean,
            _ => counts.mean_or(0.0),
        };
        (counts.n, mean, uncertainty)
    }

    fn linear_width(&self, i: usize) -> f64 {
        if let (Some(shared), Kind::LinUcb { ridge, .. } | Kind::LinThompson { ridge, .. }) =
            (&self.shared, &self.config.kind)
        {
            return shared.width_at_mean(i, *ridge);
        }
        self.arms[i].linear.as_ref().map_or(0.0, |l| l.width_at_mean(self.arms[i].counts.n))
    }
}

impl PolicyConfig {
    /// An arm that has learned nothing yet.
    pub fn fresh_arm(&self, dim: usize) -> Arm {
        let linear = match self.kind {
            Kind::LinUcb { ridge, .. } | Kind::LinThompson { ridge, .. } => Some(LinearArm::new(dim, ridge)),
            _ => None,
        };
        Arm { counts: Counts::default(), linear }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent partial sums, so the compiler can keep them in vector registers.
    let mut acc = [0.0f32; 8];
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let tail: f32 = rest_a.iter().zip(rest_b).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// The [`WinTable`] behind a lock. A copy of a model (a batch's snapshot) shares the table
/// until one of them learns, instead of laying it out again.
#[derive(Default)]
struct TableCell(std::sync::RwLock<Option<std::sync::Arc<WinTable>>>);

impl Clone for TableCell {
    fn clone(&self) -> Self {
        Self(std::sync::RwLock::new(self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()))
    }
}

impl std::fmt::Debug for TableCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableCell")
    }
}
