//! Batch campaigns under volume budgets: every profile's eligible offers are scored by
//! expected value (posterior mean x value x weight) and offers are allocated across the
//! whole batch to maximise the total within each budget's remaining volume.

use std::sync::Arc;

use rayon::prelude::*;

use super::Engine;
use super::batch::{BatchDecision, BatchRequest, consent_mask, validate};
use crate::allocate::{Candidates, Groups, allocate};
use crate::arbitrate::{gate, priced_value, row_key};
use crate::contact::Counts;
use crate::error::{Error, Result};
use crate::rules::{ChunkScratch, LANES};
use crate::store::pending::{NO_OFFER, PendingBatch};

impl Engine {
    /// Allocates offers to a batch within budgets. Deterministic given the learned state,
    /// so each choice's propensity is 1.
    pub fn allocate_batch(&self, request: &BatchRequest<'_>) -> Result<BatchDecision> {
        if request.profile_ids.is_some() || request.prices.is_some() || request.quota.is_some() {
            return Err(Error::InvalidInput(
                "budget allocation over one batch takes no profile_ids, prices or quota; a campaign split \
                 into batches decides them with budget_prices"
                    .to_owned(),
            ));
        }
        let _gate = self.begin_change()?;
        let loaded = self.current();
        let catalog = &loaded.catalog;
        let (p, rows) = validate(&loaded, request)?;
        self.clock.check(request.now)?;
        let placement = &catalog.placements[p];
        let slots = placement.slots;
        let market = Market::of(&loaded, p, request, false)?;
        let groups = Groups { of: &loaded.groups[p], limit: catalog.contact.max_per_group };
        let chosen = allocate(&market.candidates, &market.room, slots, &groups);
        let budgets = &market.budgets;

        let first_id = self.allocate_ids(rows);
        let mut local = vec![NO_OFFER; rows * slots];
        let mut scores = vec![f32::NAN; rows * slots];
        for (row, picks) in chosen.iter().enumerate() {
            let mut slot = 0;
            for &l in picks {
                // Another decision may have spent the budget since it was read.
                if budgets[l as usize].is_some_and(|b| b.try_take(request.now).is_err()) {
                    continue;
                }
                local[row * slots + slot] = l;
                let expected = market.candidates[row].iter().find(|c| c.0 == l).map_or(0.0, |c| c.1);
                scores[row * slots + slot] = expected as f32;
                slot += 1;
            }
        }
        let offers =
            local.iter().map(|&l| if l == NO_OFFER { -1 } else { placement.offers[l as usize] as i32 }).collect();
        let propensities =
            request.propensities.then(|| local.iter().map(|&l| if l == NO_OFFER { f32::NAN } else { 1.0 }).collect());
        self.remember(
            first_id,
            PendingBatch::new(Arc::clone(&loaded), p, slots, local).with_context(Vec::new(), request.now),
        )?;
        Ok(BatchDecision { first_id, rows, slots, offers, scores, propensities, groups: Vec::new() })
    }

    /// The first pass of a campaign split into batches: budget prices (Lagrangian duals)
    /// from a sample of its profiles, `request`, out of `total_rows` in all. Each budget's
    /// remaining volume is scaled to the sample's share of the run, and the market cleared
    /// on the sample as `allocate_batch` clears one batch. Deciding every batch with these
    /// prices (`BatchRequest::prices`) then approaches the one-batch allocation; the budgets
    /// themselves (or a partition's quota) keep the volume exact. One entry per offer of the
    /// placement with an impression budget, in placement order.
    pub fn budget_prices(&self, request: &BatchRequest<'_>, total_rows: u64) -> Result<Vec<BudgetPrice>> {
        if request.prices.is_some() || request.quota.is_some() || request.stream.is_some() {
            return Err(Error::InvalidInput("budget_prices takes no prices, quota or stream".to_owned()));
        }
        let loaded = self.current();
        let (p, rows) = validate(&loaded, request)?;
        self.clock.check(request.now)?;
        if total_rows < rows as u64 {
            return Err(Error::InvalidInput(format!(
                "total_rows ({total_rows}) must count at least the {rows} sampled rows"
            )));
        }
        let market = Market::of(&loaded, p, request, true)?;
        let share = if total_rows == 0 { 0.0 } else { rows as f64 / total_rows as f64 };
        let scaled: Vec<u64> =
            market.room.iter().map(|&r| if r == u64::MAX { r } else { (r as f64 * share).round() as u64 }).collect();
        let prices = crate::allocate::prices(&market.candidates, &scaled, loaded.catalog.placements[p].slots);
        let offers = &loaded.catalog.placements[p].offers;
        Ok(market
            .budgets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_some())
            .map(|(l, _)| BudgetPrice { offer: offers[l], price: prices[l], room: market.room[l] })
            .collect())
    }
}

/// An impression budget's price for a campaign, and its remaining volume when priced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPrice {
    /// Catalog offer index.
    pub offer: usize,
    pub price: f64,
    pub room: u64,
}

/// One batch's market for its placement's offers, by local offer index.
struct Market<'l> {
    /// Each profile's best candidates by expected value (posterior mean x value x weight).
    candidates: Vec<Candidates>,
    /// The impression budgets.
    budgets: Vec<Option<&'l crate::contact::Budget>>,
    /// Impressions each offer may still take (`u64::MAX`: no budget).
    room: Vec<u64>,
}

impl<'l> Market<'l> {
    /// `priced`: values as budget prices see them (`priced_value`), for clearing prices.
    fn of(loaded: &'l super::Loaded, p: usize, request: &BatchRequest<'_>, priced: bool) -> Result<Self> {
        let catalog = &loaded.catalog;
        let placement = &catalog.placements[p];
        let (dim, channels, slots) = (catalog.schema.len(), catalog.channels.len(), placement.slots);
        // A snapshot of the model: outcomes reported meanwhile do not wait on the batch.
        let model = loaded.arm_sets[p].arms.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let columns = &loaded.arm_sets[p].columns;
        let scales = &loaded.scales[p];
        // Context-free: one expected value per offer; contextual: per profile, below.
        let expected: Vec<f64> = if columns.is_empty() {
            scales.iter().enumerate().map(|(local, scale)| model.mean(local, &[]) * scale).collect()
        } else {
            Vec::new()
        };
        // Each profile keeps its best few candidates: plenty for the allocation to re-route.
        let keep = (slots * 4).max(8);
        let rules = placement.rules.rules();
        let candidates: Vec<Candidates> = request
            .features
            .par_chunks(dim * LANES)
            .enumerate()
            .flat_map_iter(|(chunk, values)| {
                let mut scratch = ChunkScratch::new(placement.rules.program());
                let n = values.len() / dim;
                crate::rules::eval_chunk(placement.rules.program(), values, dim, n, &mut scratch);
                let mut context = Vec::with_capacity(columns.len());
                (0..n)
                    .map(|row| {
                        let global = chunk * LANES + row;
                        let consents = consent_mask(request.consents, channels, global);
                        context.clear();
                        context.extend(columns.iter().map(|&c| values[row * dim + c]));
                        let id = request.profile_ids.map(|ids| ids[global]);
                        let key = if priced { row_key(id, &values[row * dim..(row + 1) * dim]) } else { 0 };
                        let value = |l: usize| {
                            if context.is_empty() { expected[l] } else { model.mean(l, &context) * scales[l] }
                        };
                        let mut row_candidates: Candidates = placement
                            .offers
                            .iter()
                            .enumerate()
                            .filter(|&(l, &o)| {
                                scratch.truth(rules[l].root)[row] != 0
                                    && gate(catalog, o, placement.channel, request.now, consents).is_none()
                            })
                            .map(|(l, _)| (l as u32, value(l)))
                            .filter(|&(_, v)| v > 0.0)
                            .map(|(l, v)| (l, if priced { priced_value(v, key, l as usize) } else { v }))
                            .collect();
                        if row_candidates.len() > keep {
                            row_candidates.select_nth_unstable_by(keep, |a, b| b.1.total_cmp(&a.1));
                            row_candidates.truncate(keep);
                        }
                        row_candidates
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let budgets: Vec<Option<&crate::contact::Budget>> = placement
            .offers
            .iter()
            .map(|&o| loaded.budgets[o].as_ref().filter(|b| b.spec.counts == Counts::Impressions))
            .collect();
        let room = budgets
            .iter()
            .map(|b| {
                b.map_or(u64::MAX, |b| {
                    let (used, allowed) = b.usage(request.now);
                    allowed.saturating_sub(used)
                })
            })
            .collect();
        Ok(Self { candidates, budgets, room })
    }
}
