//! Why an offer of a placement was not chosen, for `explain`.

use std::fmt;

use crate::contact::Exclusion;

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
