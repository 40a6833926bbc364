//! Bounds on what a request or a catalog may ask of the engine, and whose clock it runs on.
//! Every limit lives here once; the binding publishes them (`_core.LIMITS`) so the Python
//! layer and the README quote the same numbers.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Longest profile id, in bytes.
pub const MAX_PROFILE_ID_BYTES: usize = 256;
/// Placements decided together as one page.
pub const MAX_PLACEMENTS_PER_PAGE: usize = 64;
/// Largest feature value magnitude a request may carry: beyond it a single context could
/// swamp what a linear policy has learned (x'x would dwarf the rest of its statistics).
pub const MAX_FEATURE_MAGNITUDE: f32 = 1e9;
/// Catalog size: offers, placements, features, experiments.
pub const MAX_OFFERS: usize = 20_000;
pub const MAX_PLACEMENTS: usize = 2_000;
pub const MAX_FEATURES: usize = 2_048;
pub const MAX_EXPERIMENTS: usize = 256;
/// Coordinates a contextual policy's model reads (a bias, one per number or flag, one per
/// category value, and interaction products): each arm keeps about coords^2 / 2 weights.
pub const MAX_POLICY_COORDINATES: usize = 512;
/// Profiles whose contact history the embedded store keeps in memory (about 200 bytes each
/// with one contact); past it the longest idle go first.
pub const MAX_CONTACT_PROFILES: usize = 2_000_000;
/// Profiles the embedded store may be asked to hold (`profiles.capacity`), and what it holds
/// when the catalog does not say.
pub const MAX_PROFILES: usize = 50_000_000;
pub const DEFAULT_PROFILE_CAPACITY: usize = 1_000_000;
/// A profile nobody wrote or decided for in this long is let go, unless the catalog says.
pub const DEFAULT_PROFILE_IDLE_TTL: f64 = 365.0 * 86_400.0;
/// Longest event id and event type, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 256;
/// Event ids remembered per profile to apply a repeated id once: a retry of any of the
/// profile's last this-many events is recognised.
pub const EVENT_IDS_PER_PROFILE: usize = 64;
/// Purchases remembered per profile (the most recent), for purchase suppression.
pub const MAX_PURCHASES_PER_PROFILE: usize = 64;
/// Properties one event may carry.
pub const MAX_EVENT_PROPERTIES: usize = 64;
/// A windowed computed attribute keeps this many time buckets per window: memory stays
/// bounded per profile, and the window's far edge is exact to 1/64 of its length.
pub const WINDOW_BUCKETS: usize = 64;
/// Longest window of a computed attribute.
pub const MAX_WINDOW: f64 = 400.0 * 86_400.0;
/// Rejections listed in one write's report (all are counted).
pub const MAX_LISTED_REJECTIONS: usize = 1_000;
/// A trigger subscriber's visibility timeout: seconds a delivered decision waits for its
/// acknowledgement before it is delivered again (least, most, and when not said).
pub const MIN_VISIBILITY: f64 = 1.0;
pub const MAX_VISIBILITY: f64 = 3_600.0;
pub const DEFAULT_VISIBILITY: f64 = 30.0;
/// Triggered decisions one poll (or one subscriber) may hold in flight, and by default.
pub const MAX_IN_FLIGHT: usize = 10_000;
pub const DEFAULT_IN_FLIGHT: usize = 100;
/// Seconds a request's own `now` may differ from the server clock.
pub const DEFAULT_MAX_CLOCK_SKEW: f64 = 300.0;

/// Whose time a request runs at. A server runs on its own clock: a request may state its
/// time only within a skew of it, so no client can expire pending decisions, reset a budget
/// window or erase contact history by dating a request. A simulation (tests, the demo,
/// back-testing) drives time itself, and says so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    Wall { max_skew: f64 },
    Simulated,
}

impl Default for Clock {
    fn default() -> Self {
        Self::Wall { max_skew: DEFAULT_MAX_CLOCK_SKEW }
    }
}

/// The server clock, unix seconds.
pub fn wall_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Clock {
    /// `kind` is "wall" or "simulated"; `max_skew` applies to the wall clock.
    pub fn parse(kind: &str, max_skew: Option<f64>) -> Result<Self> {
        match (kind, max_skew) {
            ("wall", None) => Ok(Self::default()),
            ("wall", Some(s)) if s.is_finite() && s >= 0.0 => Ok(Self::Wall { max_skew: s }),
            ("wall", Some(s)) => Err(Error::InvalidInput(format!("max_clock_skew must be >= 0 seconds, got {s}"))),
            ("simulated", None) => Ok(Self::Simulated),
            ("simulated", Some(_)) => {
                Err(Error::InvalidInput("max_clock_skew applies to the wall clock, not a simulated one".to_owned()))
            }
            (other, _) => Err(Error::InvalidInput(format!("clock must be 'wall' or 'simulated', got '{other}'"))),
        }
    }

    /// The time a request runs at: its own `now` when given (and allowed), else the server's.
    pub fn resolve(self, now: Option<f64>) -> Result<f64> {
        match now {
            Some(t) => self.check(t),
            None => Ok(wall_seconds()),
        }
    }

    /// `now` if this clock accepts it as a request's time.
    pub fn check(self, now: f64) -> Result<f64> {
        if !now.is_finite() {
            return Err(Error::InvalidInput(format!("time must be a finite number of unix seconds, got {now}")));
        }
        if let Self::Wall { max_skew } = self {
            let off = now - wall_seconds();
            if off.abs() > max_skew {
                let way = if off > 0.0 { "ahead of" } else { "behind" };
                return Err(Error::InvalidInput(format!(
                    "time {now:.0} is {:.0} s {way} the server clock; a request's time may differ from it \
                     by at most {max_skew:.0} s (an engine with clock='simulated' takes any time)",
                    off.abs()
                )));
            }
        }
        Ok(now)
    }
}

impl Clock {
    /// `time` if it is not in the future by more than the skew (a contact reported from
    /// elsewhere may be old, never to come).
    pub fn check_not_future(self, time: f64) -> Result<f64> {
        match self {
            Self::Wall { max_skew } if time.is_finite() && time < wall_seconds() - max_skew => Ok(time),
            _ => self.check(time),
        }
    }
}

/// A profile id must be non-empty and at most [`MAX_PROFILE_ID_BYTES`] long.
pub fn check_profile_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidInput("profile id must not be empty".to_owned()));
    }
    if id.len() > MAX_PROFILE_ID_BYTES {
        return Err(Error::InvalidInput(format!(
            "profile id is {} bytes long; the limit is {MAX_PROFILE_ID_BYTES}",
            id.len()
        )));
    }
    Ok(())
}

/// Every limit by name, for the binding to publish.
pub fn all() -> Vec<(&'static str, f64)> {
    vec![
        ("max_profile_id_bytes", MAX_PROFILE_ID_BYTES as f64),
        ("max_placements_per_page", MAX_PLACEMENTS_PER_PAGE as f64),
        ("max_feature_magnitude", f64::from(MAX_FEATURE_MAGNITUDE)),
        ("max_offers", MAX_OFFERS as f64),
        ("max_placements", MAX_PLACEMENTS as f64),
        ("max_features", MAX_FEATURES as f64),
        ("max_experiments", MAX_EXPERIMENTS as f64),
        ("max_policy_coordinates", MAX_POLICY_COORDINATES as f64),
        ("max_contact_profiles", MAX_CONTACT_PROFILES as f64),
        ("max_rule_depth", crate::rules::MAX_RULE_DEPTH as f64),
        ("max_rule_bytes", crate::rules::MAX_RULE_BYTES as f64),
        ("default_max_clock_skew_seconds", DEFAULT_MAX_CLOCK_SKEW),
        ("max_profiles", MAX_PROFILES as f64),
        ("default_profile_capacity", DEFAULT_PROFILE_CAPACITY as f64),
        ("default_profile_idle_ttl_seconds", DEFAULT_PROFILE_IDLE_TTL),
        ("max_event_id_bytes", MAX_EVENT_ID_BYTES as f64),
        ("event_ids_per_profile", EVENT_IDS_PER_PROFILE as f64),
        ("max_purchases_per_profile", MAX_PURCHASES_PER_PROFILE as f64),
        ("max_event_properties", MAX_EVENT_PROPERTIES as f64),
        ("window_buckets", WINDOW_BUCKETS as f64),
        ("max_window_seconds", MAX_WINDOW),
        ("max_listed_rejections", MAX_LISTED_REJECTIONS as f64),
        ("min_visibility_seconds", MIN_VISIBILITY),
        ("max_visibility_seconds", MAX_VISIBILITY),
        ("default_visibility_seconds", DEFAULT_VISIBILITY),
        ("max_in_flight", MAX_IN_FLIGHT as f64),
        ("default_in_flight", DEFAULT_IN_FLIGHT as f64),
        ("max_timers", crate::triggers::timers::MAX_TIMERS as f64),
        ("max_deliveries", crate::triggers::MAX_DELIVERIES as f64),
        ("trigger_history_per_profile", crate::triggers::timers::HISTORY_PER_PROFILE as f64),
        ("default_max_pending", crate::engine::DEFAULT_MAX_PENDING as f64),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_takes_times_within_its_skew_only() {
        let clock = Clock::default();
        let now = wall_seconds();
        assert_eq!(clock.check(now + 10.0).unwrap(), now + 10.0);
        let ahead = clock.check(now + 365.0 * 86_400.0).unwrap_err().to_string();
        assert!(ahead.contains("s ahead of the server clock") && ahead.contains("at most 300 s"), "{ahead}");
        let behind = clock.check(now - 3_600.0).unwrap_err().to_string();
        assert!(behind.contains("3600 s behind"), "{behind}");
        assert!(clock.check(f64::NAN).is_err());
        assert!((clock.resolve(None).unwrap() - now).abs() < 60.0);
        assert_eq!(Clock::Simulated.check(1.0e6).unwrap(), 1.0e6);
        assert!(Clock::parse("sundial", None).is_err());
        assert_eq!(Clock::parse("wall", Some(5.0)).unwrap(), Clock::Wall { max_skew: 5.0 });
    }

    #[test]
    fn profile_ids_are_bounded() {
        assert!(check_profile_id("c-42").is_ok());
        assert!(check_profile_id("").unwrap_err().to_string().contains("must not be empty"));
        let long = "x".repeat(MAX_PROFILE_ID_BYTES + 1);
        assert!(check_profile_id(&long).unwrap_err().to_string().contains("the limit is 256"));
    }
}
