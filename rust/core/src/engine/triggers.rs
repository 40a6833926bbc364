//! Triggers through the engine: events start and cancel instances, `fire_due` decides the
//! due ones on the customer as they are then, and deliveries wait for acknowledgements.
//!
//! On Redis (`store::shared`) the instances and deliveries are every server's: a due instance
//! is leased to the server that claims it, and its decision's commit ends it, so it fires once
//! across servers and after any of them dies.
//!
//! Journal: an instance is scheduled by the `Events` record of the event that started it
//! (replaying the event schedules it again, under the same id); its end, a quiet-hours
//! reschedule, acknowledgements and releases have records of their own.

use std::sync::{MutexGuard, PoisonError};

use super::profiles::{Event, StoredDecideRequest};
use super::{DecideRequest, Decision, Engine, Loaded, Reason};
use crate::error::{Error, Result};
use crate::limits::{MAX_IN_FLIGHT, MAX_VISIBILITY, MIN_VISIBILITY};
use crate::store::Value;
use crate::store::durable::Record;
use crate::store::shared::{CLAIM_LEASE, Found};
use crate::triggers::{Delivery, HistoryEntry, Instance, QuietAction, Started, Timers, Trigger, WithoutTimeZone};

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

    /// Starts and cancels the instances an applied event concerns (`replaying` the journal:
    /// its outcomes were in the outcome feed before the restart).
    pub(super) fn on_event(&self, loaded: &Loaded, event: &Event, replaying: bool) -> Result<()> {
        let triggers = &loaded.catalog.triggers;
        let profile = event.profile_id.as_str();
        let mut notes = Vec::new();
        if let Some(cancels) = triggers.cancelled_by.get(&event.kind) {
            for (t, key_property) in cancels {
                let trigger = &triggers.triggers[*t];
                let key = match key_property {
                    Some(p) => match property(event, p) {
                        Some(v) => Some(text_of(v)),
                        None => continue,
                    },
                    None => None,
                };
                let cancelled: Vec<String> = match &self.shared {
                    Some(shared) => shared
                        .redis
                        .cancel_instances(profile, &trigger.id, key.as_deref())
                        .map_err(|f| shared.failed(f))?
                        .into_iter()
                        .map(|(_, key)| key)
                        .collect(),
                    None => self
                        .timers()
                        .cancel(profile, &trigger.id, key.as_deref())
                        .into_iter()
                        .map(|i| i.key)
                        .collect::<Vec<_>>(),
                };
                for key in cancelled {
                    let detail = format!("by event '{}' ({})", event.id, event.kind);
                    notes.push(entry(&trigger.id, &key, event.time, "cancelled", detail, 0));
                }
            }
        }
        if let Some(started) = triggers.started_by.get(&event.kind) {
            let rules = &loaded.catalog.customers;
            let vector = self
                .profiles
                .read(profile, &loaded.layout, event.time, rules.idle_ttl, |p| p.vector(rules, event.time))?
                .unwrap_or_else(|| vec![f32::NAN; loaded.catalog.schema.len()]);
            for &t in started {
                let trigger = &triggers.triggers[t];
                if let Some((key, outcome, detail)) = self.start(trigger, event, &vector)? {
                    notes.push(entry(&trigger.id, &key, event.time, outcome, detail, 0));
                }
            }
        }
        if replaying {
            let mut timers = self.timers();
            notes.into_iter().for_each(|n| timers.recall(profile, n));
            return Ok(());
        }
        self.note(profile, notes)
    }

    /// Starts `trigger`'s instance for `event` on a profile whose features are `vector`; the
    /// key, outcome and detail when it did not start.
    fn start(
        &self,
        trigger: &crate::triggers::Trigger,
        event: &Event,
        vector: &[f32],
    ) -> Result<Option<(String, &'static str, String)>> {
        let key = match &trigger.key {
            Some(p) => match property(event, p) {
                Some(v) => text_of(v),
                None => {
                    let detail = format!("event '{}' has no property '{p}' (the key)", event.id);
                    return Ok(Some((String::new(), "filtered", detail)));
                }
            },
            None => String::new(),
        };
        if let Some(filter) = &trigger.filter {
            let mut row = vector.to_vec();
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
                return Ok(Some((key, "filtered", format!("event '{}': {clause} is false", event.id))));
            }
        }
        let fire_at = event.time + trigger.delay;
        let instance = Instance {
            id: instance_id(&trigger.id, &event.profile_id, &event.id),
            trigger: trigger.id.clone(),
            profile: event.profile_id.clone(),
            key: key.clone(),
            fire_at,
            scheduled_for: fire_at,
        };
        let started = match &self.shared {
            Some(shared) => {
                // Kept until it could fire last (quiet hours may queue it), then for re-entry and
                // the delivery's time to live (its erasure finds it there).
                let ttl = (fire_at - event.time).max(0.0)
                    + trigger.longest_wait()
                    + trigger.reentry.max(trigger.delivery_ttl)
                    + CLAIM_LEASE;
                Some(
                    shared
                        .redis
                        .start_instance(&instance, event.time, trigger.reentry, trigger.max_live, ttl)
                        .map_err(|f| shared.failed(f))?,
                )
            }
            None => self.timers().start(instance, event.time, trigger.reentry, trigger.max_live),
        };
        Ok(match started {
            Some(Started::Started | Started::Exists) => None,
            Some(Started::Reentry(last)) => Some((
                key,
                "reentry",
                format!("entered {:.0} s before; re-entry after {:.0} s", event.time - last, trigger.reentry),
            )),
            Some(Started::MaxLive) => {
                Some((key, "max_live", format!("{} live instance(s) for this key", trigger.max_live)))
            }
            None => Some((key, "refused", "the timer store is full".to_owned())),
        })
    }

    /// Notes what became of instances (or of deliveries) of one profile.
    fn note(&self, profile: &str, notes: Vec<HistoryEntry>) -> Result<()> {
        match &self.shared {
            Some(shared) => shared.redis.note(profile, &notes).map_err(|f| shared.failed(f)),
            None => {
                let mut timers = self.timers();
                notes.into_iter().for_each(|n| timers.note(profile, n));
                Ok(())
            }
        }
    }

    /// Fires every instance due at `now` (the server clock when `None`) and releases the
    /// deliveries past their time to live. Returns how many instances fired.
    pub fn fire_due(&self, now: Option<f64>) -> Result<usize> {
        let now = self.clock.resolve(now)?;
        let loaded = self.current();
        let mut due = match &self.shared {
            // Redis is away: the timers wait there (the background work notices its return).
            Some(shared) if !shared.healthy() => return Ok(0),
            Some(shared) => self.claim_shared(shared, now)?,
            None => self.timers().take_due(now, FIRE_BATCH),
        };
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
                // next call instead of being lost (on Redis their leases run out and any server
                // fires them). One that failed after deciding fires again.
                if self.shared.is_none() {
                    let mut timers = self.timers();
                    timers.schedule(instance);
                    due.for_each(|i| {
                        timers.schedule(i);
                    });
                }
                return Err(e);
            }
        }
        let expired = match &self.shared {
            Some(shared) => shared.redis.take_expired(now, FIRE_BATCH).map_err(|f| shared.failed(f))?,
            None => self.timers().take_expired(now),
        };
        for delivery in expired {
            // The subscriber never confirmed the send: its caps and budget units come back.
            let detail = "never acknowledged".to_owned();
            let note = entry(&delivery.trigger, &delivery.key, now, "released", detail, delivery.decision_id);
            if self.shared.is_some() {
                let _ = self.release(delivery.decision_id);
                self.note(&delivery.profile, vec![note])?;
                continue;
            }
            let _gate = self.begin_change()?;
            let _ = self.give_back(delivery.decision_id);
            self.timers().note(&delivery.profile, note.clone());
            self.journal(|| Record::DeliveryReleased {
                decision_id: delivery.decision_id,
                profile: delivery.profile,
                entry: note,
            })?;
        }
        Ok(fired)
    }

    /// The instances due on Redis, leased to this server; a firing another server committed
    /// before it stopped has its delivery queued here.
    fn claim_shared(&self, shared: &super::shared::Shared, now: f64) -> Result<Vec<Instance>> {
        let claimed = shared.redis.claim_due(now, FIRE_BATCH).map_err(|f| shared.failed(f))?;
        let mut due = Vec::with_capacity(claimed.len());
        for c in claimed {
            match shared.redis.find_instance(&c).map_err(|f| shared.failed(f))? {
                Found::Instance(instance) => due.push(instance),
                Found::Committed(delivery) => self.queue_committed(shared, c.id, delivery, now)?,
                Found::Gone => {
                    shared.redis.end_instance(c.id, &c.profile, None).map_err(|f| shared.failed(f))?;
                }
            }
        }
        Ok(due)
    }

    /// Queues the delivery of a committed firing and ends its instance.
    fn queue_committed(
        &self,
        shared: &super::shared::Shared,
        instance: u64,
        delivery: Delivery,
        now: f64,
    ) -> Result<()> {
        let offers = delivery.offers.iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(", ");
        let (outcome, detail) = if shared.redis.put_delivery(&delivery).map_err(|f| shared.failed(f))? {
            ("delivered", offers)
        } else {
            let _ = self.release(delivery.decision_id);
            ("refused", "the delivery queue is full".to_owned())
        };
        let note = entry(&delivery.trigger, &delivery.key, now, outcome, detail, delivery.decision_id);
        let delivered = (outcome == "delivered").then_some(delivery.decision_id);
        shared
            .redis
            .end_instance(instance, &delivery.profile, Some((&note, delivered)))
            .map_err(|f| shared.failed(f))?;
        Ok(())
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
        if let Some(shared) = &self.shared {
            return shared
                .redis
                .end_instance(instance.id, &instance.profile, Some((&note, None)))
                .map(drop)
                .map_err(|f| shared.failed(f));
        }
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

    /// Fires the instance again when quiet hours end.
    fn reschedule(&self, instance: &Instance, trigger: &Trigger, now: f64) -> Result<()> {
        if let Some(shared) = &self.shared {
            let ttl = (instance.fire_at - now).max(0.0) + trigger.reentry.max(trigger.delivery_ttl) + CLAIM_LEASE;
            return shared.redis.reschedule(instance, ttl).map_err(|f| shared.failed(f));
        }
        let _gate = self.begin_change()?;
        self.timers().schedule(instance.clone());
        self.journal(|| Record::TriggerRescheduled { instance: instance.id, fire_at: instance.fire_at })
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
            let offset = match (offset.and_then(|o| quiet.offset_hours(o, now)), quiet.without) {
                (Some(o), _) => Some(o),
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
                        return self.reschedule(&instance, trigger, now);
                    }
                }
            }
        }
        let placement = &loaded.catalog.placements[trigger.placement];
        let channel = &loaded.catalog.channels[placement.channel];
        let delivery_of = |decision: &Decision| Delivery {
            decision_id: decision.decision_id,
            trigger: trigger.id.clone(),
            profile: instance.profile.clone(),
            key: instance.key.clone(),
            placement: placement.id.clone(),
            channel: channel.clone(),
            offers: decision.offers.iter().map(|o| (o.offer_id.clone(), o.score, o.propensity)).collect(),
            decided_at: now,
            expires_at: now + trigger.delivery_ttl,
            attempt: 0,
            visible_at: now,
        };
        let decided = match &self.shared {
            Some(shared) => self.decide_firing(shared, &instance, placement.id.as_str(), now, &delivery_of),
            None => {
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
                self.decide_stored(&request).map(|mut decisions| Some(decisions.remove(0)))
            }
        };
        let decision = match decided {
            Ok(Some(decision)) => decision,
            // Fired by another server meanwhile (its lease ran out), or cancelled: nothing to do.
            Ok(None) => return Ok(()),
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
        let delivery = delivery_of(&decision);
        if let Some(shared) = &self.shared {
            // The firing is committed with the decision: queue its delivery.
            return self.queue_committed(shared, instance.id, delivery, now);
        }
        if self.timers().deliveries() >= crate::triggers::MAX_DELIVERIES {
            let _ = self.release(decision.decision_id);
            return self.end(&instance, now, "refused", "the delivery queue is full".to_owned(), None);
        }
        let offers = delivery.offers.iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(", ");
        self.end(&instance, now, "delivered", offers, Some(delivery))
    }

    /// A trigger's decision on the shared store, committed only while its instance waits and
    /// ending it in the same step (so it fires once across servers): `None` when it ended.
    pub(super) fn decide_firing(
        &self,
        shared: &super::shared::Shared,
        instance: &Instance,
        placement: &str,
        now: f64,
        delivery_of: &dyn Fn(&Decision) -> Delivery,
    ) -> Result<Option<Decision>> {
        let found = self.stored_features(&instance.profile, &[], &[], &[], now)?;
        let consents: Vec<&str> = found.consents.iter().map(String::as_str).collect();
        let bought: Vec<&str> = found.purchases.iter().map(String::as_str).collect();
        let placements = [placement];
        let request = DecideRequest {
            placements: &placements,
            features: &found.features,
            consents: &consents,
            now,
            explain: true,
            profile_id: Some(&instance.profile),
            history: &[],
            purchases: &bought,
            exclude: &[],
        };
        let fires = |decisions: &[Decision]| {
            let delivery = delivery_of(&decisions[0]);
            (instance.id, postcard::to_stdvec(&delivery).expect("deliveries serialize"))
        };
        Ok(self.decide_shared_with(shared, &request, Some(&fires))?.map(|mut d| d.remove(0)))
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
        match &self.shared {
            Some(shared) => shared.redis.poll_deliveries(channel, max, visibility, now).map_err(|f| shared.failed(f)),
            None => Ok(self.timers().poll(channel, max, visibility, now)),
        }
    }

    /// Acknowledges delivered decisions; returns how many were waiting.
    pub fn ack_deliveries(&self, decision_ids: &[u64]) -> Result<usize> {
        let acknowledged = |d: &Delivery| {
            let tries = format!("after {} deliver{}", d.attempt, if d.attempt == 1 { "y" } else { "ies" });
            entry(&d.trigger, &d.key, d.decided_at, "acknowledged", tries, d.decision_id)
        };
        if let Some(shared) = &self.shared {
            let acked = shared.redis.ack_deliveries(decision_ids).map_err(|f| shared.failed(f))?;
            for d in &acked {
                self.note(&d.profile, vec![acknowledged(d)])?;
            }
            return Ok(acked.len());
        }
        let _gate = self.begin_change()?;
        let mut acked = Vec::new();
        {
            let mut timers = self.timers();
            for &id in decision_ids {
                if let Some(d) = timers.ack(id) {
                    timers.note(&d.profile, acknowledged(&d));
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

    /// Trigger outcomes of every profile in the order they were noted, for a log: up to
    /// `max` after the cursor `after` ('' from the oldest kept), and the cursor to pass next.
    /// On Redis every server's, from a stream they all append to; embedded, this process's
    /// since it started (the newest [`crate::triggers::timers::OUTCOME_FEED`]).
    pub fn trigger_outcomes(&self, after: &str, max: usize) -> Result<(Vec<(String, HistoryEntry)>, String)> {
        if max == 0 || max > FIRE_BATCH {
            return Err(Error::InvalidInput(format!("max must be 1..={FIRE_BATCH}, got {max}")));
        }
        if let Some(shared) = &self.shared {
            return shared.redis.outcomes_after(after, max).map_err(|f| shared.failed(f));
        }
        let after = match after {
            "" => 0,
            cursor => cursor.parse::<u64>().map_err(|_| {
                Error::InvalidInput(format!("'{cursor}' is not a cursor of trigger_outcomes (pass back what it gave)"))
            })?,
        };
        let (outcomes, next) = self.timers().outcomes_after(after, max);
        Ok((outcomes, next.to_string()))
    }

    /// What became of a profile's trigger instances, oldest first.
    pub fn trigger_history(&self, profile: &str) -> Result<Vec<HistoryEntry>> {
        match &self.shared {
            Some(shared) => shared.redis.notes(profile).map_err(|f| shared.failed(f)),
            None => Ok(self.timers().history(profile)),
        }
    }

    /// Instances waiting to fire (on Redis, every server's, leased ones included).
    pub fn pending_timers(&self) -> Result<usize> {
        match &self.shared {
            Some(shared) => shared.redis.trigger_counts().map(|c| c.0).map_err(|f| shared.failed(f)),
            None => Ok(self.timers().len()),
        }
    }

    /// Triggered decisions waiting for their acknowledgement.
    pub fn pending_deliveries(&self) -> Result<usize> {
        match &self.shared {
            Some(shared) => shared.redis.trigger_counts().map(|c| c.1).map_err(|f| shared.failed(f)),
            None => Ok(self.timers().deliveries()),
        }
    }

    /// Erases a profile's timers, deliveries (their reservations given back) and history.
    pub(super) fn erase_triggers(&self, profile: &str) -> Result<bool> {
        let deliveries = match &self.shared {
            Some(shared) => shared.redis.erase_triggers(profile).map_err(|f| shared.failed(f))?,
            None => self.timers().erase(profile),
        };
        let any = !deliveries.is_empty();
        for d in deliveries {
            let _ = if self.shared.is_some() { self.release(d.decision_id) } else { self.give_back(d.decision_id) };
        }
        Ok(any)
    }

    /// Replays a journaled trigger record.
    pub(super) fn replay_trigger(&self, record: Record) -> bool {
        let mut timers = self.timers();
        match record {
            Record::TriggerEnded { instance, profile, entry, delivery } => {
                let known = timers.remove(instance).is_some();
                timers.recall(&profile, entry);
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
                timers.recall(&profile, entry);
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
