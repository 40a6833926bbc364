//! Outcomes: a reported reward teaches the policy of the offer shown and starts the contact
//! policy's cooldowns; a released decision gives its contacts and budget units back.

use std::sync::{Arc, PoisonError};

use super::{Engine, Loaded};
use crate::contact::{ContactEvent, ContactKind, Counts};
use crate::error::{Error, Result};
use crate::store::pending::{NO_OFFER, Settled};

/// A cooldown contact an outcome starts, for the profile it belongs to.
pub(super) type Cooldown = (Arc<str>, ContactEvent);

impl Engine {
    /// Records a reward for one offer of a decision and updates its policy: in [0, 1] for a
    /// Beta-Bernoulli `thompson` policy, any finite number for the others (`gaussian_thompson`
    /// learns real rewards such as revenue). `offer_id` may be left out when the decision
    /// showed exactly one offer.
    /// A positive reward is a conversion and `dismissed` a dismissal: both start the contact
    /// policy's cooldowns for the profile, and a conversion counts against a conversions budget.
    pub fn report_outcome(&self, decision_id: u64, offer_id: Option<&str>, reward: f64, dismissed: bool) -> Result<()> {
        if !reward.is_finite() {
            return Err(Error::InvalidInput(format!("reward must be a finite number, got {reward}")));
        }
        if let Some(shared) = &self.shared {
            return self.report_shared(shared, decision_id, offer_id, reward, dismissed);
        }
        let _gate = self.begin_change()?;
        self.learn_outcome(decision_id, offer_id, reward, dismissed)?;
        self.journal(|| crate::store::durable::Record::Outcome {
            decision_id,
            offer: offer_id.map(str::to_owned),
            reward,
            dismissed,
        })
    }

    fn learn_outcome(&self, decision_id: u64, offer_id: Option<&str>, reward: f64, dismissed: bool) -> Result<()> {
        let (settled, cooldown) = self.settle_local(decision_id, offer_id, reward, dismissed)?;
        if let Some((profile, event)) = cooldown {
            self.contacts.record(&profile, event, settled.state.catalog.contact.horizon());
        }
        self.observe_settled(&settled, reward);
        Ok(())
    }

    /// Settles an outcome of a decision this engine holds: checked, marked reported, and a
    /// conversions budget counted; returns it with the cooldown contact it starts, if any.
    pub(super) fn settle_local(
        &self,
        decision_id: u64,
        offer_id: Option<&str>,
        reward: f64,
        dismissed: bool,
    ) -> Result<(Settled<Loaded>, Option<Cooldown>)> {
        let pick = |loaded: &Loaded, (placement, set): (usize, usize), shown: &[u32]| -> Result<usize> {
            let whose = format!("for placement '{}' ", loaded.catalog.placements[placement].id);
            loaded.arm_sets[set].policy.check_reward(reward, &whose).map_err(Error::InvalidInput)?;
            let shown: Vec<usize> = shown.iter().filter(|&&o| o != NO_OFFER).map(|&o| o as usize).collect();
            match (offer_id, shown.as_slice()) {
                (_, []) => Err(Error::InvalidInput(format!("decision {decision_id} showed no offer"))),
                (None, [only]) => Ok(*only),
                (None, many) => Err(Error::InvalidInput(format!(
                    "decision {decision_id} showed {} offers ({}); say which one the outcome is for",
                    many.len(),
                    many.iter().map(|&l| loaded.offer_id(placement, l)).collect::<Vec<_>>().join(", ")
                ))),
                (Some(id), _) => {
                    shown.iter().copied().find(|&l| loaded.offer_id(placement, l) == id).ok_or_else(|| {
                        if loaded.catalog.offer_index(id).is_some() {
                            Error::InvalidInput(format!("offer '{id}' was not shown in decision {decision_id}"))
                        } else {
                            Error::UnknownOffer(id.to_owned())
                        }
                    })
                }
            }
        };
        let name = |loaded: &Loaded, placement: usize, local: usize| loaded.offer_id(placement, local).to_owned();
        let settled = self.pending.lock().unwrap_or_else(PoisonError::into_inner).settle(decision_id, pick, name)?;
        let cooldown = Self::outcome_contact(&settled, reward, dismissed);
        Ok((settled, cooldown))
    }

    /// Teaches the policy the outcome of a settled decision.
    fn observe_settled(&self, settled: &Settled<Loaded>, reward: f64) {
        // The outcome teaches the current catalog's arm, also when the decision predates a reload.
        let current = self.current();
        let (set, local) = if Arc::ptr_eq(&current, &settled.state) {
            (settled.arm_set, settled.local)
        } else {
            match current.translate(&settled.state, settled.arm_set, settled.local) {
                Some(found) => found,
                // The offer or its policy is gone from the catalog: nothing left to teach.
                None => return,
            }
        };
        let mut model = current.arm_sets[set].arms.write().unwrap_or_else(PoisonError::into_inner);
        if model.dim != settled.context.len() {
            // The contextual policy's features changed with a reload: the old context no longer fits.
            return;
        }
        model.observe(local, &settled.context, reward);
        model.settle();
    }

    /// Counts a conversion against a conversions budget; the cooldown contact an outcome
    /// starts (a conversion or a dismissal of a decision with a profile).
    fn outcome_contact(settled: &Settled<Loaded>, reward: f64, dismissed: bool) -> Option<Cooldown> {
        let state = &settled.state;
        let offer = state.catalog.placements[settled.placement].offers[settled.local];
        if reward > 0.0
            && let Some(budget) = &state.budgets[offer]
            && budget.spec.counts == Counts::Conversions
        {
            budget.add(settled.decided_at);
        }
        let kind = if reward > 0.0 {
            ContactKind::Converted
        } else if dismissed {
            ContactKind::Dismissed
        } else {
            return None;
        };
        let profile = settled.profile.as_ref()?;
        let event = ContactEvent {
            time: settled.decided_at,
            offer: Arc::clone(&state.offer_names[offer]),
            channel: Arc::clone(&state.channel_names[state.catalog.placements[settled.placement].channel]),
            group: state.catalog.offers[offer].group.map(|g| Arc::clone(&state.group_names[g])),
            kind,
            // Cooldown events belong to no reservation.
            decision_id: 0,
        };
        Some((Arc::clone(profile), event))
    }

    /// Withdraws a decision that was not shown: its contacts and budget units are given
    /// back, and no outcome can be reported for it.
    pub fn release(&self, decision_id: u64) -> Result<()> {
        if let Some(shared) = &self.shared {
            return self.release_shared(shared, decision_id);
        }
        let _gate = self.begin_change()?;
        self.give_back(decision_id)?;
        self.journal(|| crate::store::durable::Record::Released { decision_id })
    }

    pub(super) fn give_back(&self, decision_id: u64) -> Result<()> {
        let released = self.pending.lock().unwrap_or_else(PoisonError::into_inner).release(decision_id)?;
        let state = &released.state;
        for &local in &released.locals {
            let offer = state.catalog.placements[released.placement].offers[local];
            if let Some(budget) = &state.budgets[offer]
                && budget.spec.counts == Counts::Impressions
            {
                budget.give_back(released.decided_at);
            }
        }
        if let Some(profile) = &released.profile
            && let Some(history) = self.contacts.lock(profile).get_mut(&**profile)
        {
            history.release(decision_id);
        }
        Ok(())
    }
}
