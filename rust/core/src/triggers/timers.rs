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
/// Trigger outcomes kept in order for a log to read ([`Timers::outcomes_after`]); the oldest go.
pub const OUTCOME_FEED: usize = 100_000;

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
    /// Per channel, (ms when it may go out again, decision id): a poll reads only what is due.
    visible: HashMap<String, BTreeSet<(i64, u64)>>,
    /// (expiry in ms, decision id), soonest first.
    expiry: BTreeSet<(i64, u64)>,
    history: LruCache<String, VecDeque<HistoryEntry>>,
    /// Every outcome noted by this process, in order: (sequence number, profile, outcome).
    feed: VecDeque<(u64, String, HistoryEntry)>,
    fed: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            instances: HashMap::new(),
            due: BTreeSet::new(),
            by_profile: HashMap::new(),
            entries: HashMap::new(),
            deliveries: BTreeMap::new(),
            visible: HashMap::new(),
            expiry: BTreeSet::new(),
            history: LruCache::new(NonZeroUsize::new(HISTORY_PROFILES).expect("non-zero")),
            feed: VecDeque::new(),
            fed: 0,
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
        let id = delivery.decision_id;
        if let Some(old) = self.deliveries.remove(&id) {
            self.unindex(&old);
        }
        self.visible.entry(delivery.channel.clone()).or_default().insert((millis(delivery.visible_at), id));
        self.expiry.insert((millis(delivery.expires_at), id));
        self.deliveries.insert(id, delivery);
        true
    }

    fn unindex(&mut self, delivery: &Delivery) {
        let id = delivery.decision_id;
        if let Some(visible) = self.visible.get_mut(&delivery.channel) {
            visible.remove(&(millis(delivery.visible_at), id));
            if visible.is_empty() {
                self.visible.remove(&delivery.channel);
            }
        }
        self.expiry.remove(&(millis(delivery.expires_at), id));
    }

    /// Up to `max` deliveries for `channel` that may go out at `now`; they are in flight
    /// until `now + visibility`.
    pub fn poll(&mut self, channel: &str, max: usize, visibility: f64, now: f64) -> Vec<Delivery> {
        let Some(visible) = self.visible.get_mut(channel) else { return Vec::new() };
        let mut ready = Vec::new();
        for &(at, id) in visible.range(..=(millis(now), u64::MAX)) {
            if ready.len() >= max {
                break;
            }
            // One past its time to live waits for `take_expired`, which releases it.
            if self.deliveries.get(&id).is_some_and(|d| d.expires_at > now) {
                ready.push((at, id));
            }
        }
        let again = now + visibility;
        let mut out = Vec::with_capacity(ready.len());
        for (at, id) in ready {
            visible.remove(&(at, id));
            visible.insert((millis(again), id));
            let delivery = self.deliveries.get_mut(&id).expect("indexed deliveries are held");
            delivery.attempt += 1;
            delivery.visible_at = again;
            out.push(delivery.clone());
        }
        out
    }

    pub fn ack(&mut self, decision_id: u64) -> Option<Delivery> {
        let delivery = self.deliveries.remove(&decision_id)?;
        self.unindex(&delivery);
        Some(delivery)
    }

    /// Deliveries past their time to live, taken out.
    pub fn take_expired(&mut self, now: f64) -> Vec<Delivery> {
        let ids: Vec<u64> = self.expiry.range(..=(millis(now), u64::MAX)).map(|&(_, id)| id).collect();
        ids.into_iter().filter_map(|id| self.ack(id)).collect()
    }

    /// Notes an outcome in the profile's history and the outcome feed.
    pub fn note(&mut self, profile: &str, entry: HistoryEntry) {
        if self.feed.len() >= OUTCOME_FEED {
            self.feed.pop_front();
        }
        self.fed += 1;
        self.feed.push_back((self.fed, profile.to_owned(), entry.clone()));
        self.recall(profile, entry);
    }

    /// Up to `max` outcomes noted after sequence number `after`, oldest first, and the number
    /// to read after next (outcomes past the feed's bound are gone).
    pub fn outcomes_after(&self, after: u64, max: usize) -> (Vec<(String, HistoryEntry)>, u64) {
        let start = self.feed.partition_point(|(seq, _, _)| *seq <= after);
        let out: Vec<(String, HistoryEntry)> =
            self.feed.range(start..).take(max).map(|(_, p, e)| (p.clone(), e.clone())).collect();
        let next = self.feed.get(start + out.len()).map_or(self.fed, |(seq, _, _)| seq - 1);
        (out, next.max(after))
    }

    /// Notes an outcome in the profile's history only (a journal replay: it was fed before).
    pub fn recall(&mut self, profile: &str, entry: HistoryEntry) {
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
        ids.into_iter().filter_map(|id| self.ack(id)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: u64, channel: &str, at: f64, ttl: f64) -> Delivery {
        Delivery {
            decision_id: id,
            trigger: "t".into(),
            profile: format!("p{id}"),
            key: String::new(),
            placement: "x".into(),
            channel: channel.into(),
            offers: Vec::new(),
            decided_at: at,
            expires_at: at + ttl,
            attempt: 0,
            visible_at: at,
        }
    }

    #[test]
    fn polls_read_their_channel_by_visibility_and_expiry_takes_only_the_expired() {
        let mut timers = Timers::default();
        for id in 0..300 {
            let channel = ["email", "push", "sms"][id as usize % 3];
            assert!(timers.deliver(delivery(id, channel, 100.0 + id as f64, if id == 3 { 50.0 } else { 1e4 })));
        }
        let first = timers.poll("email", 10, 30.0, 130.0);
        let ids: Vec<u64> = first.iter().map(|d| d.decision_id).collect();
        assert_eq!(ids, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27], "the channel's due ones, soonest first");
        assert!(first.iter().all(|d| d.attempt == 1 && d.visible_at == 160.0));
        let next: Vec<u64> = timers.poll("email", 100, 30.0, 130.0).iter().map(|d| d.decision_id).collect();
        assert_eq!(next, [30], "in flight: not again until their visibility ends");
        assert_eq!(timers.ack(0).map(|d| d.decision_id), Some(0));
        let again: Vec<u64> = timers.poll("email", 100, 30.0, 160.0).iter().map(|d| d.decision_id).collect();
        // By visibility: 33..57 became due before 160; those polled at 130 and 60 at 160 (by
        // id); 3 is past its time to live.
        let expected: Vec<u64> = (11..=19).chain(2..=10).chain([20]).map(|k| 3 * k).collect();
        assert_eq!(again, expected);
        assert!(!again.contains(&0), "an acknowledged one never comes again");
        assert!(timers.poll("email", 10, 30.0, 10_000.0).iter().all(|d| d.decision_id != 3), "expired");
        let expired: Vec<u64> = timers.take_expired(160.0).iter().map(|d| d.decision_id).collect();
        assert_eq!(expired, [3]);
        assert_eq!(timers.deliveries(), 298);
        assert!(timers.poll("web", 10, 30.0, 1e9).is_empty());
        assert_eq!(timers.erase("p1").len(), 1);
        assert_eq!(timers.poll("push", 1_000, 30.0, 1e4).len(), 99, "the erased one is out of the index");
    }
}
