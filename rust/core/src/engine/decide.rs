//! One profile: one placement, or several placements of a page decided together.

use std::sync::Arc;

use rand::Rng;

use super::{Engine, Loaded, Reason};
use crate::arbitrate::{ArmView, Workspace, choose, choose_by_value, choose_with};
use crate::catalog::Catalog;
use crate::contact::{ContactCheck, ContactEvent, Counts, Exclusion, History};
use crate::error::{Error, Result};
use crate::experiment::Treatment;
use crate::limits;
use crate::pending::{NO_OFFER, PendingBatch};

pub struct DecideRequest<'a> {
    /// One placement, or several decided as one page: no offer twice, group limits across it.
    pub placements: &'a [&'a str],
    pub features: &'a [f32],
    /// Channel names the profile consented to.
    pub consents: &'a [&'a str],
    /// Decision time, unix seconds.
    pub now: f64,
    pub explain: bool,
    /// With an id, stored contact history applies and this decision's contacts are reserved.
    pub profile_id: Option<&'a str>,
    /// Contacts the caller knows of (from other systems), counted with the stored history.
    pub history: &'a [ContactEvent],
    /// Products the profile bought (for purchase suppression).
    pub purchases: &'a [&'a str],
    /// Offer ids to leave out of this decision.
    pub exclude: &'a [&'a str],
}

impl<'a> DecideRequest<'a> {
    /// A request for one placement with no history.
    pub fn new(placements: &'a [&'a str], features: &'a [f32], now: f64) -> Self {
        Self {
            placements,
            features,
            consents: &[],
            now,
            explain: false,
            profile_id: None,
            history: &[],
            purchases: &[],
            exclude: &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChosenOffer {
    pub offer_id: String,
    pub score: f64,
    pub propensity: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub decision_id: u64,
    pub placement: String,
    /// In slot order.
    pub offers: Vec<ChosenOffer>,
    /// With `explain`: every other offer of the placement and why it was left out, in
    /// catalog order.
    pub reasons: Vec<(String, Reason)>,
    /// (experiment, group) for every experiment of the placement the profile is in.
    pub experiments: Vec<(String, String)>,
    /// With `explain`: the offers the policy chose among, in catalog order (what off-policy
    /// evaluation needs beside the propensities).
    pub eligible: Vec<String>,
}

/// Bit `c` set when the profile consented to channel `c`.
pub(crate) fn consent_mask(catalog: &Catalog, consents: &[&str]) -> Result<u64> {
    consents.iter().try_fold(0u64, |mask, name| match catalog.channel_index(name) {
        Some(c) => Ok(mask | (1 << c)),
        None => Err(Error::InvalidInput(format!(
            "consent names unknown channel '{name}'; channels are {}",
            catalog.channels.join(", ")
        ))),
    })
}

/// Why an offer is out of a placement on `channel` before its rule is even looked at, if it is.
pub(crate) fn gate(catalog: &Catalog, offer: usize, channel: usize, now: f64, consents: u64) -> Option<Reason> {
    if catalog.consent_required[channel] && consents & (1 << channel) == 0 {
        return Some(Reason::NoConsent { channel: catalog.channels[channel].clone() });
    }
    let o = &catalog.offers[offer];
    if now < o.active_from {
        return Some(Reason::NotYetActive);
    }
    if now >= o.active_to {
        return Some(Reason::Expired);
    }
    match o.consent {
        Some(c) if consents & (1 << c) == 0 => Some(Reason::NoConsent { channel: catalog.channels[c].clone() }),
        _ => None,
    }
}

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
}

impl Loaded {
    /// (experiment, group) of every experiment of placement `p` the profile is in.
    pub(crate) fn assignments(&self, p: usize, profile_id: Option<&str>) -> Vec<(usize, usize)> {
        let Some(id) = profile_id else { return Vec::new() };
        let experiments = &self.catalog.experiments;
        experiments
            .iter()
            .enumerate()
            .filter(|(_, x)| x.applies_to(p))
            .filter_map(|(e, x)| x.group_of(id).map(|g| (e, g)))
            .collect()
    }

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
                    .or_else(|| self.budget_exclusion(offer, now));
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
            } else if let Some(linear) = profile.linear {
                let view = slotting.view;
                choose_with(view, eligible, placement.slots, profile.propensities, rng, ws, |scores, laws, rng| {
                    view.model.score_with(eligible, view.scale, linear, rng, scores, laws)
                });
            } else {
                choose(slotting.view, profile.features, eligible, placement.slots, profile.propensities, rng, ws);
            }
            let Some((local, exclusion)) = self.take_budgets(p, &ws.picks, now) else { break };
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

    fn budget_exclusion(&self, offer: usize, now: f64) -> Option<Reason> {
        let budget = self.budgets[offer].as_ref()?;
        let (used, allowed) = budget.usage(now);
        (used >= allowed).then_some(Reason::Contact(Exclusion::Budget { used, allowed }))
    }

    /// Takes one impression from each pick's budget; on the first refusal gives back what
    /// this call took and returns the refused offer (local index) with its usage.
    fn take_budgets(&self, p: usize, picks: &[crate::arbitrate::Pick], now: f64) -> Option<(usize, Exclusion)> {
        let offers = &self.catalog.placements[p].offers;
        let mut taken = Vec::new();
        for pick in picks {
            let Some(budget) = self.budgets[offers[pick.local]].as_ref() else { continue };
            if budget.spec.counts != Counts::Impressions {
                continue;
            }
            match budget.try_take(now) {
                Ok(()) => taken.push(budget),
                Err((used, allowed)) => {
                    taken.iter().for_each(|b| b.give_back(now));
                    return Some((pick.local, Exclusion::Budget { used, allowed }));
                }
            }
        }
        None
    }
}

impl Engine {
    /// Decides one placement (`request.placements` must hold exactly one).
    pub fn decide(&self, request: &DecideRequest<'_>) -> Result<Decision> {
        if request.placements.len() != 1 {
            return Err(Error::InvalidInput(format!(
                "decide takes one placement, got {}; use decide_page for several",
                request.placements.len()
            )));
        }
        Ok(self.decide_page(request)?.remove(0))
    }

    /// Decides every placement of a page in order: an offer appears at most once on the
    /// page, group limits hold across it, and caps count what earlier placements reserved.
    pub fn decide_page(&self, request: &DecideRequest<'_>) -> Result<Vec<Decision>> {
        let _gate = self.begin_change()?;
        let loaded = self.current();
        let catalog = &loaded.catalog;
        if request.placements.len() > limits::MAX_PLACEMENTS_PER_PAGE {
            return Err(Error::InvalidInput(format!(
                "a page may decide at most {} placements, got {}",
                limits::MAX_PLACEMENTS_PER_PAGE,
                request.placements.len()
            )));
        }
        let placements: Vec<usize> = request.placements.iter().map(|id| loaded.placement(id)).collect::<Result<_>>()?;
        if placements.is_empty() {
            return Err(Error::InvalidInput("a decision needs at least one placement".to_owned()));
        }
        self.clock.check(request.now)?;
        if let Some(id) = request.profile_id {
            limits::check_profile_id(id)?;
        }
        catalog.schema.check_row(request.features, None)?;
        let profile = Profile {
            features: request.features,
            now: request.now,
            consents: consent_mask(catalog, request.consents)?,
            supplied: request.history,
            purchases: request.purchases,
            exclude: request.exclude,
            explain: request.explain,
            propensities: true,
            linear: None,
        };

        // The profile's shard stays locked from checking caps to reserving contacts.
        let mut shard = request.profile_id.map(|id| (id, self.contacts.lock(id)));
        let mut history = shard.as_mut().map(|(id, guard)| guard.entry((*id).to_owned()).or_default());

        let first_id = self.allocate_ids(placements.len());
        let mut on_page = Vec::new();
        let mut decisions = Vec::with_capacity(placements.len());
        let mut values = Vec::new();
        let (mut ws, mut eligible) = (Workspace::default(), Vec::new());
        for (i, &p) in placements.iter().enumerate() {
            let decision_id = first_id + i as u64;
            let placement = &catalog.placements[p];
            placement.rules.program().eval_row(request.features, &mut values);
            let rule_holds = |local: usize| placement.rules.holds(&values, local);
            let rule_clause =
                |local: usize| placement.rules.failing_clause(&values, local).unwrap_or_default().to_owned();
            let mut rng = self.rng_for(decision_id);
            let assignments = loaded.assignments(p, request.profile_id);
            let experiments = &catalog.experiments;
            let by_value = assignments.iter().any(|&(e, g)| experiments[e].groups[g].treatment == Treatment::Default);
            let variant = assignments.iter().copied().find(|&(e, g)| experiments[e].groups[g].policy.is_some());
            let set = loaded.arm_set(p, variant);
            let reasons = loaded.with_view(set, |view| {
                let slotting = Slotting { view, decision_id, on_page: &on_page, by_value };
                loaded.decide_placement(
                    p,
                    &profile,
                    &rule_holds,
                    &rule_clause,
                    history.as_deref_mut(),
                    &slotting,
                    &mut rng,
                    &mut ws,
                    &mut eligible,
                )
            });
            let mut reasons = reasons;
            if request.explain {
                explain_losers(&loaded, p, &eligible, &ws, &mut reasons);
                reasons.sort_by_key(|(local, _)| *local);
            }
            on_page.extend(ws.picks.iter().map(|pick| (placement.offers[pick.local], p)));
            let mut decision = self.record(&loaded, (p, set), decision_id, &ws, reasons, request)?;
            if request.explain {
                decision.eligible = eligible.iter().map(|&local| loaded.offer_id(p, local).to_owned()).collect();
            }
            decision.experiments = assignments
                .iter()
                .map(|&(e, g)| (experiments[e].id.clone(), experiments[e].groups[g].name.clone()))
                .collect();
            decisions.push(decision);
        }
        if let Some((id, guard)) = shard.as_mut() {
            self.contacts.tidy(guard, id, request.now, catalog.contact.horizon());
        }
        Ok(decisions)
    }

    fn record(
        &self,
        loaded: &Arc<Loaded>,
        (p, set): (usize, usize),
        decision_id: u64,
        ws: &Workspace,
        reasons: Vec<(usize, Reason)>,
        request: &DecideRequest<'_>,
    ) -> Result<Decision> {
        let placement = &loaded.catalog.placements[p];
        let mut shown = vec![NO_OFFER; placement.slots];
        for (slot, pick) in shown.iter_mut().zip(&ws.picks) {
            *slot = pick.local as u32;
        }
        let offers = ws
            .picks
            .iter()
            .map(|pick| ChosenOffer {
                offer_id: loaded.offer_id(p, pick.local).to_owned(),
                score: pick.score,
                propensity: pick.propensity,
            })
            .collect();
        let reasons = reasons.into_iter().map(|(local, r)| (loaded.offer_id(p, local).to_owned(), r)).collect();
        let profiles = request.profile_id.map(|id| vec![Arc::<str>::from(id)]).unwrap_or_default();
        let columns = &loaded.arm_sets[set].columns;
        let context = columns.iter().map(|&c| request.features[c]).collect();
        let batch = PendingBatch::new(Arc::clone(loaded), p, placement.slots, shown)
            .with_arm_set(set)
            .with_context(profiles, request.now)
            .with_contexts(context, columns.len());
        self.remember(decision_id, batch)?;
        Ok(Decision {
            decision_id,
            placement: placement.id.clone(),
            offers,
            reasons,
            experiments: Vec::new(),
            eligible: Vec::new(),
        })
    }
}

/// Reasons for eligible offers that did not get a slot.
fn explain_losers(loaded: &Loaded, p: usize, eligible: &[usize], ws: &Workspace, reasons: &mut Vec<(usize, Reason)>) {
    let catalog = &loaded.catalog;
    for (k, &local) in eligible.iter().enumerate() {
        if ws.picks.iter().any(|pick| pick.local == local) {
            continue;
        }
        let group = loaded.groups[p][local];
        let winner = ws.picks.iter().find(|pick| group.is_some() && loaded.groups[p][pick.local] == group);
        let reason = match (group, winner) {
            (Some(g), Some(w)) => {
                Reason::GroupTaken { group: catalog.groups[g].clone(), by: loaded.offer_id(p, w.local).to_owned() }
            }
            _ => Reason::Outranked { score: ws.score_of(k) },
        };
        reasons.push((local, reason));
    }
}
