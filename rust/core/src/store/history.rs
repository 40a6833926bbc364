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
    /// Profiles kept per shard (`max_profiles / SHARDS`).
    per_shard: usize,
}

impl ContactStore {
    pub fn new(max_events: usize, max_profiles: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            max_events,
            per_shard: max_profiles.div_ceil(SHARDS).max(1),
        }
    }

    /// After a decision for `profile`, with its shard locked: a profile with an empty history
    /// is not kept, and a shard past its bound lets go of profiles idle for the whole contact
    /// horizon, then of the longest idle (whose caps then count only what requests supply).
    pub fn tidy(&self, shard: &mut HashMap<String, History>, profile: &str, now: f64, horizon: f64) {
        if shard.get(profile).is_some_and(|h| h.events.is_empty()) {
            shard.remove(profile);
        }
        if shard.len() <= self.per_shard {
            return;
        }
        let newest = |h: &History| h.events.back().map_or(f64::NEG_INFINITY, |e| e.time);
        shard.retain(|_, h| newest(h) >= now - horizon);
        if shard.len() > self.per_shard {
            // Down to 90% of the bound at once, so a full shard is not swept on every decision.
            let mut times: Vec<f64> = shard.values().map(newest).collect();
            let drop = shard.len() - self.per_shard * 9 / 10;
            let (_, cut, _) = times.select_nth_unstable_by(drop - 1, f64::total_cmp);
            let cut = *cut;
            let mut left = drop;
            shard.retain(|id, h| {
                let go = left > 0 && newest(h) <= cut && id != profile;
                left -= usize::from(go);
                !go
            });
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
    /// Forgets a profile's history; true when there was one.
    pub fn remove(&self, profile: &str) -> bool {
        self.lock(profile).remove(profile).is_some()
    }

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

    #[cfg(test)]
    pub fn profiles(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(time: f64) -> ContactEvent {
        ContactEvent {
            time,
            offer: "o".into(),
            channel: "web".into(),
            group: None,
            kind: ContactKind::Shown,
            decision_id: 1,
        }
    }

    #[test]
    fn profiles_are_bounded_and_empty_ones_not_kept() {
        let store = ContactStore::new(8, SHARDS * 10);
        for i in 0..5_000 {
            let id = format!("p{i}");
            store.record(&id, shown(f64::from(i)), 1e9);
            let mut shard = store.lock(&id);
            store.tidy(&mut shard, &id, f64::from(i), 1e9);
        }
        let kept = store.profiles();
        assert!((SHARDS * 5..=SHARDS * 10).contains(&kept), "{kept}");
        assert_eq!(store.history("p4999").events.len(), 1, "the newest profile stays");
        assert!(store.history("p0").events.is_empty(), "the longest idle went first");
        // an idle profile past the horizon goes at the next sweep; an empty one at once
        let mut shard = store.lock("p4999");
        shard.insert("empty".into(), History::default());
        store.tidy(&mut shard, "empty", 5_000.0, 1e9);
        assert!(!shard.contains_key("empty"));
    }
}
