//! The customer plane: profiles written by the data platform, events applied to them, and
//! decisions by customer id on what the store holds.
//!
//! Every write is checked row by row against the catalog before anything of the row is
//! applied: a bad row is reported with its index and reason, and the others go through.

use serde::{Deserialize, Serialize};

use super::{DecideRequest, Decision, Engine, Loaded};
use crate::customer::{Aggregate, UnknownProfile};
use crate::error::{Error, Result};
use crate::limits::{self, Clock, MAX_EVENT_ID_BYTES, MAX_EVENT_PROPERTIES, MAX_LISTED_REJECTIONS};
use crate::schema::{FeatureKind, NamedValue};
use crate::store::Value;
use crate::store::durable::Record;
use crate::store::profiles::{Aggregated, StoredProfile};

/// A write of one profile: the features given are set, the others keep their values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileWrite {
    pub id: String,
    pub features: Vec<(String, Value)>,
    pub consents: Vec<String>,
    pub revoked_consents: Vec<String>,
    pub purchases: Vec<String>,
}

/// Something a customer did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event: a repeated id is applied once.
    pub id: String,
    pub profile_id: String,
    pub kind: String,
    /// Unix seconds.
    pub time: f64,
    pub properties: Vec<(String, Value)>,
}

/// One column of a columnar write: numbers (bools as 0 or 1) with an optional mask of the
/// rows that have a value (Arrow's validity: a row without one keeps its stored value; a
/// NaN where a value is given is an error), or value names with a code per row (-1: no
/// value).
#[derive(Debug, Clone)]
pub enum Column {
    Numbers { values: Vec<f64>, present: Option<Vec<bool>> },
    Categories { names: Vec<String>, codes: Vec<i32> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub index: u64,
    pub id: String,
    pub message: String,
}

/// What a write did with each of its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteReport {
    pub accepted: u64,
    /// Events whose id the profile had seen before.
    pub duplicates: u64,
    /// The first [`MAX_LISTED_REJECTIONS`] rejected rows.
    pub rejected: Vec<RowError>,
    /// Every rejected row.
    pub refused: u64,
}

impl WriteReport {
    /// Runs `write` on the rows that could be read, and reports the others (id, reason) as
    /// rejected: indices count over all of `rows`, as the caller sent them.
    pub fn with_unreadable<T>(
        rows: Vec<std::result::Result<T, (String, String)>>,
        write: impl FnOnce(&[T]) -> Result<WriteReport>,
    ) -> Result<WriteReport> {
        let mut readable = Vec::with_capacity(rows.len());
        let mut origin = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for (index, row) in rows.into_iter().enumerate() {
            match row {
                Ok(row) => {
                    readable.push(row);
                    origin.push(index as u64);
                }
                Err((id, message)) => unreadable.push(RowError { index: index as u64, id, message }),
            }
        }
        let mut report = write(&readable)?;
        if unreadable.is_empty() {
            return Ok(report);
        }
        report.rejected.iter_mut().for_each(|r| r.index = origin[r.index as usize]);
        report.refused += unreadable.len() as u64;
        report.rejected.extend(unreadable);
        report.rejected.sort_by_key(|r| r.index);
        report.rejected.truncate(MAX_LISTED_REJECTIONS);
        Ok(report)
    }

    fn reject(&mut self, index: usize, id: &str, error: &Error) {
        self.refused += 1;
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            self.rejected.push(RowError { index: index as u64, id: id.to_owned(), message: error.to_string() });
        }
    }
}

/// A stored profile as a reader sees it, computed attributes evaluated at the read's time.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileView {
    pub id: String,
    /// Every feature with a value (stored, computed or defaulted), in schema order.
    pub features: Vec<(String, Value)>,
    pub consents: Vec<String>,
    pub purchases: Vec<String>,
}

/// A stored profile as a decision reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeatures {
    pub features: Vec<f32>,
    pub consents: Vec<String>,
    pub purchases: Vec<String>,
}

/// A decision by customer id on the stored profile.
pub struct StoredDecideRequest<'a> {
    pub placements: &'a [&'a str],
    pub profile_id: &'a str,
    /// Request-time features that override stored ones for this decision only.
    pub context: &'a [(&'a str, NamedValue<'a>)],
    /// Added to the stored consents and purchases for this decision.
    pub consents: &'a [&'a str],
    pub purchases: &'a [&'a str],
    /// Contacts the caller knows of, counted with the stored history.
    pub history: &'a [crate::contact::ContactEvent],
    pub now: f64,
    pub explain: bool,
    pub exclude: &'a [&'a str],
}

/// A profile write checked against the catalog: feature indices and encoded values.
struct Change {
    values: Vec<(usize, f32)>,
    grant: u64,
    revoke: u64,
    purchases: Vec<String>,
}

/// An event checked against the catalog: per computed attribute the value it adds, the
/// product it records, and the consents it grants and revokes.
#[derive(Default)]
struct EventChange {
    adds: Vec<(usize, f32)>,
    purchase: Option<String>,
    grant: u64,
    revoke: u64,
}

fn invalid(message: String) -> Error {
    Error::InvalidInput(message)
}

fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if value.len() > MAX_EVENT_ID_BYTES {
        return Err(invalid(format!("{what} is {} bytes long; the limit is {MAX_EVENT_ID_BYTES}", value.len())));
    }
    Ok(())
}

impl Loaded {
    fn channel_bits(&self, names: &[String]) -> Result<u64> {
        names.iter().try_fold(0u64, |mask, name| match self.catalog.channel_index(name) {
            Some(c) => Ok(mask | (1 << c)),
            None => {
                Err(invalid(format!("unknown channel '{name}'; channels are {}", self.catalog.channels.join(", "))))
            }
        })
    }

    /// The names of the channels whose bits are set.
    fn channels_of(&self, bits: u64) -> Vec<&str> {
        let channels = self.catalog.channels.iter().enumerate();
        channels.filter(|(c, _)| bits & (1 << c) != 0).map(|(_, n)| n.as_str()).collect()
    }

    /// The feature `name` as a writable one: known, and not computed from events.
    fn writable(&self, name: &str) -> Result<usize> {
        let index = self.catalog.schema.index_of(name).ok_or_else(|| invalid(format!("unknown feature '{name}'")))?;
        if self.catalog.customers.computed_of[index].is_some() {
            return Err(invalid(format!("feature '{name}' is computed from events; it cannot be written")));
        }
        Ok(index)
    }

    fn encode_write(&self, row: &ProfileWrite) -> Result<Change> {
        limits::check_profile_id(&row.id)?;
        let schema = &self.catalog.schema;
        let values = row
            .features
            .iter()
            .map(|(name, value)| {
                let index = self.writable(name)?;
                Ok((index, schema.encode_value(index, value.named())?))
            })
            .collect::<Result<_>>()?;
        let grant = self.channel_bits(&row.consents)?;
        let revoke = self.channel_bits(&row.revoked_consents)?;
        if grant & revoke != 0 {
            return Err(invalid("a channel's consent is both given and revoked".to_owned()));
        }
        for product in &row.purchases {
            check_name("a purchase's product id", product)?;
        }
        Ok(Change { values, grant, revoke, purchases: row.purchases.clone() })
    }

    /// What an event does, checked: per computed attribute the value it adds, and the
    /// product it records. `None` when the catalog gives its type nothing to do.
    fn encode_event(&self, event: &Event) -> Result<Option<EventChange>> {
        check_name("an event's id", &event.id)?;
        limits::check_profile_id(&event.profile_id)?;
        check_name("an event's type", &event.kind)?;
        if !(event.time.is_finite() && event.time >= 0.0) {
            return Err(invalid(format!("event '{}' needs a time (unix seconds, finite and >= 0)", event.id)));
        }
        if event.properties.len() > MAX_EVENT_PROPERTIES {
            return Err(invalid(format!(
                "event '{}' has {} properties; the limit is {MAX_EVENT_PROPERTIES}",
                event.id,
                event.properties.len()
            )));
        }
        let rules = &self.catalog.customers;
        let Some(effects) = rules.events.get(&event.kind) else {
            // A type only triggers read still goes to its profile (once per id).
            let triggered = self.catalog.triggers.mentions(&event.kind);
            return Ok(triggered.then(EventChange::default));
        };
        let property = |name: &str| event.properties.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let missing = |name: &str, reader: &str| {
            invalid(format!("event '{}' ({}) has no property '{name}', which {reader} reads", event.id, event.kind))
        };
        let mut adds = Vec::with_capacity(effects.computed.len());
        for &c in &effects.computed {
            let spec = &rules.computed[c];
            let feature = &self.catalog.schema.features()[spec.feature].name;
            let value = match (spec.aggregate, spec.property.as_deref()) {
                (Aggregate::Count | Aggregate::TimeSince, _) | (_, None) => 0.0,
                (Aggregate::Sum, Some(name)) => match property(name) {
                    Some(Value::Number(n)) if n.is_finite() && n.abs() <= f64::from(limits::MAX_FEATURE_MAGNITUDE) => {
                        *n as f32
                    }
                    Some(other) => {
                        return Err(invalid(format!(
                            "event '{}' property '{name}' must be a finite number within +-{:e} (feature '{feature}' \
                             sums it), got {other:?}",
                            event.id,
                            limits::MAX_FEATURE_MAGNITUDE
                        )));
                    }
                    None => return Err(missing(name, &format!("feature '{feature}'"))),
                },
                (Aggregate::Last, Some(name)) => {
                    let value = property(name).ok_or_else(|| missing(name, &format!("feature '{feature}'")))?;
                    self.catalog
                        .schema
                        .encode_value(spec.feature, value.named())
                        .map_err(|e| invalid(format!("event '{}' property '{name}': {e}", event.id)))?
                }
            };
            adds.push((c, value));
        }
        let purchase = match effects.purchase.as_deref() {
            Some(name) => match property(name) {
                Some(Value::Text(product)) => {
                    check_name("a purchase's product id", product)?;
                    Some(product.clone())
                }
                Some(other) => {
                    return Err(invalid(format!(
                        "event '{}' property '{name}' names the product bought: it must be text, got {other:?}",
                        event.id
                    )));
                }
                None => return Err(missing(name, "the purchase record")),
            },
            None => None,
        };
        let bit = |c: Option<usize>| c.map_or(0, |c| 1u64 << c);
        Ok(Some(EventChange { adds, purchase, grant: bit(effects.grant), revoke: bit(effects.revoke) }))
    }

    /// The stored profile's full feature vector, consents and purchases at `now`.
    fn stored_vector(&self, profile: &StoredProfile, now: f64) -> (Vec<f32>, u64, Vec<Box<str>>) {
        (profile.vector(&self.catalog.customers, now), profile.consents, profile.purchases.clone())
    }
}

impl Engine {
    /// Writes profiles: each row's features, consents and purchases, checked first; a bad
    /// row is rejected whole and the others are written. `now` is the write's time (the
    /// server's when `None`).
    pub fn upsert_profiles(&self, rows: &[ProfileWrite], now: Option<f64>) -> Result<WriteReport> {
        let now = self.clock.resolve(now)?;
        let _gate = self.begin_change()?;
        let _order = self.write_order();
        let (report, accepted) = self.upsert_at(rows, now)?;
        self.journal_accepted(&report, || Record::Profiles {
            time: now,
            rows: accepted.into_iter().map(|i| rows[i].clone()).collect(),
        })?;
        Ok(report)
    }

    /// Profile writes apply and journal one at a time, so the journal's order is the order
    /// they were applied in and a replay ends in the same state.
    fn write_order(&self) -> std::sync::MutexGuard<'_, ()> {
        self.profile_writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The report, and the indices of the rows written.
    fn upsert_at(&self, rows: &[ProfileWrite], now: f64) -> Result<(WriteReport, Vec<usize>)> {
        let loaded = self.current();
        let mut report = WriteReport::default();
        let mut written = Vec::with_capacity(rows.len());
        let mut changes = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            match loaded.encode_write(row) {
                Ok(change) => {
                    written.push(index);
                    changes.push(change);
                }
                Err(e) => report.reject(index, &row.id, &e),
            }
        }
        let ids: Vec<&str> = written.iter().map(|&i| rows[i].id.as_str()).collect();
        self.apply(&loaded, &ids, &changes, now)?;
        report.accepted += written.len() as u64;
        Ok((report, written))
    }

    /// Writes checked changes, `changes[r]` to profile `ids[r]`, in order.
    fn apply(&self, loaded: &Loaded, ids: &[&str], changes: &[Change], now: f64) -> Result<()> {
        let ttl = loaded.catalog.customers.idle_ttl;
        self.profiles.update_many(
            ids,
            &loaded.layout,
            |_| now,
            ttl,
            |row, p| {
                let change = &changes[row];
                for &(index, value) in &change.values {
                    p.values[index] = value;
                }
                p.consents = (p.consents | change.grant) & !change.revoke;
                change.purchases.iter().for_each(|product| p.add_purchase(product));
            },
        )?;
        Ok(())
    }

    /// Writes profiles from columns (Arrow or numpy, by feature name): row `r` is
    /// `ids[r]` with every column's value at `r` that is not missing.
    pub fn upsert_columns(
        &self,
        ids: &[String],
        columns: &[(String, Column)],
        now: Option<f64>,
    ) -> Result<WriteReport> {
        let now = self.clock.resolve(now)?;
        let loaded = self.current();
        let schema = &loaded.catalog.schema;
        let mut encoded: Vec<(usize, &Column, Vec<f32>)> = Vec::with_capacity(columns.len());
        for (name, column) in columns {
            let index = loaded.writable(name)?;
            let rows = match column {
                Column::Numbers { values, present } => {
                    if present.as_ref().is_some_and(|p| p.len() != values.len()) {
                        return Err(invalid(format!("column '{name}': its validity mask and values differ in length")));
                    }
                    values.len()
                }
                Column::Categories { codes, .. } => codes.len(),
            };
            if rows != ids.len() {
                return Err(invalid(format!("column '{name}' has {rows} rows, ids has {}", ids.len())));
            }
            // A dictionary's value names are encoded once (NaN: not a value of the feature).
            let table = match (column, &schema.features()[index].kind) {
                (Column::Categories { names, .. }, FeatureKind::Category(_)) => {
                    names.iter().map(|n| schema.features()[index].category_code(n).unwrap_or(f32::NAN)).collect()
                }
                (Column::Categories { .. }, _) => {
                    return Err(invalid(format!("feature '{name}' is a number or flag; its column has text")));
                }
                (Column::Numbers { .. }, FeatureKind::Category(_)) => {
                    return Err(invalid(format!("feature '{name}' is a category; its column must hold value names")));
                }
                (Column::Numbers { .. }, _) => Vec::new(),
            };
            encoded.push((index, column, table));
        }
        let _gate = self.begin_change()?;
        let _order = self.write_order();
        let mut report = WriteReport::default();
        let mut journaled = Vec::new();
        let durable = self.durable.is_some();
        let (mut written, mut changes) = (Vec::new(), Vec::new());
        for (row, id) in ids.iter().enumerate() {
            match column_change(&loaded, id, row, &encoded) {
                Ok(change) => {
                    if durable {
                        journaled.push(write_of(&loaded, id, &change));
                    }
                    written.push(id.as_str());
                    changes.push(change);
                }
                Err(e) => report.reject(row, id, &e),
            }
        }
        self.apply(&loaded, &written, &changes, now)?;
        report.accepted += written.len() as u64;
        self.journal_accepted(&report, || Record::Profiles { time: now, rows: journaled })?;
        Ok(report)
    }

    /// Applies events to their profiles: computed attributes, consents, purchases. An event
    /// whose id its profile has seen is counted as a duplicate and changes nothing.
    pub fn track(&self, events: &[Event]) -> Result<WriteReport> {
        let _gate = self.begin_change()?;
        let _order = self.write_order();
        // A live write touches its profiles now (the server's time); the journal keeps that
        // time so a replay ages profiles the same way.
        let touched = match self.clock {
            Clock::Wall { .. } => limits::wall_seconds(),
            Clock::Simulated => f64::NEG_INFINITY,
        };
        let (report, applied) = self.track_at(events, true, touched)?;
        self.journal_accepted(&report, || Record::Events { touched, events: applied })?;
        Ok(report)
    }

    /// `check_time`: refuse events from the future (off only when replaying the journal).
    /// A profile is touched at the later of `touched` and the event's time.
    fn track_at(&self, events: &[Event], check_time: bool, touched: f64) -> Result<(WriteReport, Vec<Event>)> {
        let loaded = self.current();
        let ttl = loaded.catalog.customers.idle_ttl;
        let mut report = WriteReport::default();
        let mut applied = Vec::new();
        let mut checked_rows = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let checked = loaded.encode_event(event).and_then(|effects| {
                if check_time {
                    self.clock.check_not_future(event.time)?;
                }
                Ok(effects)
            });
            let effects = match checked {
                Ok(Some(effects)) => effects,
                // Nothing in the catalog reads this event type.
                Ok(None) => {
                    report.accepted += 1;
                    continue;
                }
                Err(e) => {
                    report.reject(index, &event.id, &e);
                    continue;
                }
            };
            checked_rows.push((index, effects));
        }
        // A trigger's filter reads the profile as its event left it: with triggers, each
        // event is written (and its triggers started) before the next.
        let together = if loaded.catalog.triggers.started_by.is_empty() { checked_rows.len().max(1) } else { 1 };
        for rows in checked_rows.chunks(together) {
            let ids: Vec<&str> = rows.iter().map(|&(i, _)| events[i].profile_id.as_str()).collect();
            let touch = |r: usize| touched.max(events[rows[r].0].time);
            let firsts = self.profiles.update_many(&ids, &loaded.layout, touch, ttl, |r, p| {
                let (index, EventChange { adds, purchase, grant, revoke }) = &rows[r];
                let event = &events[*index];
                if !p.first_sight(&event.id) {
                    return false;
                }
                for &(c, value) in adds {
                    Aggregated::add(p.aggregate_mut(c), &loaded.catalog.customers.computed[c], event.time, value);
                }
                p.consents = (p.consents | grant) & !revoke;
                if let Some(product) = purchase {
                    p.add_purchase(product);
                }
                true
            })?;
            for (&(index, _), first) in rows.iter().zip(firsts) {
                let event = &events[index];
                if first {
                    self.on_event(&loaded, event, !check_time)?;
                    report.accepted += 1;
                    if self.durable.is_some() {
                        applied.push(event.clone());
                    }
                } else {
                    report.duplicates += 1;
                }
            }
        }
        Ok((report, applied))
    }

    /// Journals what a write accepted (nothing when it accepted nothing).
    fn journal_accepted(&self, report: &WriteReport, record: impl FnOnce() -> Record) -> Result<()> {
        // Redis keeps profiles itself, under its own persistence.
        if report.accepted == 0 || !self.profiles.is_embedded() {
            return Ok(());
        }
        self.journal(record)
    }

    /// A stored profile, its computed attributes evaluated at `now` (the server's time when
    /// `None`); `None` when the store does not hold it.
    pub fn profile(&self, id: &str, now: Option<f64>) -> Result<Option<ProfileView>> {
        limits::check_profile_id(id)?;
        let now = self.clock.resolve(now)?;
        let loaded = self.current();
        let ttl = loaded.catalog.customers.idle_ttl;
        let Some((row, consents, purchases)) =
            self.profiles.read(id, &loaded.layout, now, ttl, |p| loaded.stored_vector(p, now))?
        else {
            return Ok(None);
        };
        let schema = &loaded.catalog.schema;
        let features = schema
            .features()
            .iter()
            .zip(&row)
            .filter(|(_, v)| !v.is_nan())
            .map(|(f, &v)| (f.name.clone(), Value::decoded(f, v)))
            .collect();
        Ok(Some(ProfileView {
            id: id.to_owned(),
            features,
            consents: loaded.channels_of(consents).into_iter().map(str::to_owned).collect(),
            purchases: purchases.iter().map(|p| p.to_string()).collect(),
        }))
    }

    /// Profiles the embedded store holds (`None` when they are in Redis).
    pub fn profile_count(&self) -> Option<usize> {
        self.profiles.held()
    }

    /// Erases a profile: features, events, contact history and its pending decisions (which
    /// take no outcome afterwards). True when the engine held anything of it.
    pub fn delete_profile(&self, id: &str) -> Result<bool> {
        limits::check_profile_id(id)?;
        let _gate = self.begin_change()?;
        let _order = self.write_order();
        let found = self.erase(id)?;
        self.journal(|| Record::ProfileDeleted(id.to_owned()))?;
        Ok(found)
    }

    fn erase(&self, id: &str) -> Result<bool> {
        let triggers = self.erase_triggers(id)?;
        let profile = self.profiles.remove(id)?;
        let history = self.contacts.remove(id);
        let pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).forget_profile(id) > 0;
        let shared = self.erase_shared(id)?;
        Ok(profile || history || pending || triggers || shared)
    }

    /// Decides by customer id: the stored profile (or, for a never-seen id, the declared
    /// defaults when the catalog says so), with the request's context features over it.
    pub fn decide_stored(&self, request: &StoredDecideRequest<'_>) -> Result<Vec<Decision>> {
        let now = self.clock.check(request.now)?;
        let found =
            self.stored_features(request.profile_id, request.context, request.consents, request.purchases, now)?;
        let consents: Vec<&str> = found.consents.iter().map(String::as_str).collect();
        let bought: Vec<&str> = found.purchases.iter().map(String::as_str).collect();
        self.decide_page(&DecideRequest {
            placements: request.placements,
            features: &found.features,
            consents: &consents,
            now,
            explain: request.explain,
            profile_id: Some(request.profile_id),
            history: request.history,
            purchases: &bought,
            exclude: request.exclude,
        })
    }

    /// Whether a request decides by id: it has an id, no packed features, and not every
    /// feature by name (those it names are then context over the stored profile).
    pub fn decides_by_id(&self, has_id: bool, packed: usize, named: usize) -> bool {
        has_id && packed == 0 && named < self.current().catalog.schema.len()
    }

    /// What deciding by id decides on: the stored profile's full vector at `now` (computed
    /// attributes, defaults, and `context` over them), and its consents and purchases with the
    /// request's added. For decision paths that do not run through [`Engine::decide_stored`]
    /// (the Redis store's).
    pub fn stored_features(
        &self,
        id: &str,
        context: &[(&str, NamedValue<'_>)],
        consents: &[&str],
        purchases: &[&str],
        now: f64,
    ) -> Result<StoredFeatures> {
        limits::check_profile_id(id)?;
        let now = self.clock.check(now)?;
        let loaded = self.current();
        let rules = &loaded.catalog.customers;
        let stored = self.profiles.read(id, &loaded.layout, now, rules.idle_ttl, |p| loaded.stored_vector(p, now))?;
        let (mut row, consent_bits, stored_purchases) = match (stored, rules.unknown) {
            (Some(found), _) => found,
            (None, UnknownProfile::Defaults) => loaded.stored_vector(&StoredProfile::new(&loaded.layout, now), now),
            (None, UnknownProfile::NotFound) => return Err(Error::UnknownProfile(id.to_owned())),
        };
        let schema = &loaded.catalog.schema;
        for &(name, value) in context {
            let index = schema.index_of(name).ok_or_else(|| invalid(format!("unknown context feature '{name}'")))?;
            row[index] = schema.encode_value(index, value)?;
        }
        let missing: Vec<&str> =
            schema.features().iter().zip(&row).filter(|(_, v)| v.is_nan()).map(|(f, _)| f.name.as_str()).collect();
        if !missing.is_empty() {
            return Err(invalid(format!(
                "profile '{id}' has no value for {} and the catalog declares no default; write them or send them as \
                 context",
                missing.join(", ")
            )));
        }
        let union = |stored: Vec<String>, given: &[&str]| {
            let mut all = stored;
            all.extend(
                given.iter().filter(|g| !all.iter().any(|s| s == **g)).map(|g| (*g).to_owned()).collect::<Vec<_>>(),
            );
            all
        };
        let stored_consents = loaded.channels_of(consent_bits).into_iter().map(str::to_owned).collect();
        Ok(StoredFeatures {
            features: row,
            consents: union(stored_consents, consents),
            purchases: union(stored_purchases.iter().map(|p| p.to_string()).collect(), purchases),
        })
    }

    /// Replays a journaled profile change.
    pub(super) fn replay_profiles(&self, record: Record) -> bool {
        match record {
            Record::Profiles { time, rows } => self.upsert_at(&rows, time).is_ok_and(|(r, _)| r.accepted > 0),
            Record::Events { touched, events } => {
                self.track_at(&events, false, touched).is_ok_and(|(r, _)| r.accepted > 0)
            }
            Record::ProfileDeleted(id) => self.erase(&id).is_ok(),
            _ => false,
        }
    }
}

fn column_change(loaded: &Loaded, id: &str, row: usize, columns: &[(usize, &Column, Vec<f32>)]) -> Result<Change> {
    limits::check_profile_id(id)?;
    let schema = &loaded.catalog.schema;
    let mut values = Vec::with_capacity(columns.len());
    for (index, column, table) in columns {
        let feature = &schema.features()[*index];
        let value = match column {
            Column::Numbers { present: Some(present), .. } if !present[row] => continue,
            Column::Numbers { values, .. } if feature.kind == FeatureKind::Bool => match values[row] {
                0.0 => 0.0,
                1.0 => 1.0,
                other => return Err(invalid(format!("feature '{}' takes a flag (0 or 1), got {other}", feature.name))),
            },
            Column::Numbers { values, .. } => schema.encode_value(*index, NamedValue::Number(values[row]))?,
            Column::Categories { codes, .. } if codes[row] < 0 => continue,
            Column::Categories { names, codes } => {
                let code = usize::try_from(codes[row]).unwrap_or(usize::MAX);
                match (table.get(code), names.get(code)) {
                    (Some(v), _) if !v.is_nan() => *v,
                    (_, Some(given)) => schema.encode_value(*index, NamedValue::Category(given))?,
                    (_, None) => {
                        return Err(invalid(format!(
                            "feature '{}': code {code} is not in the column's dictionary of {} values",
                            feature.name,
                            names.len()
                        )));
                    }
                }
            }
        };
        values.push((*index, value));
    }
    Ok(Change { values, grant: 0, revoke: 0, purchases: Vec::new() })
}

/// A columnar row as a write by name, for the journal.
fn write_of(loaded: &Loaded, id: &str, change: &Change) -> ProfileWrite {
    let features = loaded.catalog.schema.features();
    ProfileWrite {
        id: id.to_owned(),
        features: change
            .values
            .iter()
            .map(|&(i, v)| (features[i].name.clone(), Value::decoded(&features[i], v)))
            .collect(),
        ..ProfileWrite::default()
    }
}
