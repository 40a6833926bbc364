//! Learned policy state: one arm set per placement, plus one per (experiment group with a
//! policy of its own, placement it applies to), so an A/B of policies learns separately.

use std::sync::{PoisonError, RwLock};

use super::Loaded;
use crate::catalog::{Catalog, offer_coordinates, policy_columns, policy_context};
use crate::policy::{Arm, LinearArm, Model, PolicyConfig};

pub(crate) struct ArmSet {
    pub placement: usize,
    /// (experiment, group) for a group's own policy; `None` for the placement's policy.
    pub variant: Option<(usize, usize)>,
    pub policy: PolicyConfig,
    /// `policy` as JSON, for journal records.
    pub policy_json: String,
    /// Schema columns a contextual policy reads, in order (empty for context-free ones).
    pub columns: Vec<usize>,
    pub arms: RwLock<Model>,
}

/// The model of `policy` on `placement` over `arms`; a shared policy's model starts from
/// `shared` (layout and state) when its offers' layout is unchanged.
pub(crate) fn model_for(
    catalog: &Catalog,
    placement: usize,
    policy: &PolicyConfig,
    arms: Vec<Arm>,
    shared: Option<(Vec<String>, LinearArm)>,
) -> Model {
    let model = Model::from_arms_with(policy.clone(), arms, policy_context(policy, &catalog.schema));
    if !policy.shared {
        return model;
    }
    let offers: Vec<&crate::catalog::Offer> =
        catalog.placements[placement].offers.iter().map(|&o| &catalog.offers[o]).collect();
    // The catalog checked the layout when it compiled.
    let (layout, vectors) = offer_coordinates(&offers).expect("a compiled catalog has a valid offer layout");
    let saved = shared.filter(|(saved_layout, _)| *saved_layout == layout).map(|(_, linear)| linear);
    model.with_shared(vectors, saved)
}

/// The coordinate names of `placement`'s offers for a shared model.
pub(crate) fn offer_layout(catalog: &Catalog, placement: usize) -> Vec<String> {
    let offers: Vec<&crate::catalog::Offer> =
        catalog.placements[placement].offers.iter().map(|&o| &catalog.offers[o]).collect();
    offer_coordinates(&offers).map(|(layout, _)| layout).unwrap_or_default()
}

/// (experiment, group) of a variant.
type Variant = Option<(usize, usize)>;

/// Ids that name an arm set across catalog reloads.
pub(super) type Key = (String, Option<(String, String)>);

fn key(catalog: &Catalog, placement: usize, variant: Option<(usize, usize)>) -> Key {
    let names = variant.map(|(e, g)| {
        let experiment = &catalog.experiments[e];
        (experiment.id.clone(), experiment.groups[g].name.clone())
    });
    (catalog.placements[placement].id.clone(), names)
}

/// The arm sets of a catalog: placements first (set `p` is placement `p`'s), then variants.
/// Arms whose set key, policy and offer id are unchanged keep what `previous` learned.
pub(crate) fn build(catalog: &Catalog, previous: Option<&Loaded>) -> Vec<ArmSet> {
    let mut wanted: Vec<(usize, Variant, PolicyConfig)> =
        catalog.placements.iter().enumerate().map(|(p, placement)| (p, None, placement.policy.clone())).collect();
    for (e, experiment) in catalog.experiments.iter().enumerate() {
        for (g, group) in experiment.groups.iter().enumerate() {
            let Some(policy) = &group.policy else { continue };
            for p in (0..catalog.placements.len()).filter(|&p| experiment.applies_to(p)) {
                wanted.push((p, Some((e, g)), policy.clone()));
            }
        }
    }
    wanted
        .into_iter()
        .map(|(placement, variant, policy)| {
            let old = previous.and_then(|prev| prev.find_set(&key(catalog, placement, variant), &policy));
            let columns = policy_columns(&policy, &catalog.schema);
            let arms = catalog.placements[placement]
                .offers
                .iter()
                .map(|&o| {
                    let id = &catalog.offers[o].id;
                    old.and_then(|(prev, set)| prev.arm_by_offer(set, id)).unwrap_or_default()
                })
                .collect();
            let shared = old.and_then(|(prev, set)| prev.shared_state(set));
            let model = model_for(catalog, placement, &policy, arms, shared);
            let policy_json = serde_json::to_string(&policy).expect("policies serialize");
            ArmSet { placement, variant, policy, policy_json, columns, arms: RwLock::new(model) }
        })
        .collect()
}

impl Loaded {
    /// The arm set a decision in placement `p` uses, given its experiment variant.
    pub(crate) fn arm_set(&self, p: usize, variant: Option<(usize, usize)>) -> usize {
        if variant.is_none() {
            return p;
        }
        self.arm_sets.iter().position(|s| s.placement == p && s.variant == variant).unwrap_or(p)
    }

    /// This catalog's set with the same key and policy, if any.
    fn find_set(&self, key_wanted: &Key, policy: &PolicyConfig) -> Option<(&Loaded, usize)> {
        self.set_with(key_wanted, policy).map(|i| (self, i))
    }

    /// Index of the set with this key (placement id, experiment group names) and policy.
    pub(super) fn set_with(&self, key_wanted: &Key, policy: &PolicyConfig) -> Option<usize> {
        self.arm_sets
            .iter()
            .position(|s| &s.policy == policy && key(&self.catalog, s.placement, s.variant) == *key_wanted)
    }

    /// The ids naming set `set` (placement, experiment group) across catalog reloads.
    pub(super) fn set_key(&self, set: usize) -> Key {
        let s = &self.arm_sets[set];
        key(&self.catalog, s.placement, s.variant)
    }

    /// A shared set's offer layout and model state.
    fn shared_state(&self, set: usize) -> Option<(Vec<String>, LinearArm)> {
        let s = &self.arm_sets[set];
        let state = s.arms.read().unwrap_or_else(PoisonError::into_inner).shared_state()?.clone();
        Some((offer_layout(&self.catalog, s.placement), state))
    }

    fn arm_by_offer(&self, set: usize, offer: &str) -> Option<Arm> {
        let s = &self.arm_sets[set];
        let local =
            self.catalog.placements[s.placement].offers.iter().position(|&o| self.catalog.offers[o].id == offer)?;
        Some(s.arms.read().unwrap_or_else(PoisonError::into_inner).arms()[local].clone())
    }

    /// The same arm set and offer in `self`, for an outcome of a decision made on `old`.
    pub(crate) fn translate(&self, old: &Loaded, set: usize, local: usize) -> Option<(usize, usize)> {
        let s = &old.arm_sets[set];
        let (mine, _) = self.find_set(&key(&old.catalog, s.placement, s.variant), &s.policy)?;
        let index = mine
            .arm_sets
            .iter()
            .position(|x| key(&self.catalog, x.placement, x.variant) == key(&old.catalog, s.placement, s.variant))?;
        let offer = &old.catalog.offers[old.catalog.placements[s.placement].offers[local]].id;
        let placement = self.arm_sets[index].placement;
        let mine_local =
            self.catalog.placements[placement].offers.iter().position(|&o| self.catalog.offers[o].id == *offer)?;
        Some((index, mine_local))
    }
}
