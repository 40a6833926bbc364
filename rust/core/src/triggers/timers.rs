//! Trigger instances waiting to fire, decisions waiting for their acknowledgement, and what
//! became of each instance, per profile. Everything bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::num::NonZeroUsize;

use lru::LruCache;
use serde::{Deserialize, Serialize};

/// What starting an instance found (both stores).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Started {
    Started,
    Exists,
    /// Entered at this time, within the re-entry window.
    Reentry(f64),
    MaxLive,
}

/// Instances waiting to fire; past it a new instance is refused (and says so).
pub const MAX_TIMERS: usize = 5_000_000;
/// Triggered decisions waiting for their acknowledgement.
pub const MAX_DELIVERIES: usize = 1_000_000;
/// Outcomes remembered per profile, and profiles remembered (least recently noted go first).
pub const HISTORY_PER_PROFILE: usize = 64;
pub const HISTORY_PROFILES: usize = 200_000;
/// (trigger, profile) entry times kept for re-entry windows.
pub const MAX_ENTRIES: usize = 2_000_000;

/// One trigger instance: started by an event, due at `fire_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: u64,
    pub trigger: String,
    pub profile: String,
    /// The trigger's key value (e.g. the cart id), or empty.
    pub key: String,
    pub fire_at: f64,
    /// The fire time before quiet hours moved it (a queued instance's ttl counts from here).
    pub scheduled_for: f64,
}

/// A triggered decision waiting for a subscriber's acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub decision_id: u64,
    pub trigger: String,
    pub profile: String,
    pub key: String,
    pub placement: String,
    pub channel: String,
    /// (offer id, score, propensity) in slot order.
    pub offers: Vec<(String, f64, f64)>,
    pub decided_at: f64,
    /// Unacknowledged by then, it is released.
    pub expires_at: f64,
    /// Deliveries so far, and when it may be delivered again; a restart makes every
    /// delivery visible at once (at least once).
    #[serde(skip)]
    pub attempt: u32,
    #[serde(skip)]
    pub visible_at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub trigger: String,
    pub key: String,
    pub time: f64,
    /// delivered, acknowledged, cancelled, discarded_quiet_hours, expired, capped,
    /// no_offer, filtered, reentry, max_live, released, refused
    pub outcome: String,
    pub detail: String,
    pub decision_id: u64,
}

/// The timers' state for a snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimersRecord {
    pub instances: Vec<Instance>,
    pub deliveries: Vec<Delivery>,
    pub entries: Vec<(String, String, f64)>,
    pub history: Vec<(String, Vec<HistoryEntry>)>,
}

pub struct Timers {
    instances: HashMap<u64, Instance>,
    /// (fire time in ms, instance id), soonest first.
    due: BTreeSet<(i64, u64)>,
    by_profile: HashMap<String, Vec<u64>>,
    /// (trigger, profile) -> latest entry time.
    entries: HashMap<(String, String), f64>,
    deliveries: BTreeMap<u64, Delivery>,
    history: LruCache<String, VecDeque<HistoryEntry>>,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            instances: HashMap::new(),
            due: BTreeSet::new(),
            by_profile: HashMap::new(),
            entries: HashMap::new(),
            deliveries: BTreeMap::new(),
            history: LruCache::new(NonZeroUsize::new(HISTORY_PROFILES).expect("non-zero")),
        }
    }
}

fn millis(t: f64) -> i64 {
    (t * 1_000.0).floor() as i64
}

impl Timers {
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    pub fn deliveries(&self) -> usize {
        self.deliveries.len()
    }

    /// Adds an instance; false when the store is full.
    pub fn schedule(&mut self, instance: Instance) -> bool {
        if self.instances.len() >= MAX_TIMERS {
            return false;
        }
        self.due.insert((millis(instance.fire_at), instance.id));
        self.by_profile.entry(instance.profile.clone()).or_default().push(instance.id);
        self.instances.insert(instance.id, instance);
        true
    }

    pub fn contains(&self, id: u64) -> bool {
        self.instances.contains_key(&id)
    }

    /// Live instances of `trigger` for `profile` with `key`.
    pub fn live(&self, profile: &str, trigger: &str, key: &str) -> usize {
        let ids = self.by_profile.get(profile).map_or(&[][..], Vec::as_slice);
        ids.iter().filter_map(|id| self.instances.get(id)).filter(|i| i.trigger == trigger && i.key == key).count()
    }

    pub fn last_entry(&self, trigger: &str, profile: &str) -> Option<f64> {
        self.entries.get(&(trigger.to_owned(), profile.to_owned())).copied()
    }

    pub fn enter(&mut self, trigger: &str, profile: &str, time: f64) {
        if self.entries.len() >= MAX_ENTRIES {
            // Keep the newer half: the older entries' windows have most likely passed.
            let mut times: Vec<f64> = self.entries.values().copied().collect();
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            self.entries.retain(|_, t| *t > median);
            if self.entries.len() >= MAX_ENTRIES {
                // All at one time: no older half to keep apart.
                self.entries.clear();
            }
        }
        let entry = self.entries.entry((trigger.to_owned(), profile.to_owned())).or_insert(time);
        *entry = entry.max(time);
    }

    /// Starts an instance entered at `entered` unless it exists or the re-entry window or
    /// `max_live` refuses it (the Redis store's `start_instance` decides the same way).
    pub fn start(&mut self, instance: Instance, entered: f64, reentry: f64, max_live: usize) -> Option<Started> {
        if self.contains(instance.id) {
            return Some(Started::Exists);
        }
        if reentry > 0.0
            && let Some(last) = self.last_entry(&instance.trigger, &instance.profile)
            && entered < last + reentry
        {
            return Some(Started::Reentry(last));
        }
        if self.live(&instance.profile, &instance.trigger, &instance.key) >= max_live {
            return Some(Started::MaxLive);
        }
        let (trigger, profile) = (instance.trigger.clone(), instance.profile.clone());
        if !self.schedule(instance) {
            return None;
        }
        self.enter(&trigger, &profile, entered);
        Some(Started::Started)
    }

    /// Takes an instance out (it fired, or it ended).
    pub fn remove(&mut self, id: u64) -> Option<Instance> {
        let instance = self.instances.remove(&id)?;
        self.due.remove(&(millis(instance.fire_at), id));
        if let Some(ids) = self.by_profile.get_mut(&instance.profile) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_profile.remove(&instance.profile);
            }
        }
        Some(instance)
    }

    /// Takes out the profile's instances of `trigger` (with `key`, when given).
    pub fn cancel(&mut self, profile: &str, trigger: &str, key: Option<&str>) -> Vec<Instance> {
        let ids: Vec<u64> = self
            .by_profile
            .get(profile)
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|id| {
                        self.instances.get(id).is_some_and(|i| i.trigger == trigger && key.is_none_or(|k| i.key == k))
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// The instances due at `now`, soonest first, taken out.
    pub fn take_due(&mut self, now: f64, max: usize) -> Vec<Instance> {
        let ids: Vec<u64> = self.due.range(..=(millis(now), u64::MAX)).take(max).map(|&(_, id)| id).collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    pub fn deliver(&mut self, delivery: Delivery) -> bool {
        if self.deliveries.len() >= MAX_DELIVERIES {
            return false;
        }
        self.deliveries.insert(delivery.decision_id, delivery);
        true
    }

    /// Up to `max` deliveries for `channel` that may go out at `now`; they are in flight
    /// until `now + visibility`.
    pub fn poll(&mut self, channel: &str, max: usize, visibility: f64, now: f64) -> Vec<Delivery> {
        let mut out = Vec::new();
        for delivery in self.deliveries.values_mut() {
            if out.len() >= max {
                break;
            }
            if delivery.channel == channel && delivery.visible_at <= now && delivery.expires_at > now {
                delivery.attempt += 1;
                delivery.visible_at = now + visibility;
                out.push(delivery.clone());
            }
        }
        out
    }

    pub fn ack(&mut self, decision_id: u64) -> Option<Delivery> {
        self.deliveries.remove(&decision_id)
    }

    /// Deliveries past their time to live, taken out.
    pub fn take_expired(&mut self, now: f64) -> Vec<Delivery> {
        let ids: Vec<u64> = self.deliveries.values().filter(|d| d.expires_at <= now).map(|d| d.decision_id).collect();
        ids.into_iter().filter_map(|id| self.deliveries.remove(&id)).collect()
    }

    pub fn note(&mut self, profile: &str, entry: HistoryEntry) {
        let entries = self.history.get_or_insert_mut(profile.to_owned(), VecDeque::new);
        if entries.len() >= HISTORY_PER_PROFILE {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub fn history(&self, profile: &str) -> Vec<HistoryEntry> {
        self.history.peek(profile).map(|h| h.iter().cloned().collect()).unwrap_or_default()
    }

    /// Forgets everything of a profile; returns its deliveries (to release them).
    pub fn erase(&mut self, profile: &str) -> Vec<Delivery> {
        for id in self.by_profile.get(profile).cloned().unwrap_or_default() {
            self.remove(id);
        }
        self.entries.retain(|(_, p), _| p != profile);
        self.history.pop(profile);
        let ids: Vec<u64> = self.deliveries.values().filter(|d| d.profile == profile).map(|d| d.decision_id).collect();
        ids.into_iter().filter_map(|id| self.deliveries.remove(&id)).collect()
    }

    pub fn export(&self) -> TimersRecord {
        TimersRecord {
            instances: self.instances.values().cloned().collect(),
            deliveries: self.deliveries.values().cloned().collect(),
            entries: self.entries.iter().map(|((t, p), time)| (t.clone(), p.clone(), *time)).collect(),
            history: self.history.iter().rev().map(|(p, h)| (p.clone(), h.iter().cloned().collect())).collect(),
        }
    }

    pub fn restore(&mut self, record: TimersRecord) {
        for instance in record.instances {
            self.schedule(instance);
        }
        for delivery in record.deliveries {
            self.deliver(delivery);
        }
        for (trigger, profile, time) in record.entries {
            self.enter(&trigger, &profile, time);
        }
        for (profile, entries) in record.history {
            self.history.put(profile, entries.into());
        }
    }
}
