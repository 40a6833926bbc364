//! The catalog's contact policy, with cap targets resolved to channel and group names.

use serde::Deserialize;

use crate::error::{Location, Result, catalog_error};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactPolicySpec {
    #[serde(default)]
    pub caps: Vec<CapSpec>,
    #[serde(default)]
    pub cooldown_after_conversion: Option<f64>,
    #[serde(default)]
    pub cooldown_after_dismissal: Option<f64>,
    #[serde(default)]
    pub suppress_purchased: bool,
    #[serde(default)]
    pub max_per_group: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CapSpec {
    pub scope: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub max: u32,
    /// Seconds.
    pub window: f64,
    /// "open" (the default) or "closed": see [`Cap::fails_closed`].
    #[serde(default)]
    pub when_store_unavailable: Option<String>,
}

/// What a cap counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapScope {
    /// Contacts with the same offer (every offer has its own count).
    Offer,
    /// Contacts with offers of this exclusion group.
    Group(String),
    /// Contacts on this channel; applies to decisions on it.
    Channel(String),
    /// Every contact on every channel.
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cap {
    pub scope: CapScope,
    pub max: u32,
    pub window: f64,
    /// While a shared store (Redis) cannot be reached, nothing this cap governs is shown
    /// (instead of deciding without the cap's stored history).
    pub fails_closed: bool,
}

impl Cap {
    /// How explanations name the cap, e.g. `channel 'email'`.
    pub fn label(&self) -> String {
        match &self.scope {
            CapScope::Offer => "per-offer cap".to_owned(),
            CapScope::Group(g) => format!("group '{g}' cap"),
            CapScope::Channel(c) => format!("channel '{c}' cap"),
            CapScope::All => "all-channel cap".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactPolicy {
    pub caps: Vec<Cap>,
    pub cooldown_after_conversion: Option<f64>,
    pub cooldown_after_dismissal: Option<f64>,
    pub suppress_purchased: bool,
    /// At most this many offers of one exclusion group per decision (and per page).
    pub max_per_group: usize,
}

impl Default for ContactPolicy {
    fn default() -> Self {
        Self {
            caps: Vec::new(),
            cooldown_after_conversion: None,
            cooldown_after_dismissal: None,
            suppress_purchased: false,
            max_per_group: 1,
        }
    }
}

impl ContactPolicy {
    pub fn compile(spec: ContactPolicySpec, channels: &[String], groups: &[String]) -> Result<Self> {
        let at = || Location::Catalog;
        let mut caps = Vec::with_capacity(spec.caps.len());
        for cap in spec.caps {
            if cap.max == 0 || !(cap.window.is_finite() && cap.window > 0.0) {
                return Err(catalog_error(at(), "contact_policy: a cap needs max >= 1 and a positive window"));
            }
            let scope = match (cap.scope.as_str(), cap.channel, cap.group) {
                ("offer", None, None) => CapScope::Offer,
                ("all", None, None) => CapScope::All,
                ("channel", Some(c), None) if channels.contains(&c) => CapScope::Channel(c),
                ("group", None, Some(g)) if groups.contains(&g) => CapScope::Group(g),
                (scope, channel, group) => {
                    let detail = format!(
                        "contact_policy: cap with scope '{scope}' (channel {channel:?}, group {group:?}) \
                         does not name a known channel or group as its scope needs"
                    );
                    return Err(catalog_error(at(), detail));
                }
            };
            let fails_closed = match cap.when_store_unavailable.as_deref() {
                None | Some("open") => false,
                Some("closed") => true,
                Some(other) => {
                    let detail = format!("contact_policy: when_store_unavailable is 'open' or 'closed', got '{other}'");
                    return Err(catalog_error(at(), detail));
                }
            };
            caps.push(Cap { scope, max: cap.max, window: cap.window, fails_closed });
        }
        let positive = |d: Option<f64>| d.filter(|s| s.is_finite() && *s > 0.0);
        Ok(Self {
            caps,
            cooldown_after_conversion: positive(spec.cooldown_after_conversion),
            cooldown_after_dismissal: positive(spec.cooldown_after_dismissal),
            suppress_purchased: spec.suppress_purchased,
            max_per_group: spec.max_per_group.unwrap_or(1).max(1),
        })
    }

    /// How far back history matters; older events can be dropped.
    pub fn horizon(&self) -> f64 {
        self.caps
            .iter()
            .map(|c| c.window)
            .chain(self.cooldown_after_conversion)
            .chain(self.cooldown_after_dismissal)
            .fold(0.0, f64::max)
    }
}
