//! One profile, one placement.

use std::sync::Arc;

use super::{Engine, Loaded, Reason};
use crate::arbitrate::{Workspace, choose};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::pending::{NO_OFFER, PendingBatch};

pub struct DecideRequest<'a> {
    pub placement: &'a str,
    pub features: &'a [f32],
    /// Channel names the profile consented to.
    pub consents: &'a [&'a str],
    /// Decision time, unix seconds.
    pub now: f64,
    pub explain: bool,
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

/// Why an offer is out before its rule is even looked at, if it is.
pub(crate) fn gate(catalog: &Catalog, offer: usize, now: f64, consents: u64) -> Option<Reason> {
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

impl Engine {
    pub fn decide(&self, request: &DecideRequest<'_>) -> Result<Decision> {
        let loaded = self.current();
        let catalog = &loaded.catalog;
        let p = loaded.placement(request.placement)?;
        catalog.schema.check_row(request.features, None)?;
        let consents = consent_mask(catalog, request.consents)?;
        let placement = &catalog.placements[p];

        let mut values = Vec::new();
        placement.rules.program().eval_row(request.features, &mut values);
        let mut eligible = Vec::with_capacity(placement.offers.len());
        let mut reasons = Vec::new();
        for (local, &offer) in placement.offers.iter().enumerate() {
            let excluded = gate(catalog, offer, request.now, consents).or_else(|| {
                (!placement.rules.holds(&values, local)).then(|| Reason::Rule {
                    clause: placement.rules.failing_clause(&values, local).unwrap_or_default().to_owned(),
                })
            });
            match excluded {
                None => eligible.push(local),
                Some(reason) if request.explain => reasons.push((local, reason)),
                Some(_) => {}
            }
        }

        let decision_id = self.allocate_ids(1);
        let mut rng = self.rng_for(decision_id);
        let mut ws = Workspace::default();
        loaded.with_view(p, |view| choose(view, &eligible, placement.slots, true, &mut rng, &mut ws));

        if request.explain {
            explain_losers(&loaded, p, &eligible, &ws, &mut reasons);
            reasons.sort_by_key(|(local, _)| *local);
        }
        let reasons = reasons.into_iter().map(|(local, r)| (loaded.offer_id(p, local).to_owned(), r)).collect();
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
        self.remember(decision_id, PendingBatch::new(Arc::clone(&loaded), p, placement.slots, shown));
        Ok(Decision { decision_id, placement: placement.id.clone(), offers, reasons })
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
