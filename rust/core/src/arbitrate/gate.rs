//! Eligibility gating: what keeps an offer out of a placement before its rule is even looked
//! at (consent, its active window).

use super::Reason;
use crate::catalog::Catalog;

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
