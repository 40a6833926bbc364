//! Per-profile contact history: bounded, expiring, sharded so decisions for different
//! profiles do not contend.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ContactKind {
    Shown,
    Converted,
    Dismissed,
}

/// One contact. Names rather than catalog indices, so history survives catalog reloads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContactEvent {
    pub time: f64,
    pub offer: Arc<str>,
    pub channel: Arc<str>,
    pub group: Option<Arc<str>>,
    pub kind: ContactKind,
    /// The decision that reserved a `Shown` event (0 when reported by a caller).
    pub decision_id: u64,
}

/// A profile's recent contacts, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub events: VecDeque<ContactEvent>,
}

impl History {
    /// Adds an event, dropping what is older than `horizon` and the oldest beyond `max_events`.
    pub fn push(&mut self, event: ContactEvent, horizon: f64, max_events: usize) {
        let cutoff = event.time - horizon;
        while self.events.front().is_some_and(|e| e.time < cutoff) {
            self.events.pop_front();
        }
        self.events.push_back(event);
        while self.events.len() > max_events {
            self.events.pop_front();
        }
    }

    /// Removes the `Shown` reservations a decision made; returns how many.
    pub fn release(&mut self, decision_id: u64) -> usize {
        let before = self.events.len();
        self.events.retain(|e| !(e.kind == ContactKind::Shown && e.decision_id == decision_id));
        before - self.events.len()
    }
}

const SHARDS: usize = 64;

pub struct ContactStore {
    shards: Vec<Mutex<HashMap<String, History>>>,
    hasher: RandomState,
    pub max_events: usize,
}

impl ContactStore {
    pub fn new(max_events: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            max_events,
        }
    }

    /// Locks the shard holding `profile`: hold it from checking caps to reserving, so two
    /// decisions for one profile cannot both pass a cap with one slot left.
    pub fn lock(&self, profile: &str) -> MutexGuard<'_, HashMap<String, History>> {
        let shard = (self.hasher.hash_one(profile) as usize) % SHARDS;
        self.shards[shard].lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn history(&self, profile: &str) -> History {
        self.lock(profile).get(profile).cloned().unwrap_or_default()
    }

    pub fn record(&self, profile: &str, event: ContactEvent, horizon: f64) {
        let mut shard = self.lock(profile);
        shard.entry(profile.to_owned()).or_default().push(event, horizon, self.max_events);
    }

    /// Every profile's history (for a snapshot).
    pub fn export(&self) -> Vec<(String, Vec<ContactEvent>)> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            all.extend(shard.iter().map(|(id, h)| (id.clone(), h.events.iter().cloned().collect())));
        }
        all
    }

    /// Replaces a profile's history (restoring a snapshot).
    pub fn restore(&self, profile: String, events: Vec<ContactEvent>) {
        let mut shard = self.lock(&profile);
        shard.insert(profile, History { events: events.into() });
    }

    pub fn profiles(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }
}
