//! Many profiles, one placement: rules evaluated column-wise per chunk of rows, chunks
//! spread over threads with rayon, every profile arbitrated by the same step as `decide`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use rayon::prelude::*;

use super::{Engine, Loaded};
use crate::arbitrate::{ArmView, Workspace};
use crate::arbitrate::{Profile, Slotting};
use crate::bandit::linear_batch::Moments;
use crate::error::{Error, Result};
use crate::experiment::Treatment;
use crate::rules::{ChunkScratch, LANES};
use crate::store::pending::{NO_OFFER, PendingBatch};

#[derive(Default)]
pub struct BatchRequest<'a> {
    pub placement: &'a str,
    /// Row-major `rows x features`.
    pub features: &'a [f32],
    /// Row-major `rows x channels`, non-zero where the profile consented; `None`: no consents.
    pub consents: Option<&'a [u8]>,
    pub now: f64,
    /// Compute each pick's propensity (for logging and off-policy evaluation).
    pub propensities: bool,
    /// One id per row: experiments assign groups by it and, unless `without_history`,
    /// stored contact history applies and contacts are reserved, as in `decide`.
    pub profile_ids: Option<&'a [&'a str]>,
    /// Profile ids assign experiment groups (and random streams) only: a campaign engine
    /// that lives for one run keeps no contact history of its own.
    pub without_history: bool,
    /// With profile ids: each row draws from the random stream of (engine seed, `stream`,
    /// profile id) instead of its decision id, so a campaign split over many engines in any
    /// way makes the decisions one engine makes.
    pub stream: Option<u64>,
    /// Budget prices per catalog offer (`Engine::budget_prices`): every row takes its offers
    /// by expected value minus price, deterministically (propensity 1).
    pub prices: Option<&'a [f64]>,
    /// Per catalog offer, the most impressions this batch may take (`u64::MAX`: no limit),
    /// on top of the offer's budget: a partition's share of a budget held elsewhere.
    pub quota: Option<&'a [u64]>,
}

#[derive(Debug, Clone)]
pub struct BatchDecision {
    /// Decision ids are `first_id .. first_id + rows`, in row order.
    pub first_id: u64,
    pub rows: usize,
    pub slots: usize,
    /// `rows x slots` catalog offer indices, -1 where a slot stayed empty.
    pub offers: Vec<i32>,
    pub scores: Vec<f32>,
    /// `None` unless the request asked for propensities.
    pub propensities: Option<Vec<f32>>,
    /// With profile ids: `rows x catalog experiments`, each row's group index in each
    /// experiment of the placement, -1 where it is in none. Empty without ids.
    pub groups: Vec<i32>,
}

impl Engine {
    pub fn decide_batch(&self, request: &BatchRequest<'_>) -> Result<BatchDecision> {
        if let Some(shared) = &self.shared {
            return self.decide_batch_shared(shared, request);
        }
        self.decide_batch_here(request)
    }

    /// A batch decided in this engine, its budgets taken from its own counters (and
    /// `request.quota`).
    pub(super) fn decide_batch_here(&self, request: &BatchRequest<'_>) -> Result<BatchDecision> {
        let _gate = self.begin_change()?;
        let loaded = self.current();
        let catalog = &loaded.catalog;
        let (p, rows) = validate(&loaded, request)?;
        self.clock.check(request.now)?;
        let placement = &catalog.placements[p];
        let (dim, channels, slots) = (catalog.schema.len(), catalog.channels.len(), placement.slots);

        // A snapshot: outcomes reported during a long batch do not wait on it.
        let model = loaded.arm_sets[p].arms.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let columns = &loaded.arm_sets[p].columns;
        let view = ArmView { model: &model, columns, scale: &loaded.scales[p], group: &loaded.groups[p] };
        let consent_mask = |row: usize| consent_mask(request.consents, channels, row);
        let no_clause = |_: usize| String::new();
        // Prices and quotas by the placement's local offer index.
        let prices: Option<Vec<f64>> = request.prices.map(|all| placement.offers.iter().map(|&o| all[o]).collect());
        let quota: Option<Vec<AtomicU64>> =
            request.quota.map(|all| placement.offers.iter().map(|&o| AtomicU64::new(all[o])).collect());

        // Experiments, as in a single decision: a holdout gets the non-personalized default.
        let assigned: Vec<Vec<(usize, usize)>> = match request.profile_ids {
            Some(ids) => ids.par_iter().map(|id| loaded.assignments(p, Some(id))).collect(),
            None => Vec::new(),
        };
        let experiments = &catalog.experiments;
        if let Some((row, &(e, g))) = assigned
            .iter()
            .enumerate()
            .find_map(|(r, a)| a.iter().find(|&&(e, g)| experiments[e].groups[g].policy.is_some()).map(|x| (r, x)))
        {
            return Err(Error::InvalidInput(format!(
                "row {row}: profile is in group '{}' of experiment '{}', which runs its own policy; a batch \
                 decides with the placement's policy only, so decide such profiles one at a time (decide_page)",
                experiments[e].groups[g].name, experiments[e].id
            )));
        }
        let by_value = |row: usize| {
            assigned
                .get(row)
                .is_some_and(|a| a.iter().any(|&(e, g)| experiments[e].groups[g].treatment == Treatment::Default))
        };

        let first_id = self.allocate_ids(rows);
        let mut local = vec![NO_OFFER; rows * slots];
        let mut scores = vec![f32::NAN; rows * slots];
        let mut propensities = vec![f32::NAN; rows * slots];
        let outputs = local
            .par_chunks_mut(LANES * slots)
            .zip(scores.par_chunks_mut(LANES * slots))
            .zip(propensities.par_chunks_mut(LANES * slots));
        let width = columns.len();
        request.features.par_chunks(dim * LANES).zip(outputs).enumerate().for_each_init(
            || {
                let scratch = ChunkScratch::new(placement.rules.program());
                (scratch, Workspace::default(), Vec::new(), Moments::default(), Vec::new())
            },
            |(scratch, ws, eligible, moments, block), (chunk, (values, ((out_local, out_score), out_prop)))| {
                let n = values.len() / dim;
                crate::rules::eval_chunk(placement.rules.program(), values, dim, n, scratch);
                // A linear policy scores the whole chunk's contexts by two matrix products,
                // as `Bandit` does, instead of row by row.
                if width > 0 {
                    block.clear();
                    block.extend(values.chunks_exact(dim).flat_map(|row| columns.iter().map(|&c| row[c])));
                    moments.compute(&model, block, width, n);
                }
                for row in 0..n {
                    let global = chunk * LANES + row;
                    let decision_id = first_id + global as u64;
                    let context = if width > 0 { &block[row * width..(row + 1) * width] } else { &[][..] };
                    if width > 0 {
                        moments.start_row(&model, context);
                    }
                    let moments = &*moments;
                    let linear = |i: usize| moments.get(&model, row, i);
                    let profile = Profile {
                        features: &values[row * dim..(row + 1) * dim],
                        now: request.now,
                        consents: consent_mask(global),
                        supplied: &[],
                        purchases: &[],
                        exclude: &[],
                        explain: false,
                        propensities: request.propensities,
                        linear: (width > 0).then_some(&linear as &dyn Fn(usize) -> (f64, f64)),
                    };
                    let rules = placement.rules.rules();
                    let rule_holds = |l: usize| scratch.truth(rules[l].root)[row] != 0;
                    let slotting = Slotting {
                        view: &view,
                        decision_id,
                        on_page: &[],
                        by_value: by_value(global),
                        prices: prices.as_deref(),
                        row_key: if prices.is_some() {
                            crate::arbitrate::row_key(request.profile_ids.map(|ids| ids[global]), profile.features)
                        } else {
                            0
                        },
                        quota: quota.as_deref(),
                        shared_budgets: None,
                    };
                    let mut rng = match (request.stream, request.profile_ids) {
                        (Some(stream), Some(ids)) => self.rng_for_profile(stream, ids[global]),
                        _ => self.rng_for(decision_id),
                    };
                    let mut decide = |history| {
                        loaded.decide_placement(
                            p,
                            &profile,
                            &rule_holds,
                            &no_clause,
                            history,
                            &slotting,
                            &mut rng,
                            ws,
                            eligible,
                        )
                    };
                    match request.profile_ids.filter(|_| !request.without_history) {
                        Some(ids) => {
                            let mut shard = self.contacts.lock(ids[global]);
                            decide(Some(shard.entry(ids[global].to_owned()).or_default()));
                            self.contacts.tidy(&mut shard, ids[global], request.now, catalog.contact.horizon());
                        }
                        None => {
                            decide(None);
                        }
                    };
                    for (s, pick) in ws.picks.iter().enumerate() {
                        out_local[row * slots + s] = pick.local as u32;
                        out_score[row * slots + s] = pick.score as f32;
                        out_prop[row * slots + s] = pick.propensity as f32;
                    }
                }
            },
        );

        let offers =
            local.iter().map(|&l| if l == NO_OFFER { -1 } else { placement.offers[l as usize] as i32 }).collect();
        let profiles =
            request.profile_ids.map(|ids| ids.iter().map(|&id| Arc::<str>::from(id)).collect()).unwrap_or_default();
        let contexts = if columns.is_empty() {
            Vec::new()
        } else {
            request.features.chunks_exact(dim).flat_map(|row| columns.iter().map(|&c| row[c])).collect()
        };
        self.remember(
            first_id,
            PendingBatch::new(Arc::clone(&loaded), p, slots, local)
                .with_context(profiles, request.now)
                .with_contexts(contexts, columns.len()),
        )?;
        let propensities = request.propensities.then_some(propensities);
        let mut groups = vec![-1i32; if assigned.is_empty() { 0 } else { rows * experiments.len() }];
        for (row, a) in assigned.iter().enumerate() {
            for &(e, g) in a {
                groups[row * experiments.len() + e] = g as i32;
            }
        }
        Ok(BatchDecision { first_id, rows, slots, offers, scores, propensities, groups })
    }

    /// Every offer's rule over a batch: row-major `rows x offers` of 0/1 (rules only; no
    /// active window or consent).
    pub fn evaluate_rules(&self, features: &[f32]) -> Result<Vec<u8>> {
        let loaded = self.current();
        let catalog = &loaded.catalog;
        let dim = catalog.schema.len();
        let rows = check_shape(features.len(), dim)?;
        let rules = &catalog.rules;
        let mut out = vec![0u8; rows * rules.len()];
        features
            .par_chunks(dim * LANES)
            .zip(out.par_chunks_mut(LANES * rules.len().max(1)))
            .enumerate()
            .try_for_each_init(
                || ChunkScratch::new(rules.program()),
                |scratch, (chunk, (values, out))| {
                    check_rows(catalog, values, chunk * LANES)?;
                    rules.eval_rows_into(values, dim, out, scratch);
                    Ok::<(), Error>(())
                },
            )?;
        Ok(out)
    }
}

/// Checks a batch request against the catalog; returns the placement and the row count.
pub(super) fn validate(loaded: &Loaded, request: &BatchRequest<'_>) -> Result<(usize, usize)> {
    let catalog = &loaded.catalog;
    let p = loaded.placement(request.placement)?;
    let (dim, channels) = (catalog.schema.len(), catalog.channels.len());
    let rows = check_shape(request.features.len(), dim)?;
    if let Some(c) = request.consents
        && c.len() != rows * channels
    {
        return Err(Error::InvalidInput(format!(
            "consents must be {rows} x {channels} (rows x channels), got {} values",
            c.len()
        )));
    }
    if let Some(ids) = request.profile_ids {
        if ids.len() != rows {
            return Err(Error::InvalidInput(format!("profile_ids must have {rows} entries, got {}", ids.len())));
        }
        for (row, id) in ids.iter().enumerate() {
            crate::limits::check_profile_id(id).map_err(|e| Error::InvalidInput(format!("row {row}: {e}")))?;
        }
    }
    let offers = catalog.offers.len();
    if let Some(prices) = request.prices
        && (prices.len() != offers || prices.iter().any(|x| !x.is_finite() || *x < 0.0))
    {
        return Err(Error::InvalidInput(format!(
            "prices must be {offers} finite non-negative values (one per catalog offer), got {}",
            prices.len()
        )));
    }
    if let Some(quota) = request.quota
        && quota.len() != offers
    {
        return Err(Error::InvalidInput(format!(
            "quota must have {offers} entries (one per catalog offer), got {}",
            quota.len()
        )));
    }
    if request.stream.is_some() && request.profile_ids.is_none() {
        return Err(Error::InvalidInput("a random stream per profile needs profile_ids".to_owned()));
    }
    request
        .features
        .par_chunks(dim * LANES)
        .enumerate()
        .try_for_each(|(chunk, values)| check_rows(catalog, values, chunk * LANES))?;
    Ok((p, rows))
}

/// Bit `c` set where row `row` of the consents matrix consented to channel `c`.
pub(super) fn consent_mask(consents: Option<&[u8]>, channels: usize, row: usize) -> u64 {
    consents.map_or(0, |m| {
        m[row * channels..(row + 1) * channels]
            .iter()
            .enumerate()
            .fold(0, |acc, (c, &v)| acc | (u64::from(v != 0) << c))
    })
}

fn check_shape(len: usize, dim: usize) -> Result<usize> {
    if dim == 0 || !len.is_multiple_of(dim) {
        return Err(Error::InvalidInput(format!("expected rows of {dim} features, got {len} values")));
    }
    Ok(len / dim)
}

fn check_rows(catalog: &crate::catalog::Catalog, values: &[f32], first_row: usize) -> Result<()> {
    catalog.schema.check_rows(values, first_row)
}
