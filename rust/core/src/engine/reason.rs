//! Why an offer of a placement was not chosen, for `explain`.

use std::fmt;

use crate::contact::{ContactKind, Exclusion};

#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Outside its active window at decision time.
    NotYetActive,
    Expired,
    /// The profile has not consented to the channel the offer needs.
    NoConsent {
        channel: String,
    },
    /// The eligibility rule is false; `clause` is the first false clause of a top-level `&&`.
    Rule {
        clause: String,
    },
    /// Another offer of the same exclusion group took a slot.
    GroupTaken {
        group: String,
        by: String,
    },
    /// Eligible, but other offers scored higher and filled the slots.
    Outranked {
        score: f64,
    },
    /// Chosen already for an earlier placement of the same page.
    AlreadyOnPage {
        placement: String,
    },
    /// Ruled out by the contact policy: a cap, a cooldown, a purchase, a budget.
    Contact(Exclusion),
    /// Left out by the caller (a shared store's budget ran out, or it is unreachable and a
    /// cap over this offer fails closed).
    Excluded,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotYetActive => f.write_str("inactive: its active window has not started"),
            Self::Excluded => f.write_str("excluded by the caller"),
            Self::Expired => f.write_str("inactive: its active window has ended"),
            Self::NoConsent { channel } => write!(f, "no consent for channel '{channel}'"),
            Self::Rule { clause } => write!(f, "rule: `{clause}` is false"),
            Self::GroupTaken { group, by } => {
                write!(f, "exclusion group '{group}' already filled by '{by}'")
            }
            Self::Outranked { score } => write!(f, "outranked (score {score:.6})"),
            Self::AlreadyOnPage { placement } => write!(f, "already chosen for placement '{placement}' on this page"),
            Self::Contact(exclusion) => write!(f, "contact policy: {exclusion}"),
        }
    }
}

/// Seconds as the catalog writes durations: `1d`, `36h`, `90s`.
pub fn duration(seconds: f64) -> String {
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
        }
    }
}
