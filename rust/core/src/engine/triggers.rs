//! Triggers through the engine: events start and cancel instances, `fire_due` decides the
//! due ones on the customer as they are then, and deliveries wait for acknowledgements.
//!
//! Journal: an instance is scheduled by the `Events` record of the event that started it
//! (replaying the event schedules it again, under the same id); its end, a quiet-hours
//! reschedule, acknowledgements and releases have records of their own.

use std::sync::{MutexGuard, PoisonError};

use super::profiles::{Event, StoredDecideRequest};
use super::{Engine, Loaded, Reason};
use crate::error::{Error, Result};
use crate::limits::{MAX_IN_FLIGHT, MAX_VISIBILITY, MIN_VISIBILITY};
use crate::store::Value;
use crate::store::durable::Record;
use crate::triggers::{Delivery, HistoryEntry, Instance, QuietAction, Timers, WithoutTimeZone};

/// Instances fired per `fire_due` call at most (the next call takes the rest).
pub const FIRE_BATCH: usize = 10_000;

fn text_of(value: &Value) -> String {
    match value {
        Value::Text(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        Value::Flag(b) => b.to_string(),
    }
}

fn property<'e>(event: &'e Event, name: &str) -> Option<&'e Value> {
    event.properties.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn entry(trigger: &str, key: &str, time: f64, outcome: &str, detail: String, decision_id: u64) -> HistoryEntry {
    HistoryEntry {
        trigger: trigger.to_owned(),
        key: key.to_owned(),
        time,
        outcome: outcome.to_owned(),
        detail,
        decision_id,
    }
}

impl Engine {
    fn timers(&self) -> MutexGuard<'_, Timers> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts and cancels the instances an applied event concerns.
    pub(super) fn on_event(&self, loaded: &Loaded, event: &Event) {
        let triggers = &loaded.catalog.triggers;
        let profile = event.profile_id.as_str();
        if let Some(cancels) = triggers.cancelled_by.get(&event.kind) {
            let mut timers = self.timers();
            for (t, key_property) in cancels {
                let trigger = &triggers.triggers[*t];
                let key = match key_property {
                    Some(p) => match property(event, p) {
                        Some(v) => Some(text_of(v)),
                        None => continue,
                    },
                    None => None,
                };
                for instance in timers.cancel(profile, &trigger.id, key.as_deref()) {
                    let detail = format!("by event '{}' ({})", event.id, event.kind);
                    timers.note(profile, entry(&trigger.id, &instance.key, event.time, "cancelled", detail, 0));
                }
            }
        }
        let Some(started) = triggers.started_by.get(&event.kind) else { return };
        let rules = &loaded.catalog.customers;
        let vector = self
            .profiles
            .read(profile, &loaded.layout, event.time, rules.idle_ttl, |p| p.vector(rules, event.time))
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![f32::NAN; loaded.catalog.schema.len()]);
        let mut timers = self.timers();
        for &t in started {
            let trigger = &triggers.triggers[t];
            let note = |timers: &mut Timers, key: &str, outcome: &str, detail: String| {
                timers.note(profile, entry(&trigger.id, key, event.time, outcome, detail, 0));
            };
            let key = match &trigger.key {
                Some(p) => match property(event, p) {
                    Some(v) => text_of(v),
                    None => {
                        note(
                            &mut timers,
                            "",
                            "filtered",
                            format!("event '{}' has no property '{p}' (the key)", event.id),
                        );
                        continue;
                    }
                },
                None => String::new(),
            };
            if let Some(filter) = &trigger.filter {
                let mut row = vector.clone();
                let base = row.len();
                row.extend(trigger.properties.iter().enumerate().map(|(j, p)| {
                    property(event, &p.name)
                        .and_then(|v| trigger.filter_schema.encode_value(base + j, v.named()).ok())
                        .unwrap_or(f32::NAN)
                }));
                let mut values = Vec::new();
                filter.program().eval_row(&row, &mut values);
                if !filter.holds(&values, 0) {
                    let clause = filter.failing_clause(&values, 0).unwrap_or("the filter");
                    note(&mut timers, &key, "filtered", format!("event '{}': {clause} is false", event.id));
                    continue;
                }
            }
            if trigger.reentry > 0.0
                && let Some(last) = timers.last_entry(&trigger.id, profile)
                && event.time < last + trigger.reentry
            {
                let detail =
                    format!("entered {:.0} s before; re-entry after {:.0} s", event.time - last, trigger.reentry);
                note(&mut timers, &key, "reentry", detail);
                continue;
            }
            if timers.live(profile, &trigger.id, &key) >= trigger.max_live {
                note(&mut timers, &key, "max_live", format!("{} live instance(s) for this key", trigger.max_live));
                continue;
            }
            let id = instance_id(&trigger.id, profile, &event.id);
            if timers.contains(id) {
                continue;
            }
            let fire_at = event.time + trigger.delay;
            let instance = Instance {
                id,
                trigger: trigger.id.clone(),
                profile: profile.to_owned(),
                key: key.clone(),
                fire_at,
                scheduled_for: fire_at,
            };
            if timers.schedule(instance) {
                timers.enter(&trigger.id, profile, event.time);
            } else {
                note(&mut timers, &key, "refused", "the timer store is full".to_owned());
            }
        }
    }

    /// Fires every instance due at `now` (the server clock when `None`) and releases the
    /// deliveries past their time to live. Returns how many instances fired.
    pub fn fire_due(&self, now: Option<f64>) -> Result<usize> {
        let now = self.clock.resolve(now)?;
        let loaded = self.current();
        let mut due = self.timers().take_due(now, FIRE_BATCH);
        // Several instances of one profile at once: the placement worth most decides first,
        // so the contact policy keeps the most valuable message, not the first to arrive.
        let worth = |i: &Instance| {
            loaded
                .catalog
                .triggers
                .by_id(&i.trigger)
                .map_or(0.0, |t| loaded.scales[t.placement].iter().copied().fold(0.0, f64::max))
        };
        due.sort_by(|a, b| {
            a.profile.cmp(&b.profile).then(worth(b).total_cmp(&worth(a))).then(a.fire_at.total_cmp(&b.fire_at))
        });
        let fired = due.len();
        let mut due = due.into_iter();
        while let Some(instance) = due.next() {
            if let Err(e) = self.fire(&loaded, instance.clone(), now) {
                // The store failed (Redis, the disk): this instance and the rest wait for the
                // next call instead of being lost. One that failed after deciding fires again.
                let mut timers = self.timers();
                timers.schedule(instance);
                due.for_each(|i| {
                    timers.schedule(i);
                });
                return Err(e);
            }
        }
        let expired = self.timers().take_expired(now);
        for delivery in expired {
            let _gate = self.begin_change()?;
            // The subscriber never confirmed the send: its caps and budget units come back.
            let _ = self.give_back(delivery.decision_id);
            let detail = "never acknowledged".to_owned();
            let note = entry(&delivery.trigger, &delivery.key, now, "released", detail, delivery.decision_id);
            self.timers().note(&delivery.profile, note.clone());
            self.journal(|| Record::DeliveryReleased {
                decision_id: delivery.decision_id,
                profile: delivery.profile,
                entry: note,
            })?;
        }
        Ok(fired)
    }

    fn end(
        &self,
        instance: &Instance,
        now: f64,
        outcome: &str,
        detail: String,
        delivery: Option<Delivery>,
    ) -> Result<()> {
        let decision_id = delivery.as_ref().map_or(0, |d| d.decision_id);
        let note = entry(&instance.trigger, &instance.key, now, outcome, detail, decision_id);
        let _gate = self.begin_change()?;
        {
            let mut timers = self.timers();
            timers.note(&instance.profile, note.clone());
            if let Some(d) = delivery.clone() {
                timers.deliver(d);
            }
        }
        self.journal(|| Record::TriggerEnded {
            instance: instance.id,
            profile: instance.profile.clone(),
            entry: note,
            delivery,
        })
    }

    fn fire(&self, loaded: &Loaded, mut instance: Instance, now: f64) -> Result<()> {
        let Some(trigger) = loaded.catalog.triggers.by_id(&instance.trigger) else {
            return self.end(&instance, now, "expired", "the trigger is no longer in the catalog".to_owned(), None);
        };
        if let Some(quiet) = &trigger.quiet_hours {
            // The profile's own value: a declared default is not the customer's time zone.
            let ttl = loaded.catalog.customers.idle_ttl;
            let offset = self
                .profiles
                .read(&instance.profile, &loaded.layout, now, ttl, |p| p.values[quiet.time_zone])?
                .filter(|o| !o.is_nan());
            let offset = match (offset, quiet.without) {
                (Some(o), _) => Some(f64::from(o)),
                (None, WithoutTimeZone::Utc) => Some(0.0),
                (None, WithoutTimeZone::Ignore) => None,
                (None, WithoutTimeZone::Discard) => {
                    let feature = &loaded.catalog.schema.features()[quiet.time_zone].name;
                    let detail = format!("the profile has no time zone ('{feature}'); without_time_zone: discard");
                    return self.end(&instance, now, "discarded_quiet_hours", detail, None);
                }
            };
            if let Some(until) = offset.and_then(|o| quiet.ends_after(now, o)) {
                let hours = format!("quiet hours {:02}:00-{:02}:00 local", quiet.start, quiet.end);
                match quiet.action {
                    QuietAction::Discard => return self.end(&instance, now, "discarded_quiet_hours", hours, None),
                    QuietAction::Queue { ttl } if until > instance.scheduled_for + ttl => {
                        let detail = format!("{hours} outlast the queue's ttl of {ttl:.0} s");
                        return self.end(&instance, now, "expired", detail, None);
                    }
                    QuietAction::Queue { .. } => {
                        instance.fire_at = until;
                        let _gate = self.begin_change()?;
                        self.timers().schedule(instance.clone());
                        return self.journal(|| Record::TriggerRescheduled { instance: instance.id, fire_at: until });
                    }
                }
            }
        }
        let placement = &loaded.catalog.placements[trigger.placement];
        let placements = [placement.id.as_str()];
        let request = StoredDecideRequest {
            placements: &placements,
            profile_id: &instance.profile,
            context: &[],
            consents: &[],
            purchases: &[],
            history: &[],
            now,
            explain: true,
            exclude: &[],
        };
        let decision = match self.decide_stored(&request) {
            Ok(mut decisions) => decisions.remove(0),
            Err(Error::UnknownProfile(_)) => {
                return self.end(&instance, now, "expired", "the profile is no longer held".to_owned(), None);
            }
            Err(e @ Error::Storage(_)) => return Err(e),
            Err(e) => return self.end(&instance, now, "no_offer", e.to_string(), None),
        };
        if decision.offers.is_empty() {
            let contact = decision.reasons.iter().find(|(_, r)| matches!(r, Reason::Contact(_)));
            let (outcome, detail) = match contact {
                Some((offer, reason)) => ("capped", format!("{offer}: {reason}")),
                None => {
                    let reasons: Vec<String> =
                        decision.reasons.iter().take(5).map(|(o, r)| format!("{o}: {r}")).collect();
                    (
                        "no_offer",
                        if reasons.is_empty() { "no offer in the placement".to_owned() } else { reasons.join("; ") },
                    )
                }
            };
            return self.end(&instance, now, outcome, detail, None);
        }
        let delivery = Delivery {
            decision_id: decision.decision_id,
            trigger: trigger.id.clone(),
            profile: instance.profile.clone(),
            key: instance.key.clone(),
            placement: placement.id.clone(),
            channel: loaded.catalog.channels[placement.channel].clone(),
            offers: decision.offers.iter().map(|o| (o.offer_id.clone(), o.score, o.propensity)).collect(),
            decided_at: now,
            expires_at: now + trigger.delivery_ttl,
            attempt: 0,
            visible_at: now,
        };
        if self.timers().deliveries() >= crate::triggers::MAX_DELIVERIES {
            let _ = self.release(decision.decision_id);
            return self.end(&instance, now, "refused", "the delivery queue is full".to_owned(), None);
        }
        let offers = delivery.offers.iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(", ");
        self.end(&instance, now, "delivered", offers, Some(delivery))
    }

    /// Decisions ready to send on `channel` at `now`: never delivered, or not acknowledged
    /// within `visibility` seconds of their last delivery.
    pub fn poll_deliveries(
        &self,
        channel: &str,
        max: usize,
        visibility: f64,
        now: Option<f64>,
    ) -> Result<Vec<Delivery>> {
        let loaded = self.current();
        if loaded.catalog.channel_index(channel).is_none() {
            return Err(Error::InvalidInput(format!(
                "unknown channel '{channel}'; channels are {}",
                loaded.catalog.channels.join(", ")
            )));
        }
        if !(MIN_VISIBILITY..=MAX_VISIBILITY).contains(&visibility) {
            return Err(Error::InvalidInput(format!(
                "visibility must be {MIN_VISIBILITY} to {MAX_VISIBILITY} seconds, got {visibility}"
            )));
        }
        if max == 0 || max > MAX_IN_FLIGHT {
            return Err(Error::InvalidInput(format!("max must be 1..={MAX_IN_FLIGHT}, got {max}")));
        }
        let now = self.clock.resolve(now)?;
        Ok(self.timers().poll(channel, max, visibility, now))
    }

    /// Acknowledges delivered decisions; returns how many were waiting.
    pub fn ack_deliveries(&self, decision_ids: &[u64]) -> Result<usize> {
        let _gate = self.begin_change()?;
        let mut acked = Vec::new();
        {
            let mut timers = self.timers();
            for &id in decision_ids {
                if let Some(d) = timers.ack(id) {
                    let note = entry(
                        &d.trigger,
                        &d.key,
                        d.decided_at,
                        "acknowledged",
                        format!("after {} deliver{}", d.attempt, if d.attempt == 1 { "y" } else { "ies" }),
                        id,
                    );
                    timers.note(&d.profile, note);
                    acked.push(id);
                }
            }
        }
        if acked.is_empty() {
            return Ok(0);
        }
        let n = acked.len();
        self.journal(|| Record::DeliveryAcked(acked))?;
        Ok(n)
    }

    /// What became of a profile's trigger instances, oldest first.
    pub fn trigger_history(&self, profile: &str) -> Vec<HistoryEntry> {
        self.timers().history(profile)
    }

    pub fn pending_timers(&self) -> usize {
        self.timers().len()
    }

    pub fn pending_deliveries(&self) -> usize {
        self.timers().deliveries()
    }

    /// Erases a profile's timers, deliveries (their reservations given back) and history.
    pub(super) fn erase_triggers(&self, profile: &str) -> bool {
        let deliveries = self.timers().erase(profile);
        let any = !deliveries.is_empty();
        for d in deliveries {
            let _ = self.give_back(d.decision_id);
        }
        any
    }

    /// Replays a journaled trigger record.
    pub(super) fn replay_trigger(&self, record: Record) -> bool {
        let mut timers = self.timers();
        match record {
            Record::TriggerEnded { instance, profile, entry, delivery } => {
                let known = timers.remove(instance).is_some();
                timers.note(&profile, entry);
                if let Some(d) = delivery {
                    timers.deliver(d);
                }
                known
            }
            Record::TriggerRescheduled { instance, fire_at } => match timers.remove(instance) {
                Some(mut i) => {
                    i.fire_at = fire_at;
                    timers.schedule(i)
                }
                None => false,
            },
            Record::DeliveryAcked(ids) => ids.iter().filter(|&&id| timers.ack(id).is_some()).count() > 0,
            Record::DeliveryReleased { decision_id, profile, entry } => {
                timers.note(&profile, entry);
                let known = timers.ack(decision_id).is_some();
                drop(timers);
                let _ = self.give_back(decision_id);
                known
            }
            _ => false,
        }
    }
}

/// The same instance id for the same (trigger, profile, event) on every replay.
fn instance_id(trigger: &str, profile: &str, event: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [trigger, profile, event] {
        h.update(part.as_bytes());
        h.update(&[0xFF]);
    }
    h.digest()
}
