//! One profile: one placement, or several placements of a page decided together.

use std::sync::Arc;

use super::{Engine, Loaded, Reason};
use crate::arbitrate::{Profile, Slotting, Workspace};
use crate::catalog::Catalog;
use crate::contact::ContactEvent;
use crate::contact::History;
use crate::error::{Error, Result};
use crate::experiment::Treatment;
use crate::limits;
use crate::store::pending::{NO_OFFER, PendingBatch};
use crate::store::shared::PendingRecord;

/// Where a decision reserves its contacts, budget units and pending record.
pub(super) enum Reserve<'r> {
    /// The engine's own contact store, budgets and pending decisions.
    Local,
    /// A shared store's: the profile's history as read from it (pushed onto), the units
    /// used of each budget (by catalog offer), and the records to commit.
    Shared { history: Option<&'r mut History>, used: &'r [(usize, u64)], records: &'r mut Vec<PendingRecord> },
}

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
        if let Some(shared) = &self.shared {
            return self.decide_shared(shared, request);
        }
        self.decide_page_with(request, Reserve::Local)
    }

    /// Decides a page, reserving contacts, budget units and the pending decisions where
    /// `reserve` says.
    pub(super) fn decide_page_with(&self, request: &DecideRequest<'_>, reserve: Reserve<'_>) -> Result<Vec<Decision>> {
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
        let local = matches!(reserve, Reserve::Local);
        let mut shard = request.profile_id.filter(|_| local).map(|id| (id, self.contacts.lock(id)));
        let (mut history, shared_budgets, mut records) = match reserve {
            Reserve::Local => {
                (shard.as_mut().map(|(id, guard)| guard.entry((*id).to_owned()).or_default()), None, None)
            }
            Reserve::Shared { history, used, records } => (history, Some(used), Some(records)),
        };

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
                let slotting = Slotting {
                    view,
                    decision_id,
                    on_page: &on_page,
                    by_value,
                    prices: None,
                    row_key: 0,
                    quota: None,
                    shared_budgets,
                };
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
            let mut decision =
                self.record(&loaded, (p, set, variant), decision_id, &ws, reasons, request, records.as_deref_mut())?;
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

    #[expect(clippy::too_many_arguments, reason = "one decision's parts, kept apart for the two stores")]
    fn record(
        &self,
        loaded: &Arc<Loaded>,
        (p, set, variant): (usize, usize, Option<(usize, usize)>),
        decision_id: u64,
        ws: &Workspace,
        reasons: Vec<(usize, Reason)>,
        request: &DecideRequest<'_>,
        records: Option<&mut Vec<PendingRecord>>,
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
        let columns = &loaded.arm_sets[set].columns;
        let context: Vec<f32> = columns.iter().map(|&c| request.features[c]).collect();
        match records {
            // A shared store commits the record itself (nothing shown: nothing to commit).
            Some(records) if !ws.picks.is_empty() => records.push(loaded.pending_record(
                (p, set, variant),
                decision_id,
                &ws.picks,
                request.profile_id,
                request.now,
                context,
            )),
            Some(_) => {}
            None => {
                let profiles = request.profile_id.map(|id| vec![Arc::<str>::from(id)]).unwrap_or_default();
                let batch = PendingBatch::new(Arc::clone(loaded), p, placement.slots, shown)
                    .with_arm_set(set)
                    .with_context(profiles, request.now)
                    .with_contexts(context, columns.len());
                self.remember(decision_id, batch)?;
            }
        }
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
