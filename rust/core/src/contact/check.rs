//! Which offers a profile's contact history rules out, and why.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::policy::{Cap, CapScope, ContactPolicy};
use super::{ContactEvent, ContactKind};

#[derive(Debug, Clone, PartialEq)]
pub enum Exclusion {
    /// `count` contacts within `window` seconds reached the cap's `max`.
    Cap { cap: String, window: f64, count: u32, max: u32 },
    /// Converted on or dismissed this offer `ago` seconds back, within the cooldown.
    Cooldown { after: ContactKind, ago: f64, cooldown: f64 },
    /// The profile already bought the offer's product.
    Purchased { product: String },
    /// The offer's volume budget is used up for now.
    Budget { used: u64, allowed: u64 },
    /// This partition of a campaign took its share of the offer's budget.
    BudgetShare,
}

/// Seconds as the catalog writes durations: `1d`, `36h`, `90s`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as i64;
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= size && s % size == 0 {
            return format!("{}{unit}", s / size);
        }
    }
    if s >= 3_600 { format!("{:.1}h", seconds / 3_600.0) } else { format!("{s}s") }
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cap { cap, window, count, max } => {
                write!(f, "{cap}: {count} contact(s) in the last {} (max {max})", duration(*window))
            }
            Self::Cooldown { after, ago, cooldown } => {
                let event = if *after == ContactKind::Converted { "conversion" } else { "dismissal" };
                write!(f, "cooldown after {event}: {} ago, cooldown {}", duration(*ago), duration(*cooldown))
            }
            Self::Purchased { product } => write!(f, "already bought product '{product}'"),
            Self::Budget { used, allowed } => write!(f, "budget: {used} used of {allowed} allowed so far"),
            Self::BudgetShare => write!(f, "budget: this partition's share is used up"),
        }
    }
}

/// The history of one profile, summarised once per decision against the policy.
pub struct ContactCheck<'a> {
    policy: &'a ContactPolicy,
    now: f64,
    channel: &'a str,
    events: Vec<&'a ContactEvent>,
    purchases: &'a [&'a str],
    /// Per cap: the count of contacts in its window that it applies to (scope offer: unused).
    counts: Vec<u32>,
    /// Per offer in the history: what its per-offer caps and cooldowns need, summarised once
    /// so checking a hundred offers does not walk the history a hundred times.
    offers: HashMap<&'a str, OfferHistory>,
}

#[derive(Default)]
struct OfferHistory {
    /// Shown contacts within each per-offer cap's window, in cap order.
    shown: Vec<u32>,
    last_converted: Option<f64>,
    last_dismissed: Option<f64>,
}

impl<'a> ContactCheck<'a> {
    /// `channel` is the decision's channel; `events` the stored and request-supplied history.
    pub fn new(
        policy: &'a ContactPolicy,
        now: f64,
        channel: &'a str,
        events: impl Iterator<Item = &'a ContactEvent>,
        purchases: &'a [&'a str],
    ) -> Self {
        // Events stamped later than `now` (another server's clock, a reservation made a moment
        // ago) still count: a cap must hold whatever the order the decisions arrive in.
        let events: Vec<&ContactEvent> = events.collect();
        let counts = policy
            .caps
            .iter()
            .map(|cap| {
                let recent = events.iter().copied().filter(|e| shown_within(e, cap, now));
                match &cap.scope {
                    CapScope::Offer => 0,
                    CapScope::All => messages(recent),
                    CapScope::Channel(c) => messages(recent.filter(|e| &*e.channel == c)),
                    CapScope::Group(g) => recent.filter(|e| e.group.as_deref() == Some(g)).count() as u32,
                }
            })
            .collect();
        let mut offers: HashMap<&str, OfferHistory> = HashMap::new();
        let offer_caps: Vec<&Cap> = policy.caps.iter().filter(|c| c.scope == CapScope::Offer).collect();
        for e in &events {
            let entry = offers.entry(&*e.offer).or_default();
            entry.shown.resize(offer_caps.len(), 0);
            let latest = |t: &mut Option<f64>| *t = Some(t.map_or(e.time, |x| x.max(e.time)));
            match e.kind {
                ContactKind::Shown => {
                    for (count, cap) in entry.shown.iter_mut().zip(&offer_caps) {
                        *count += u32::from(shown_within(e, cap, now));
                    }
                }
                ContactKind::Converted => latest(&mut entry.last_converted),
                ContactKind::Dismissed => latest(&mut entry.last_dismissed),
            }
        }
        Self { policy, now, channel, events, purchases, counts, offers }
    }

    /// Whether history is empty and no cap could bind: lets the hot path skip all checks.
    pub fn is_trivial(&self) -> bool {
        self.events.is_empty() && self.purchases.is_empty()
    }

    /// Per group cap: the group's name and how many more of its offers may be shown now.
    pub fn group_room(&self) -> impl Iterator<Item = (&str, usize)> {
        self.policy.caps.iter().zip(&self.counts).filter_map(|(cap, &count)| match &cap.scope {
            CapScope::Group(g) => Some((g.as_str(), cap.max.saturating_sub(count) as usize)),
            _ => None,
        })
    }

    /// Why the offer is out for this profile now, if it is.
    pub fn exclusion(&self, offer: &str, group: Option<&str>, product: Option<&str>) -> Option<Exclusion> {
        if self.policy.suppress_purchased
            && let Some(p) = product
            && self.purchases.contains(&p)
        {
            return Some(Exclusion::Purchased { product: p.to_owned() });
        }
        let history = self.offers.get(offer);
        let cooldowns = [
            (ContactKind::Converted, self.policy.cooldown_after_conversion, history.and_then(|h| h.last_converted)),
            (ContactKind::Dismissed, self.policy.cooldown_after_dismissal, history.and_then(|h| h.last_dismissed)),
        ];
        for (kind, cooldown, last) in cooldowns {
            if let (Some(cooldown), Some(t)) = (cooldown, last)
                && self.now - t < cooldown
            {
                return Some(Exclusion::Cooldown { after: kind, ago: self.now - t, cooldown });
            }
        }
        let mut offer_caps = 0;
        for (cap, &count) in self.policy.caps.iter().zip(&self.counts) {
            let count = match &cap.scope {
                CapScope::Offer => {
                    offer_caps += 1;
                    history.map_or(0, |h| h.shown[offer_caps - 1])
                }
                CapScope::Channel(c) if c != self.channel => continue,
                CapScope::Group(g) if group != Some(g.as_str()) => continue,
                _ => count,
            };
            if count >= cap.max {
                return Some(Exclusion::Cap { cap: cap.label(), window: cap.window, count, max: cap.max });
            }
        }
        None
    }
}

/// Channel and all-channel caps count messages: one decision (one email, one push) is one
/// contact however many slots it filled. Contacts reported by callers count one each.
fn messages<'e>(events: impl Iterator<Item = &'e ContactEvent>) -> u32 {
    let mut decisions: Vec<u64> = Vec::new();
    let mut external = 0;
    for e in events {
        if e.decision_id == 0 {
            external += 1;
        } else if !decisions.contains(&e.decision_id) {
            decisions.push(e.decision_id);
        }
    }
    (decisions.len() + external) as u32
}

fn shown_within(event: &ContactEvent, cap: &Cap, now: f64) -> bool {
    event.kind == ContactKind::Shown && now - event.time < cap.window
}

/// A `Shown` event for a decision.
pub fn shown(
    time: f64,
    offer: &Arc<str>,
    channel: &Arc<str>,
    group: Option<&Arc<str>>,
    decision_id: u64,
) -> ContactEvent {
    ContactEvent {
        time,
        offer: Arc::clone(offer),
        channel: Arc::clone(channel),
        group: group.map(Arc::clone),
        kind: ContactKind::Shown,
        decision_id,
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
