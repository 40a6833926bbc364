//! One placement for one profile, the whole pipeline: gating, the rule, the page, the contact
//! policy and budgets, then the slots chosen by the policy's pmf (budgets taken after
//! choosing; an offer whose budget ran out meanwhile is dropped and the slots chosen again).
//! The single and batch decision paths share it.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use super::{ArmView, Reason, Workspace, choose, choose_by_price, choose_by_value, choose_with, gate};
use crate::contact::{ContactCheck, ContactEvent, Counts, Exclusion, History};
use crate::engine::Loaded;

/// One profile's situation, shared by the single and batch paths.
pub(crate) struct Profile<'a> {
    /// The profile's feature row (contextual policies read their columns of it).
    pub features: &'a [f32],
    pub now: f64,
    pub consents: u64,
    pub supplied: &'a [ContactEvent],
    pub purchases: &'a [&'a str],
    pub exclude: &'a [&'a str],
    pub explain: bool,
    pub propensities: bool,
    /// A linear policy's (theta'x, width) per arm, when a batch computed them for a whole
    /// block of profiles by matrix products; otherwise the arms score this row themselves.
    pub linear: Option<&'a dyn Fn(usize) -> (f64, f64)>,
}

/// What arbitration of one placement needs besides the profile.
pub(crate) struct Slotting<'a, 'v> {
    pub view: &'a ArmView<'v>,
    pub decision_id: u64,
    /// Catalog offer indices already chosen on this page, with their placement.
    pub on_page: &'a [(usize, usize)],
    /// A holdout's non-personalized treatment: highest value x weight, no sampling.
    pub by_value: bool,
    /// Budget prices by local offer: offers taken by expected value minus price, no sampling.
    pub prices: Option<&'a [f64]>,
    /// The profile's tie-break key under prices (`arbitrate::row_key`).
    pub row_key: u64,
    /// Impressions this call may still take, by local offer (a partition's budget share).
    pub quota: Option<&'a [AtomicU64]>,
    /// Units used by (catalog offer) of budgets kept in a shared store, which takes them
    /// itself once the decision is made; `None`: the engine's own budgets.
    pub shared_budgets: Option<&'a [(usize, u64)]>,
}

impl Loaded {
    /// Decides one placement for one profile into `ws.picks`; reserves budgets and, given a
    /// history, the contacts. Returns the reasons (by local index) when explaining.
    #[expect(clippy::too_many_arguments, reason = "the single and batch paths share this exact step")]
    pub(crate) fn decide_placement<R: Rng + ?Sized>(
        &self,
        p: usize,
        profile: &Profile<'_>,
        rule_holds: &dyn Fn(usize) -> bool,
        rule_clause: &dyn Fn(usize) -> String,
        history: Option<&mut History>,
        slotting: &Slotting<'_, '_>,
        rng: &mut R,
        ws: &mut Workspace,
        eligible: &mut Vec<usize>,
    ) -> Vec<(usize, Reason)> {
        let catalog = &self.catalog;
        let placement = &catalog.placements[p];
        let now = profile.now;
        let mut reasons = Vec::new();
        eligible.clear();
        ws.group_room.clear();
        {
            let stored = history.as_deref().map(|h| h.events.iter()).into_iter().flatten();
            let check = ContactCheck::new(
                &catalog.contact,
                now,
                &catalog.channels[placement.channel],
                stored.chain(profile.supplied),
                profile.purchases,
            );
            let trivial = check.is_trivial();
            for (local, &offer) in placement.offers.iter().enumerate() {
                let o = &catalog.offers[offer];
                let excluded = gate(catalog, offer, placement.channel, now, profile.consents)
                    .or_else(|| profile.exclude.contains(&o.id.as_str()).then_some(Reason::Excluded))
                    .or_else(|| (!rule_holds(local)).then(|| Reason::Rule { clause: rule_clause(local) }))
                    .or_else(|| {
                        slotting
                            .on_page
                            .iter()
                            .find(|(chosen, _)| *chosen == offer)
                            .map(|&(_, on)| Reason::AlreadyOnPage { placement: catalog.placements[on].id.clone() })
                    })
                    .or_else(|| {
                        if trivial {
                            return None;
                        }
                        let group = o.group.map(|g| catalog.groups[g].as_str());
                        check.exclusion(&o.id, group, o.product.as_deref()).map(Reason::Contact)
                    })
                    .or_else(|| self.budget_exclusion(offer, now, slotting.shared_budgets));
                match excluded {
                    None => eligible.push(local),
                    Some(reason) if profile.explain => reasons.push((local, reason)),
                    Some(_) => {}
                }
            }
            for (group, room) in check.group_room() {
                if let Some(g) = catalog.groups.iter().position(|x| x == group) {
                    ws.group_room.push((g, room));
                }
            }
        }
        ws.group_limit = catalog.contact.max_per_group;
        ws.page_groups.clear();
        ws.page_groups.extend(slotting.on_page.iter().filter_map(|&(o, _)| catalog.offers[o].group));
        // Budgets are taken after choosing; an offer whose budget ran out meanwhile is
        // dropped and the slots chosen again.
        loop {
            if slotting.by_value {
                choose_by_value(slotting.view, eligible, placement.slots, rng, ws);
            } else if let Some(prices) = slotting.prices {
                // A linear policy's mean is theta'x, computed for the batch's block.
                let model = slotting.view.model;
                let mean = |i: usize| profile.linear.map_or_else(|| model.mean(i, &[]), |linear| linear(i).0);
                choose_by_price(slotting.view, eligible, placement.slots, prices, slotting.row_key, &mean, rng, ws);
            } else if let Some(linear) = profile.linear {
                let view = slotting.view;
                choose_with(view, eligible, placement.slots, profile.propensities, rng, ws, |scores, laws, rng| {
                    view.model.score_with(eligible, view.scale, linear, rng, scores, laws)
                });
            } else {
                choose(slotting.view, profile.features, eligible, placement.slots, profile.propensities, rng, ws);
            }
            if slotting.shared_budgets.is_some() {
                break;
            }
            let Some((local, exclusion)) = self.take_budgets(p, &ws.picks, now, slotting.quota) else { break };
            eligible.retain(|&l| l != local);
            if profile.explain {
                reasons.push((local, Reason::Contact(exclusion)));
            }
        }
        if let Some(h) = history {
            for pick in &ws.picks {
                let event = crate::contact::shown(
                    now,
                    &self.offer_names[placement.offers[pick.local]],
                    &self.channel_names[placement.channel],
                    catalog.offers[placement.offers[pick.local]].group.map(|g| &self.group_names[g]),
                    slotting.decision_id,
                );
                h.push(event, catalog.contact.horizon(), usize::MAX);
            }
        }
        reasons
    }

    fn budget_exclusion(&self, offer: usize, now: f64, shared: Option<&[(usize, u64)]>) -> Option<Reason> {
        let budget = self.budgets[offer].as_ref()?;
        let (used, allowed) = match shared {
            Some(used) => (used.iter().find(|(o, _)| *o == offer).map_or(0, |&(_, n)| n), budget.allowed(now)),
            None => budget.usage(now),
        };
        (used >= allowed).then_some(Reason::Contact(Exclusion::Budget { used, allowed }))
    }

    /// Takes one impression from each pick's budget (and quota); on the first refusal gives
    /// back what this call took and returns the refused offer (local index) with its usage.
    fn take_budgets(
        &self,
        p: usize,
        picks: &[super::Pick],
        now: f64,
        quota: Option<&[AtomicU64]>,
    ) -> Option<(usize, Exclusion)> {
        let offers = &self.catalog.placements[p].offers;
        let mut taken = Vec::new();
        let give_back = |taken: &[(usize, &crate::contact::Budget)]| {
            for &(local, budget) in taken {
                budget.give_back(now);
                if let Some(q) = quota {
                    q[local].fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        for pick in picks {
            let Some(budget) = self.budgets[offers[pick.local]].as_ref() else { continue };
            if budget.spec.counts != Counts::Impressions {
                continue;
            }
            if let Some(q) = quota
                && q[pick.local].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err()
            {
                give_back(&taken);
                return Some((pick.local, Exclusion::BudgetShare));
            }
            match budget.try_take(now) {
                Ok(()) => taken.push((pick.local, budget)),
                Err((used, allowed)) => {
                    if let Some(q) = quota {
                        q[pick.local].fetch_add(1, Ordering::Relaxed);
                    }
                    give_back(&taken);
                    return Some((pick.local, Exclusion::Budget { used, allowed }));
                }
            }
        }
        None
    }
}
