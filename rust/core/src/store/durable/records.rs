//! What the journal and snapshots hold: state changes by effect, keyed by ids (not catalog
//! indices), so they replay onto the catalog the engine restarts with.

use serde::{Deserialize, Serialize};

use crate::contact::ContactEvent;
use crate::engine::{Event, ProfileWrite};
use crate::store::{Layout, StoredProfile};
use crate::triggers::{Delivery, HistoryEntry, TimersRecord};

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
    /// Profile writes that were accepted, by feature name, at `time`.
    Profiles {
        time: f64,
        rows: Vec<ProfileWrite>,
    },
    /// Events that were applied (duplicates and rejected ones are not journaled), and the
    /// server time they touched their profiles at (-inf on a simulated clock).
    Events {
        touched: f64,
        events: Vec<Event>,
    },
    /// A profile erased, with its history and pending decisions.
    ProfileDeleted(String),
    /// A trigger instance ended (fired into a delivery, or why not).
    TriggerEnded {
        instance: u64,
        profile: String,
        entry: HistoryEntry,
        delivery: Option<Delivery>,
    },
    /// Quiet hours moved an instance's fire time.
    TriggerRescheduled {
        instance: u64,
        fire_at: f64,
    },
    DeliveryAcked(Vec<u64>),
    /// A delivery never acknowledged: its decision's reservations were given back.
    DeliveryReleased {
        decision_id: u64,
        profile: String,
        entry: HistoryEntry,
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
    /// The layout `profiles` are written in, and the profiles, least recently used first.
    pub profile_layout: Option<Layout>,
    pub profiles: Vec<(String, StoredProfile)>,
    /// Trigger instances, deliveries, entry times and outcomes.
    pub triggers: TimersRecord,
}

/// A version 1 snapshot: everything but profiles.
#[derive(Debug, Deserialize)]
pub struct SnapshotV1 {
    pub format: String,
    pub version: u32,
    pub generation: u64,
    pub next_id: u64,
    pub policy_state: String,
    pub pending: Vec<PendingRecord>,
    pub contacts: Vec<(String, Vec<ContactEvent>)>,
    pub budgets: Vec<(String, i64, u64)>,
}

impl From<SnapshotV1> for Snapshot {
    fn from(v1: SnapshotV1) -> Self {
        Self {
            format: v1.format,
            version: v1.version,
            generation: v1.generation,
            next_id: v1.next_id,
            policy_state: v1.policy_state,
            pending: v1.pending,
            contacts: v1.contacts,
            budgets: v1.budgets,
            profile_layout: None,
            profiles: Vec::new(),
            triggers: TimersRecord::default(),
        }
    }
}

pub const SNAPSHOT_FORMAT: &str = "decision-engine/snapshot";
pub const SNAPSHOT_VERSION: u32 = 2;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("records serialize")
}
