//! What the journal and snapshots hold: state changes by effect, keyed by ids (not catalog
//! indices), so they replay onto the catalog the engine restarts with.

use serde::{Deserialize, Serialize};

use crate::contact::ContactEvent;

/// Decisions awaiting outcomes: one decision or a batch with consecutive ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRecord {
    pub first_id: u64,
    pub placement: String,
    /// (experiment, group) whose own policy made the decisions.
    pub variant: Option<(String, String)>,
    /// The policy as JSON (its serde form is a flattened map, which postcard cannot write).
    pub policy: String,
    /// The ids of the offers shown: `shown` indexes into this.
    pub offer_ids: Vec<String>,
    pub slots: usize,
    /// `rows x slots`, `u32::MAX` for an empty slot.
    pub shown: Vec<u32>,
    /// `rows x slots` outcomes already reported (empty: none).
    pub reported: Vec<bool>,
    /// One per row, or none.
    pub profiles: Vec<String>,
    pub time: f64,
    /// `rows x width` features a contextual policy read.
    pub contexts: Vec<f32>,
    pub width: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Record {
    /// Decisions were made: their pending record, contact reservations and budget units.
    Decided(PendingRecord),
    Outcome {
        decision_id: u64,
        offer: Option<String>,
        reward: f64,
        dismissed: bool,
    },
    Released {
        decision_id: u64,
    },
    /// A contact reported from elsewhere.
    Contact {
        profile: String,
        event: ContactEvent,
    },
}

/// Everything the engine holds, at one moment.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: String,
    pub version: u32,
    /// The journal that continues this snapshot.
    pub generation: u64,
    pub next_id: u64,
    /// The policy-state JSON of [`crate::Engine::save_policy_state`].
    pub policy_state: String,
    pub pending: Vec<PendingRecord>,
    pub contacts: Vec<(String, Vec<ContactEvent>)>,
    /// (offer id, window index, units used).
    pub budgets: Vec<(String, i64, u64)>,
}

pub const SNAPSHOT_FORMAT: &str = "decision-engine/snapshot";
pub const SNAPSHOT_VERSION: u32 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("records serialize")
}
