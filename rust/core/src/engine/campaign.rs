//! Batch campaigns under volume budgets: every profile's eligible offers are scored by
//! expected value (posterior mean x value x weight) and offers are allocated across the
//! whole batch to maximise the total within each budget's remaining volume.

use std::sync::Arc;

use rayon::prelude::*;

use super::Engine;
use super::batch::{BatchDecision, BatchRequest, consent_mask, validate};
use crate::allocate::{Candidates, Groups, allocate};
use crate::arbitrate::gate;
use crate::contact::Counts;
use crate::error::{Error, Result};
use crate::rules::{ChunkScratch, LANES};
use crate::store::pending::{NO_OFFER, PendingBatch};

impl Engine {
    /// Allocates offers to a batch within budgets. Deterministic given the learned state,
    /// so each choice's propensity is 1.
    pub fn allocate_batch(&self, request: &BatchRequest<'_>) -> Result<BatchDecision> {
        if request.profile_ids.is_some() {
            return Err(Error::InvalidInput("budget allocation does not take profile_ids yet".to_owned()));
        }
        let _gate = self.begin_change()?;
        let loaded = self.current();
        let catalog = &loaded.catalog;
        let (p, rows) = validate(&loaded, request)?;
        self.clock.check(request.now)?;
        let placement = &catalog.placements[p];
        let (dim, channels, slots) = (catalog.schema.len(), catalog.channels.len(), placement.slots);
        let expected: Vec<f64> = {
            let model = loaded.arm_sets[p].arms.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if model.config.is_contextual() {
                return Err(Error::InvalidInput(format!(
                    "budget allocation takes context-free policies; placement '{}' uses {}",
                    placement.id,
                    model.config.name()
                )));
            }
            loaded.scales[p].iter().enumerate().map(|(local, scale)| model.mean(local, &[]) * scale).collect()
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
                (0..n)
                    .map(|row| {
                        let consents = consent_mask(request.consents, channels, chunk * LANES + row);
                        let mut row_candidates: Candidates = placement
                            .offers
                            .iter()
                            .enumerate()
                            .filter(|&(l, &o)| {
                                scratch.truth(rules[l].root)[row] != 0
                                    && gate(catalog, o, placement.channel, request.now, consents).is_none()
                                    && expected[l] > 0.0
                            })
                            .map(|(l, _)| (l as u32, expected[l]))
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
        let capacity: Vec<u64> = budgets
            .iter()
            .map(|b| {
                b.map_or(u64::MAX, |b| {
                    let (used, allowed) = b.usage(request.now);
                    allowed.saturating_sub(used)
                })
            })
            .collect();
        let groups = Groups { of: &loaded.groups[p], limit: catalog.contact.max_per_group };
        let chosen = allocate(&candidates, &capacity, slots, &groups);

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
                scores[row * slots + slot] = expected[l as usize] as f32;
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
}
