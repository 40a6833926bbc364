//! What the catalog declares about the customers the engine holds: feature defaults,
//! attributes computed from events, what each event type does, and how many profiles the
//! store keeps for how long. The state itself lives in `store::profiles`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Location, Result, catalog_error};
use crate::limits::{DEFAULT_PROFILE_CAPACITY, DEFAULT_PROFILE_IDLE_TTL, MAX_PROFILES, MAX_WINDOW};
use crate::schema::{FeatureKind, NamedValue, Schema};

/// Keys of a profile written as one flat mapping (the Python dict form): no feature may
/// take these names.
pub const RESERVED_NAMES: &[&str] = &["id", "consents", "revoked_consents", "purchases"];

/// A feature's declared default, as written in the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum DefaultSpec {
    Flag(bool),
    Number(f64),
    Category(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputedSpec {
    pub event: String,
    pub aggregate: String,
    #[serde(default)]
    pub property: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub window: Option<f64>,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    #[serde(rename = "type")]
    pub kind: String,
    /// The property naming the product bought.
    #[serde(default)]
    pub purchase: Option<String>,
    #[serde(default)]
    pub grant: Option<String>,
    #[serde(default)]
    pub revoke: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesSpec {
    #[serde(default)]
    pub unknown: Option<String>,
    #[serde(default)]
    pub capacity: Option<usize>,
    /// Seconds.
    #[serde(default)]
    pub idle_ttl: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    /// Events in the window.
    Count,
    /// A numeric property summed over the window.
    Sum,
    /// The property of the latest event.
    Last,
    /// Time since the latest event, in `unit`s.
    TimeSince,
}

/// One computed attribute: a feature of the schema filled from events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    pub feature: usize,
    pub event: String,
    pub aggregate: Aggregate,
    pub property: Option<String>,
    /// Seconds, for `count` and `sum`.
    pub window: f64,
    /// Seconds per unit, for `time_since`.
    pub unit: f64,
}

impl Computed {
    /// Width of one time bucket of a windowed attribute.
    pub fn bucket_width(&self) -> f64 {
        self.window / crate::limits::WINDOW_BUCKETS as f64
    }
}

/// What an event of one type does to its profile.
#[derive(Debug, Clone, Default)]
pub struct EventEffects {
    /// Indices into [`CustomerRules::computed`].
    pub computed: Vec<usize>,
    pub purchase: Option<String>,
    pub grant: Option<usize>,
    pub revoke: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownProfile {
    /// A never-seen id decides on the declared defaults.
    Defaults,
    /// A never-seen id is NOT_FOUND.
    NotFound,
}

#[derive(Debug, Clone)]
pub struct CustomerRules {
    /// Per feature: its default, NaN when none is declared.
    pub defaults: Vec<f32>,
    pub computed: Vec<Computed>,
    /// Per feature: its index in `computed`, if it is computed.
    pub computed_of: Vec<Option<usize>>,
    pub events: HashMap<String, EventEffects>,
    pub unknown: UnknownProfile,
    pub capacity: usize,
    pub idle_ttl: f64,
}

impl CustomerRules {
    /// Compiles the declarations against the schema: `defaults` and `computed` are per
    /// feature (in schema order, `None` where the feature declares none).
    pub fn compile(
        schema: &Schema,
        defaults: &[Option<DefaultSpec>],
        computed: &[Option<ComputedSpec>],
        events: &[EventSpec],
        profiles: &ProfilesSpec,
        channel_index: &HashMap<String, usize>,
    ) -> Result<Self> {
        let mut default_values = vec![f32::NAN; schema.len()];
        for (index, feature) in schema.features().iter().enumerate() {
            let at = || Location::Feature(feature.name.clone());
            if RESERVED_NAMES.contains(&feature.name.as_str()) {
                return Err(catalog_error(
                    at(),
                    format!(
                        "'{}' is reserved for the profile's own fields ({})",
                        feature.name,
                        RESERVED_NAMES.join(", ")
                    ),
                ));
            }
            if let Some(default) = &defaults[index] {
                let value = match default {
                    DefaultSpec::Flag(b) => NamedValue::Flag(*b),
                    DefaultSpec::Number(n) => NamedValue::Number(*n),
                    DefaultSpec::Category(c) => NamedValue::Category(c),
                };
                default_values[index] =
                    schema.encode_value(index, value).map_err(|e| catalog_error(at(), format!("default: {e}")))?;
            }
        }
        let mut compiled = Vec::new();
        let mut computed_of = vec![None; schema.len()];
        for (index, spec) in computed.iter().enumerate() {
            let Some(spec) = spec else { continue };
            let feature = &schema.features()[index];
            let c = compile_computed(index, &feature.name, &feature.kind, spec, !default_values[index].is_nan())?;
            computed_of[index] = Some(compiled.len());
            compiled.push(c);
        }
        let mut effects: HashMap<String, EventEffects> = HashMap::new();
        for (i, c) in compiled.iter().enumerate() {
            effects.entry(c.event.clone()).or_default().computed.push(i);
        }
        for spec in events {
            let at = || Location::Event(spec.kind.clone());
            if spec.kind.is_empty() {
                return Err(catalog_error(Location::Catalog, "an event needs a type"));
            }
            let entry = effects.entry(spec.kind.clone()).or_default();
            if entry.purchase.is_some() || entry.grant.is_some() || entry.revoke.is_some() {
                return Err(catalog_error(at(), "event type listed twice"));
            }
            let channel = |name: &Option<String>| -> Result<Option<usize>> {
                name.as_ref()
                    .map(|c| {
                        channel_index
                            .get(c)
                            .copied()
                            .ok_or_else(|| catalog_error(at(), format!("consent names unknown channel '{c}'")))
                    })
                    .transpose()
            };
            entry.grant = channel(&spec.grant)?;
            entry.revoke = channel(&spec.revoke)?;
            if entry.grant.is_some() && entry.revoke.is_some() {
                return Err(catalog_error(at(), "an event type grants or revokes a consent, not both"));
            }
            entry.purchase.clone_from(&spec.purchase);
            if entry.purchase.is_none() && entry.grant.is_none() && entry.revoke.is_none() {
                return Err(catalog_error(at(), "says nothing to do: give purchase, grant or revoke"));
            }
        }
        let unknown = match profiles.unknown.as_deref() {
            None | Some("not_found") => UnknownProfile::NotFound,
            Some("defaults") => UnknownProfile::Defaults,
            Some(other) => {
                return Err(catalog_error(
                    Location::Profiles,
                    format!("unknown must be 'defaults' or 'not_found', got '{other}'"),
                ));
            }
        };
        if unknown == UnknownProfile::Defaults {
            let missing: Vec<&str> = schema
                .features()
                .iter()
                .enumerate()
                .filter(|(i, _)| computed_of[*i].is_none() && default_values[*i].is_nan())
                .map(|(_, f)| f.name.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(catalog_error(
                    Location::Profiles,
                    format!(
                        "unknown: defaults needs a default for every stored feature; none for {}",
                        missing.join(", ")
                    ),
                ));
            }
        }
        let capacity = profiles.capacity.unwrap_or(DEFAULT_PROFILE_CAPACITY);
        if capacity == 0 || capacity > MAX_PROFILES {
            return Err(catalog_error(
                Location::Profiles,
                format!("capacity must be 1..={MAX_PROFILES}, got {capacity}"),
            ));
        }
        let idle_ttl = profiles.idle_ttl.unwrap_or(DEFAULT_PROFILE_IDLE_TTL);
        if !(idle_ttl.is_finite() && idle_ttl > 0.0) {
            return Err(catalog_error(Location::Profiles, "idle_ttl must be a positive duration"));
        }
        Ok(Self {
            defaults: default_values,
            computed: compiled,
            computed_of,
            events: effects,
            unknown,
            capacity,
            idle_ttl,
        })
    }
}

fn compile_computed(
    feature: usize,
    name: &str,
    kind: &FeatureKind,
    spec: &ComputedSpec,
    has_default: bool,
) -> Result<Computed> {
    let at = || Location::Feature(name.to_owned());
    let fail = |detail: String| Err(catalog_error(at(), format!("computed: {detail}")));
    if spec.event.is_empty() {
        return fail("needs the event type it is computed from".to_owned());
    }
    let aggregate = match spec.aggregate.as_str() {
        "count" => Aggregate::Count,
        "sum" => Aggregate::Sum,
        "last" => Aggregate::Last,
        "time_since" => Aggregate::TimeSince,
        other => return fail(format!("unknown aggregate '{other}'; use count, sum, last or time_since")),
    };
    let numeric = matches!(kind, FeatureKind::Float | FeatureKind::Int);
    let windowed = matches!(aggregate, Aggregate::Count | Aggregate::Sum);
    let label = spec.aggregate.as_str();
    match (aggregate, &spec.property) {
        (Aggregate::Sum | Aggregate::Last, None) => return fail(format!("{label} needs the property it reads")),
        (Aggregate::Count | Aggregate::TimeSince, Some(_)) => {
            return fail(format!("{label} reads no property"));
        }
        _ => {}
    }
    if aggregate != Aggregate::Last && !numeric {
        return fail(format!("{label} makes a number: the feature must be int or float"));
    }
    if matches!(aggregate, Aggregate::Sum | Aggregate::TimeSince) && *kind == FeatureKind::Int {
        return fail(format!("{label} makes fractions: the feature must be float"));
    }
    let window = match (windowed, spec.window) {
        (true, Some(w)) if w.is_finite() && w > 0.0 && w <= MAX_WINDOW => w,
        (true, Some(w)) => return fail(format!("window must be positive and at most 400 days, got {w} s")),
        (true, None) => return fail(format!("{label} needs a window")),
        (false, Some(_)) => return fail(format!("{label} takes no window: it reads the latest event")),
        (false, None) => f64::INFINITY,
    };
    if !windowed && !has_default {
        return fail(format!("{label} needs a default, for profiles without such an event yet"));
    }
    let unit = match (aggregate, spec.unit.as_deref()) {
        (Aggregate::TimeSince, None | Some("seconds")) => 1.0,
        (Aggregate::TimeSince, Some("minutes")) => 60.0,
        (Aggregate::TimeSince, Some("hours")) => 3_600.0,
        (Aggregate::TimeSince, Some("days")) => 86_400.0,
        (Aggregate::TimeSince, Some(other)) => {
            return fail(format!("unknown unit '{other}'; use seconds, minutes, hours or days"));
        }
        (_, Some(_)) => return fail("only time_since takes a unit".to_owned()),
        (_, None) => 1.0,
    };
    Ok(Computed { feature, event: spec.event.clone(), aggregate, property: spec.property.clone(), window, unit })
}
