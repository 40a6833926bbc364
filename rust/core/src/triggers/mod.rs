//! Triggers: an event type with a filter starts a timer; cancel-on events stop it; when it
//! fires the engine decides an outbound placement on the customer as they are then, within
//! quiet hours and the contact policy, and hands the decision to subscribers until they
//! acknowledge it. This room holds the definitions and the timer and delivery bookkeeping;
//! the engine (`engine/triggers.rs`) composes them with decisions and the journal.

pub mod timers;

pub use timers::{Delivery, HistoryEntry, Instance, MAX_DELIVERIES, Started, Timers, TimersRecord};

use std::collections::HashMap;

use serde::Deserialize;

use crate::catalog::FeatureSpec;
use crate::error::{Location, Result, catalog_error};
use crate::rules::RuleSet;
use crate::schema::{Feature, FeatureKind, Schema};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub id: String,
    pub event: String,
    #[serde(default)]
    pub properties: Vec<FeatureSpec>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub delay: f64,
    #[serde(default)]
    pub cancel_on: Vec<CancelSpec>,
    pub placement: String,
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursSpec>,
    #[serde(default)]
    pub reentry: Option<f64>,
    #[serde(default)]
    pub max_live: Option<usize>,
    #[serde(default)]
    pub delivery_ttl: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelSpec {
    pub event: String,
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursSpec {
    pub start: u32,
    pub end: u32,
    pub time_zone: String,
    pub without_time_zone: String,
    pub action: String,
    #[serde(default)]
    pub ttl: Option<f64>,
}

/// What quiet hours do to an instance that fires inside them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuietAction {
    /// Wait for them to end, at most `ttl` seconds past the instance's fire time.
    Queue {
        ttl: f64,
    },
    Discard,
}

/// Quiet hours for a profile whose time-zone feature has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutTimeZone {
    Utc,
    Ignore,
    Discard,
}

#[derive(Debug, Clone)]
pub struct QuietHours {
    pub start: u32,
    pub end: u32,
    /// The feature holding the profile's time zone: its UTC offset in hours (a number), or
    /// an IANA name (a category whose values are all IANA names).
    pub time_zone: usize,
    /// For a category feature, the zone of each of its values.
    pub zones: Option<Vec<chrono_tz::Tz>>,
    pub without: WithoutTimeZone,
    pub action: QuietAction,
}

impl QuietHours {
    /// The profile's UTC offset in hours at `now` from its stored time-zone value (an IANA
    /// zone's, daylight saving included); `None` for a value that names no zone.
    pub fn offset_hours(&self, value: f32, now: f64) -> Option<f64> {
        use chrono::{Offset, TimeZone};
        let Some(zones) = &self.zones else { return Some(f64::from(value)) };
        let zone = zones.get(value as usize)?;
        let utc = chrono::DateTime::from_timestamp(now.floor() as i64, 0)?.naive_utc();
        Some(f64::from(zone.offset_from_utc_datetime(&utc).fix().local_minus_utc()) / 3_600.0)
    }

    /// When the quiet hours around `now` end, or `None` when `now` is outside them, for a
    /// profile `offset_hours` from UTC.
    pub fn ends_after(&self, now: f64, offset_hours: f64) -> Option<f64> {
        let local = now + offset_hours * 3_600.0;
        let hour_of_day = local.rem_euclid(86_400.0) / 3_600.0;
        let (start, end) = (f64::from(self.start), f64::from(self.end));
        let quiet = if start <= end {
            start <= hour_of_day && hour_of_day < end
        } else {
            hour_of_day >= start || hour_of_day < end
        };
        if !quiet {
            return None;
        }
        let until = if hour_of_day < end { end - hour_of_day } else { 24.0 - hour_of_day + end };
        Some(now + until * 3_600.0)
    }
}

#[derive(Debug)]
pub struct Trigger {
    pub id: String,
    pub event: String,
    /// Property names the filter reads, laid out after the profile's features.
    pub properties: Vec<Feature>,
    /// Over the profile's features followed by `properties`.
    pub filter: Option<RuleSet>,
    pub filter_schema: Schema,
    pub key: Option<String>,
    pub delay: f64,
    pub placement: usize,
    pub quiet_hours: Option<QuietHours>,
    pub reentry: f64,
    pub max_live: usize,
    pub delivery_ttl: f64,
}

impl Trigger {
    /// Seconds past its fire time an instance may still wait (quiet hours that queue it).
    pub fn longest_wait(&self) -> f64 {
        match self.quiet_hours.as_ref().map(|q| q.action) {
            Some(QuietAction::Queue { ttl }) => ttl,
            _ => 0.0,
        }
    }
}

/// Every trigger of a catalog, indexed by the event types that start or cancel them.
#[derive(Debug, Default)]
pub struct TriggerSet {
    pub triggers: Vec<Trigger>,
    /// Event type -> triggers it starts.
    pub started_by: HashMap<String, Vec<usize>>,
    /// Event type -> (trigger, the property matched against the instance key).
    pub cancelled_by: HashMap<String, Vec<(usize, Option<String>)>>,
}

/// Deliveries wait for their acknowledgement a day unless the trigger says.
pub const DEFAULT_DELIVERY_TTL: f64 = 86_400.0;
/// Longest delay, re-entry window, quiet-hours ttl and delivery ttl.
pub const MAX_TRIGGER_DURATION: f64 = 400.0 * 86_400.0;
/// Live instances one key may have at once.
pub const MAX_LIVE_PER_KEY: usize = 100;

impl TriggerSet {
    pub fn compile(
        specs: Vec<TriggerSpec>,
        schema: &Schema,
        placement_index: &HashMap<String, usize>,
        feature: impl Fn(FeatureSpec) -> Result<Feature>,
    ) -> Result<Self> {
        let mut set = Self::default();
        for spec in specs {
            let at = || Location::Trigger(spec.id.clone());
            let fail = |detail: String| Err(catalog_error(at(), detail));
            if set.triggers.iter().any(|t| t.id == spec.id) {
                return fail("duplicate id".to_owned());
            }
            if spec.event.is_empty() {
                return fail("needs the event type that starts it".to_owned());
            }
            let duration = |what: &str, value: f64, zero_ok: bool| -> Result<f64> {
                if value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0)) && value <= MAX_TRIGGER_DURATION {
                    Ok(value)
                } else {
                    Err(catalog_error(
                        at(),
                        format!(
                            "{what} must be {} and at most 400 days, got {value} s",
                            if zero_ok { ">= 0" } else { "> 0" }
                        ),
                    ))
                }
            };
            let delay = duration("delay", spec.delay, true)?;
            let reentry = spec.reentry.map(|r| duration("reentry", r, false)).transpose()?.unwrap_or(0.0);
            let delivery_ttl = duration("delivery_ttl", spec.delivery_ttl.unwrap_or(DEFAULT_DELIVERY_TTL), false)?;
            let max_live = spec.max_live.unwrap_or(1);
            if max_live == 0 || max_live > MAX_LIVE_PER_KEY {
                return fail(format!("max_live must be 1..={MAX_LIVE_PER_KEY}, got {max_live}"));
            }
            let Some(&placement) = placement_index.get(&spec.placement) else {
                return fail(format!("unknown placement '{}'", spec.placement));
            };
            let properties = spec.properties.into_iter().map(&feature).collect::<Result<Vec<_>>>()?;
            for p in &properties {
                if schema.index_of(&p.name).is_some() {
                    return fail(format!("property '{}' has the name of a feature; name it apart", p.name));
                }
            }
            let filter_schema =
                Schema::new(schema.features().iter().cloned().chain(properties.iter().cloned()).collect())?;
            let filter = match &spec.filter {
                Some(text) => Some(RuleSet::compile(&filter_schema, [(at(), Some(text.as_str()))])?),
                None => None,
            };
            let quiet_hours = spec.quiet_hours.map(|q| quiet(&q, schema, &at)).transpose()?;
            for cancel in &spec.cancel_on {
                if cancel.event.is_empty() {
                    return fail("a cancel_on entry needs an event type".to_owned());
                }
                if cancel.key.is_some() && spec.key.is_none() {
                    return fail("cancel_on matches a key, but the trigger has no key".to_owned());
                }
            }
            let index = set.triggers.len();
            set.started_by.entry(spec.event.clone()).or_default().push(index);
            for cancel in spec.cancel_on {
                set.cancelled_by.entry(cancel.event).or_default().push((index, cancel.key));
            }
            set.triggers.push(Trigger {
                id: spec.id,
                event: spec.event,
                properties,
                filter,
                filter_schema,
                key: spec.key,
                delay,
                placement,
                quiet_hours,
                reentry,
                max_live,
                delivery_ttl,
            });
        }
        Ok(set)
    }

    /// Whether any trigger starts or is cancelled on events of this type.
    pub fn mentions(&self, kind: &str) -> bool {
        self.started_by.contains_key(kind) || self.cancelled_by.contains_key(kind)
    }

    pub fn by_id(&self, id: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| t.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }
}

fn quiet(spec: &QuietHoursSpec, schema: &Schema, at: &dyn Fn() -> Location) -> Result<QuietHours> {
    let fail = |detail: String| Err(catalog_error(at(), format!("quiet_hours: {detail}")));
    if spec.start > 23 || spec.end > 23 || spec.start == spec.end {
        return fail(format!("start and end are different hours 0..23, got {} and {}", spec.start, spec.end));
    }
    let Some(time_zone) = schema.index_of(&spec.time_zone) else {
        return fail(format!("time_zone names unknown feature '{}'", spec.time_zone));
    };
    let zones = match &schema.features()[time_zone].kind {
        FeatureKind::Float | FeatureKind::Int => None,
        FeatureKind::Category(values) => Some(
            values
                .iter()
                .map(|v| {
                    v.parse::<chrono_tz::Tz>().map_err(|_| {
                        let detail = format!(
                            "time_zone feature '{}' has value '{v}', which is not an IANA time zone \
                             (such as Europe/Paris)",
                            spec.time_zone
                        );
                        catalog_error(at(), format!("quiet_hours: {detail}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        FeatureKind::Bool => {
            return fail(format!(
                "time_zone feature '{}' must be a number (the UTC offset in hours) or a category of IANA \
                 time zones",
                spec.time_zone
            ));
        }
    };
    let without = match spec.without_time_zone.as_str() {
        "utc" => WithoutTimeZone::Utc,
        "ignore" => WithoutTimeZone::Ignore,
        "discard" => WithoutTimeZone::Discard,
        other => return fail(format!("without_time_zone must be utc, ignore or discard, got '{other}'")),
    };
    let action = match (spec.action.as_str(), spec.ttl) {
        ("queue", Some(ttl)) if ttl.is_finite() && ttl > 0.0 && ttl <= MAX_TRIGGER_DURATION => {
            QuietAction::Queue { ttl }
        }
        ("queue", Some(ttl)) => return fail(format!("ttl must be positive and at most 400 days, got {ttl} s")),
        ("queue", None) => return fail("queue needs a ttl: how long an instance may wait".to_owned()),
        ("discard", None) => QuietAction::Discard,
        ("discard", Some(_)) => return fail("discard takes no ttl".to_owned()),
        (other, _) => return fail(format!("action must be queue or discard, got '{other}'")),
    };
    Ok(QuietHours { start: spec.start, end: spec.end, time_zone, zones, without, action })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(start: u32, end: u32) -> QuietHours {
        QuietHours {
            start,
            end,
            time_zone: 0,
            zones: None,
            without: WithoutTimeZone::Utc,
            action: QuietAction::Discard,
        }
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_follow_the_offset() {
        let night = hours(22, 8);
        let day = 86_400.0 * 20_000.0; // a midnight, UTC
        assert_eq!(night.ends_after(day + 23.0 * 3_600.0, 0.0), Some(day + 32.0 * 3_600.0));
        assert_eq!(night.ends_after(day + 3.0 * 3_600.0, 0.0), Some(day + 8.0 * 3_600.0));
        assert_eq!(night.ends_after(day + 12.0 * 3_600.0, 0.0), None);
        // 12:00 UTC is 23:00 at UTC+11: quiet until 08:00 local, 21:00 UTC.
        assert_eq!(night.ends_after(day + 12.0 * 3_600.0, 11.0), Some(day + 21.0 * 3_600.0));
        let lunch = hours(12, 14);
        assert_eq!(lunch.ends_after(day + 13.0 * 3_600.0, 0.0), Some(day + 14.0 * 3_600.0));
        assert_eq!(lunch.ends_after(day + 14.0 * 3_600.0, 0.0), None);
    }

    #[test]
    fn an_iana_zone_gives_its_offset_at_the_time_daylight_saving_included() {
        let zones = ["Europe/Paris", "America/New_York", "Asia/Kolkata"].map(|z| z.parse().unwrap()).to_vec();
        let quiet = QuietHours { zones: Some(zones), ..hours(22, 8) };
        let january = 1_767_268_800.0; // 2026-01-01 12:00 UTC
        let july = 1_782_907_200.0; // 2026-07-01 12:00 UTC
        assert_eq!(quiet.offset_hours(0.0, january), Some(1.0));
        assert_eq!(quiet.offset_hours(0.0, july), Some(2.0));
        assert_eq!(quiet.offset_hours(1.0, january), Some(-5.0));
        assert_eq!(quiet.offset_hours(1.0, july), Some(-4.0));
        assert_eq!(quiet.offset_hours(2.0, july), Some(5.5));
        assert_eq!(quiet.offset_hours(7.0, july), None, "no such value");
    }
}
