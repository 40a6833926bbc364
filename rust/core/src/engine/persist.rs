//! Saving and loading what the placements' policies learned, as versioned JSON keyed by
//! placement, experiment group and offer id, so a state file survives catalog edits: arms
//! whose placement, policy and offer are unchanged load; the rest are reported as skipped.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use serde::{Deserialize, Serialize};

use super::Engine;
use super::arms::{model_for, offer_layout};
use crate::error::{Error, Result};
use crate::policy::{Arm, ArmDelta, LinearArm, PolicyConfig};
use crate::store::file::check_header;

pub const POLICY_STATE_FORMAT: &str = "decision-engine/policy-state";
/// Version 1: per arm set, its placement, experiment group, policy and arms by offer id.
pub const POLICY_STATE_VERSION: u32 = 1;
pub const POLICY_DELTA_FORMAT: &str = "decision-engine/policy-delta";
pub const POLICY_DELTA_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    version: u32,
    sets: Vec<SetState>,
}

#[derive(Serialize, Deserialize)]
struct SetState {
    placement: String,
    /// (experiment, group) of a variant's own policy.
    variant: Option<(String, String)>,
    policy: PolicyConfig,
    arms: BTreeMap<String, Arm>,
    /// A shared policy's one model, with the offer coordinates it was learned over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shared: Option<(Vec<String>, LinearArm)>,
}

#[derive(Serialize, Deserialize)]
struct DeltaFile {
    format: String,
    version: u32,
    sets: Vec<SetDelta>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct SetDelta {
    placement: String,
    variant: Option<(String, String)>,
    policy: PolicyConfig,
    arms: BTreeMap<String, ArmDelta>,
}

/// What a load applied: arms loaded, and arms or sets of the file the catalog has no place for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: usize,
    pub skipped: usize,
}

impl Engine {
    /// Everything the policies learned, as JSON.
    pub fn save_policy_state(&self) -> String {
        let loaded = self.current();
        let catalog = &loaded.catalog;
        let sets = loaded
            .arm_sets
            .iter()
            .enumerate()
            .map(|(index, set)| {
                let model = set.arms.read().unwrap_or_else(PoisonError::into_inner);
                let arms = catalog.placements[set.placement]
                    .offers
                    .iter()
                    .zip(model.arms())
                    .map(|(&o, arm)| (catalog.offers[o].id.clone(), arm.clone()))
                    .collect();
                let (placement, variant) = loaded.set_key(index);
                let shared = model.shared_state().map(|s| (offer_layout(catalog, set.placement), s.clone()));
                SetState { placement, variant, policy: set.policy.clone(), arms, shared }
            })
            .collect();
        let file = StateFile { format: POLICY_STATE_FORMAT.to_owned(), version: POLICY_STATE_VERSION, sets };
        serde_json::to_string(&file).expect("policy state serializes")
    }

    /// Replaces learned arms with those of a saved state. The whole file is checked before
    /// anything changes, so a bad file changes nothing.
    pub fn load_policy_state(&self, json: &str) -> Result<LoadReport> {
        check_header(json, POLICY_STATE_FORMAT, POLICY_STATE_VERSION)?;
        let file: StateFile = serde_json::from_str(json)
            .map_err(|e| Error::InvalidInput(format!("bad {POLICY_STATE_FORMAT} file: {e}")))?;
        let loaded = self.current();
        let mut report = LoadReport { loaded: 0, skipped: 0 };
        let mut updates = Vec::new();
        for saved in &file.sets {
            let Some(index) = loaded.set_named(&saved.placement, &saved.variant, &saved.policy) else {
                report.skipped += saved.arms.len();
                continue;
            };
            let set = &loaded.arm_sets[index];
            let model = set.arms.read().unwrap_or_else(PoisonError::into_inner);
            let (mut arms, coords) = (model.arms().to_vec(), model.coords());
            drop(model);
            for (offer, arm) in &saved.arms {
                let local = loaded.local_offer(index, offer);
                let fits = match (&arm.linear, set.policy.is_contextual()) {
                    (Some(linear), true) => linear.check(coords).is_ok(),
                    (None, false) => true,
                    (None, true) => set.policy.shared,
                    _ => false,
                };
                match local {
                    Some(local) if fits => {
                        arms[local] = arm.clone();
                        report.loaded += 1;
                    }
                    _ => report.skipped += 1,
                }
            }
            updates.push((index, arms, saved.shared.clone()));
        }
        for (index, arms, shared) in updates {
            let set = &loaded.arm_sets[index];
            let model = model_for(&loaded.catalog, set.placement, &set.policy, arms, shared);
            *set.arms.write().unwrap_or_else(PoisonError::into_inner) = model;
        }
        // The journal holds changes, not loads: a snapshot makes the loaded state durable.
        self.snapshot()?;
        Ok(report)
    }
}

impl super::Loaded {
    /// Index of the set with this placement id, variant and policy.
    pub(super) fn set_named(
        &self,
        placement: &str,
        variant: &Option<(String, String)>,
        policy: &PolicyConfig,
    ) -> Option<usize> {
        self.set_with(&(placement.to_owned(), variant.clone()), policy)
    }

    fn local_offer(&self, set: usize, offer: &str) -> Option<usize> {
        let placement = &self.catalog.placements[self.arm_sets[set].placement];
        placement.offers.iter().position(|&o| self.catalog.offers[o].id == offer)
    }

    /// Takes what every sharing arm set learned since the last take, keyed by ids.
    pub(super) fn take_learned(&self) -> Vec<SetDelta> {
        self.arm_sets
            .iter()
            .enumerate()
            .filter_map(|(index, set)| {
                let mut model = set.arms.write().unwrap_or_else(PoisonError::into_inner);
                if !model.is_sharing() {
                    model.share_learning(true);
                    return None;
                }
                let offers = &self.catalog.placements[set.placement].offers;
                let arms: BTreeMap<String, ArmDelta> = offers
                    .iter()
                    .zip(model.take_learned())
                    .filter(|(_, delta)| !delta.is_empty())
                    .map(|(&o, delta)| (self.catalog.offers[o].id.clone(), delta))
                    .collect();
                let (placement, variant) = self.set_key(index);
                Some(SetDelta { placement, variant, policy: set.policy.clone(), arms })
            })
            .collect()
    }

    /// Starts sharing on every arm set and counts `carried` (taken from the previous
    /// catalog) as learned here, so a reload between two flushes loses nothing.
    pub(super) fn share_with(&self, carried: &[SetDelta]) {
        for set in &self.arm_sets {
            set.arms.write().unwrap_or_else(PoisonError::into_inner).share_learning(true);
        }
        for saved in carried {
            let Some(index) = self.set_named(&saved.placement, &saved.variant, &saved.policy) else { continue };
            let mut model = self.arm_sets[index].arms.write().unwrap_or_else(PoisonError::into_inner);
            for (offer, delta) in &saved.arms {
                if let Some(local) = self.local_offer(index, offer) {
                    model.add_learned(local, delta);
                }
            }
        }
    }
}

impl Engine {
    /// What this engine's policies learned since the last call, as JSON to add to other
    /// servers' models ([`Engine::apply_policy_delta`]). The first call starts keeping it.
    pub fn take_policy_delta(&self) -> String {
        self.sharing.store(true, std::sync::atomic::Ordering::Relaxed);
        let sets = self.current().take_learned();
        let file = DeltaFile { format: POLICY_DELTA_FORMAT.to_owned(), version: POLICY_DELTA_VERSION, sets };
        serde_json::to_string(&file).expect("policy delta serializes")
    }

    /// Adds what other servers learned. Sets whose policy forgets (discount or window) are
    /// skipped: their statistics do not add up.
    pub fn apply_policy_delta(&self, json: &str) -> Result<LoadReport> {
        check_header(json, POLICY_DELTA_FORMAT, POLICY_DELTA_VERSION)?;
        let file: DeltaFile = serde_json::from_str(json)
            .map_err(|e| Error::InvalidInput(format!("bad {POLICY_DELTA_FORMAT} file: {e}")))?;
        let loaded = self.current();
        let mut report = LoadReport { loaded: 0, skipped: 0 };
        for saved in &file.sets {
            let forgets = saved.policy.discount < 1.0 || saved.policy.window.is_some();
            let found = loaded.set_named(&saved.placement, &saved.variant, &saved.policy).filter(|_| !forgets);
            let Some(index) = found else {
                report.skipped += saved.arms.len();
                continue;
            };
            let mut model = loaded.arm_sets[index].arms.write().unwrap_or_else(PoisonError::into_inner);
            for (offer, delta) in &saved.arms {
                match loaded.local_offer(index, offer) {
                    Some(local) => {
                        model.merge(local, delta);
                        report.loaded += 1;
                    }
                    None => report.skipped += 1,
                }
            }
        }
        Ok(report)
    }
}
