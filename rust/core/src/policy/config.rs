//! Policy configuration, as written in a catalog or given to a standalone bandit.
//!
//! A policy is a mapping with a `type` and that type's parameters. It is read through one
//! flat record of every known parameter, so a parameter given to the wrong type gets an
//! error naming the parameters that type does take.

use serde::{Deserialize, Serialize};

/// How arms are scored and chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// Beta-Bernoulli Thompson sampling, Beta(alpha, beta) prior.
    Thompson { alpha: f64, beta: f64 },
    /// Thompson sampling of a Gaussian mean, for real-valued rewards: the prior counts as
    /// `prior_strength` observations of mean `prior_mean` and variance `prior_variance`.
    GaussianThompson { prior_mean: f64, prior_strength: f64, prior_variance: f64 },
    /// Mean + exploration x sqrt(2 ln N / n); untried arms first.
    Ucb1 { exploration: f64 },
    /// The best mean, or with probability epsilon a uniformly random eligible arm.
    EpsilonGreedy { epsilon: f64 },
    /// Arms drawn with probability proportional to exp(mean x value x weight / temperature).
    Softmax { temperature: f64 },
    /// Disjoint LinUCB: theta'x + alpha sqrt(x' A^-1 x), A = ridge I + sum x x'.
    LinUcb { alpha: f64, ridge: f64 },
    /// Linear Thompson sampling: score ~ N(theta'x, scale^2 x' A^-1 x).
    LinThompson { scale: f64, ridge: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyConfig {
    #[serde(flatten)]
    pub kind: Kind,
    /// Weight kept by past observations at each new one of the same arm (1: remember all).
    pub discount: f64,
    /// Context-free policies only: learn from the last `window` rewards of each arm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    /// Contextual policies only: the feature names they use (all features when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Contextual policies only: pairs of feature names whose product (every pair of their
    /// coordinates, for categories) the model also reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactions: Option<Vec<[String; 2]>>,
    /// Contextual policies only: one model over the profile's coordinates times the offers'
    /// `attributes` (like Vowpal Wabbit's ADF mode) instead of one per offer, so an offer
    /// starts from what offers like it learned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// [min, max] of the rewards this policy learns from; an outcome outside it is refused, so
    /// no single report can take over what a placement has learned. See [`Self::reward_range`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewards: Option<[f64; 2]>,
}

/// Rewards a policy takes unless its catalog entry says `rewards: [min, max]`: beyond this a
/// single outcome would outweigh thousands of ordinary ones.
pub const DEFAULT_REWARD_BOUND: f64 = 1e6;

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            kind: Kind::Thompson { alpha: 1.0, beta: 1.0 },
            discount: 1.0,
            window: None,
            features: None,
            interactions: None,
            shared: false,
            rewards: None,
        }
    }
}

/// Why a policy configuration was refused, with the parameter at fault when there is one
/// (so the catalog loader can point at its line).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    pub parameter: Option<&'static str>,
    pub message: String,
}

impl PolicyError {
    fn of(parameter: &'static str, message: String) -> Self {
        Self { parameter: Some(parameter), message }
    }
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every parameter of every policy type; `from_raw` checks which ones apply.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    alpha: Option<f64>,
    beta: Option<f64>,
    prior_mean: Option<f64>,
    prior_strength: Option<f64>,
    prior_variance: Option<f64>,
    exploration: Option<f64>,
    epsilon: Option<f64>,
    temperature: Option<f64>,
    ridge: Option<f64>,
    scale: Option<f64>,
    discount: Option<f64>,
    window: Option<u32>,
    features: Option<Vec<String>>,
    interactions: Option<Vec<[String; 2]>>,
    shared: Option<bool>,
    rewards: Option<[f64; 2]>,
}

pub const POLICY_TYPES: [&str; 7] =
    ["thompson", "gaussian_thompson", "ucb1", "epsilon_greedy", "softmax", "lin_ucb", "lin_thompson"];

impl<'de> Deserialize<'de> for PolicyConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(deserializer)?;
        Self::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

impl PolicyConfig {
    /// A policy from its JSON form, every default filled in; the error names the parameter
    /// at fault when there is one.
    pub fn from_value(value: serde_json::Value) -> Result<Self, PolicyError> {
        let raw = Raw::deserialize(value).map_err(|e| PolicyError { parameter: None, message: e.to_string() })?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: Raw) -> Result<Self, PolicyError> {
        let given: Vec<(&'static str, bool)> = vec![
            ("alpha", raw.alpha.is_some()),
            ("beta", raw.beta.is_some()),
            ("prior_mean", raw.prior_mean.is_some()),
            ("prior_strength", raw.prior_strength.is_some()),
            ("prior_variance", raw.prior_variance.is_some()),
            ("exploration", raw.exploration.is_some()),
            ("epsilon", raw.epsilon.is_some()),
            ("temperature", raw.temperature.is_some()),
            ("ridge", raw.ridge.is_some()),
            ("scale", raw.scale.is_some()),
            ("window", raw.window.is_some()),
            ("features", raw.features.is_some()),
            ("interactions", raw.interactions.is_some()),
            ("shared", raw.shared.is_some()),
        ];
        let (kind, takes): (Kind, &[&str]) = match raw.kind.as_str() {
            "thompson" => (
                Kind::Thompson { alpha: raw.alpha.unwrap_or(1.0), beta: raw.beta.unwrap_or(1.0) },
                &["alpha", "beta", "window"],
            ),
            "gaussian_thompson" => (
                Kind::GaussianThompson {
                    prior_mean: raw.prior_mean.unwrap_or(0.0),
                    prior_strength: raw.prior_strength.unwrap_or(1.0),
                    prior_variance: raw.prior_variance.unwrap_or(1.0),
                },
                &["prior_mean", "prior_strength", "prior_variance", "window"],
            ),
            "ucb1" => (Kind::Ucb1 { exploration: raw.exploration.unwrap_or(1.0) }, &["exploration", "window"]),
            "epsilon_greedy" => (Kind::EpsilonGreedy { epsilon: raw.epsilon.unwrap_or(0.1) }, &["epsilon", "window"]),
            "softmax" => (Kind::Softmax { temperature: raw.temperature.unwrap_or(0.1) }, &["temperature", "window"]),
            "lin_ucb" => (
                Kind::LinUcb { alpha: raw.alpha.unwrap_or(1.0), ridge: raw.ridge.unwrap_or(1.0) },
                &["alpha", "ridge", "features", "interactions", "shared"],
            ),
            "lin_thompson" => (
                Kind::LinThompson { scale: raw.scale.unwrap_or(1.0), ridge: raw.ridge.unwrap_or(1.0) },
                &["scale", "ridge", "features", "interactions", "shared"],
            ),
            other => {
                let message = format!("unknown policy type '{other}' (known types: {})", POLICY_TYPES.join(", "));
                return Err(PolicyError::of("type", message));
            }
        };
        if let Some(&(name, _)) = given.iter().find(|(name, set)| *set && !takes.contains(name)) {
            let message = format!(
                "policy '{}' does not take '{name}' (it takes: {}, discount, rewards)",
                raw.kind,
                takes.join(", ")
            );
            return Err(PolicyError::of(name, message));
        }
        let config = Self {
            kind,
            discount: raw.discount.unwrap_or(1.0),
            window: raw.window,
            features: raw.features,
            interactions: raw.interactions,
            shared: raw.shared.unwrap_or(false),
            rewards: raw.rewards,
        };
        config.validate()?;
        Ok(config)
    }

    /// The policy's name, as written in a catalog.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Thompson { .. } => "thompson",
            Kind::GaussianThompson { .. } => "gaussian_thompson",
            Kind::Ucb1 { .. } => "ucb1",
            Kind::EpsilonGreedy { .. } => "epsilon_greedy",
            Kind::Softmax { .. } => "softmax",
            Kind::LinUcb { .. } => "lin_ucb",
            Kind::LinThompson { .. } => "lin_thompson",
        }
    }

    /// [min, max] of the rewards this policy learns from: as declared, else [0, 1] for a
    /// Beta-Bernoulli `thompson` and +-[`DEFAULT_REWARD_BOUND`] for the others.
    pub fn reward_range(&self) -> (f64, f64) {
        match (self.rewards, &self.kind) {
            (Some([lo, hi]), _) => (lo, hi),
            (None, Kind::Thompson { .. }) => (0.0, 1.0),
            (None, _) => (-DEFAULT_REWARD_BOUND, DEFAULT_REWARD_BOUND),
        }
    }

    /// Unless `reward` is within [`Self::reward_range`]: "reward must be a number in [lo, hi]
    /// {whose} (why), got {reward}", `whose` naming what the policy serves.
    pub fn check_reward(&self, reward: f64, whose: &str) -> Result<(), String> {
        let (lo, hi) = self.reward_range();
        if reward.is_finite() && lo <= reward && reward <= hi {
            return Ok(());
        }
        let why = match (self.rewards, &self.kind) {
            (None, Kind::Thompson { .. }) => "Beta-Bernoulli thompson",
            (None, _) => "the default range; the policy's `rewards: [min, max]` sets another",
            (Some(_), _) => "the policy's `rewards`",
        };
        Err(format!("reward must be a number in [{lo}, {hi}] {whose}({why}), got {reward}"))
    }

    pub fn is_contextual(&self) -> bool {
        matches!(self.kind, Kind::LinUcb { .. } | Kind::LinThompson { .. })
    }

    /// Checks parameter ranges; the error names the parameter and the range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let name = self.name();
        let fail = |param: &'static str, rule: String| Err(PolicyError::of(param, format!("{name} needs {rule}")));
        let positive = |param: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { fail(param, format!("{param} > 0, got {v}")) }
        };
        let non_negative = |param: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 { Ok(()) } else { fail(param, format!("{param} >= 0, got {v}")) }
        };
        match self.kind {
            Kind::Thompson { alpha, beta } => positive("alpha", alpha).and(positive("beta", beta))?,
            Kind::GaussianThompson { prior_mean, prior_strength, prior_variance } => {
                if !prior_mean.is_finite() {
                    return fail("prior_mean", format!("a finite prior_mean, got {prior_mean}"));
                }
                positive("prior_strength", prior_strength).and(positive("prior_variance", prior_variance))?;
            }
            Kind::Ucb1 { exploration } => non_negative("exploration", exploration)?,
            Kind::EpsilonGreedy { epsilon } => {
                if !(0.0..=1.0).contains(&epsilon) {
                    return fail("epsilon", format!("0 <= epsilon <= 1, got {epsilon}"));
                }
            }
            Kind::Softmax { temperature } => positive("temperature", temperature)?,
            Kind::LinUcb { alpha, ridge } => non_negative("alpha", alpha).and(positive("ridge", ridge))?,
            Kind::LinThompson { scale, ridge } => non_negative("scale", scale).and(positive("ridge", ridge))?,
        }
        if !(self.discount > 0.0 && self.discount <= 1.0) {
            return fail("discount", format!("0 < discount <= 1, got {}", self.discount));
        }
        if self.window == Some(0) {
            return fail("window", "window >= 1".to_owned());
        }
        if self.window.is_some() && self.discount < 1.0 {
            return Err(PolicyError::of("window", format!("{name} takes a window or a discount, not both")));
        }
        if let Some(features) = &self.features
            && features.is_empty()
        {
            return fail("features", "at least one feature when 'features' is given".to_owned());
        }
        if let Some([lo, hi]) = self.rewards {
            let binary = matches!(self.kind, Kind::Thompson { .. });
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return fail("rewards", format!("rewards [min, max] with finite min < max, got [{lo}, {hi}]"));
            }
            if binary && !(0.0 <= lo && hi <= 1.0) {
                let message = format!("{name} is Beta-Bernoulli: its rewards must lie within [0, 1], got [{lo}, {hi}]");
                return Err(PolicyError::of("rewards", message));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PolicyConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_fill_in() {
        let config = parse(r#"{"type": "lin_ucb"}"#).unwrap();
        assert_eq!(config.kind, Kind::LinUcb { alpha: 1.0, ridge: 1.0 });
        assert_eq!(config.discount, 1.0);
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back, serde_json::json!({"type": "lin_ucb", "alpha": 1.0, "ridge": 1.0, "discount": 1.0}));
    }

    #[test]
    fn rewards_have_a_range() {
        let thompson = parse(r#"{"type": "thompson"}"#).unwrap();
        assert_eq!(thompson.reward_range(), (0.0, 1.0));
        let err = thompson.check_reward(2.0, "for placement 'p' ").unwrap_err();
        assert_eq!(err, "reward must be a number in [0, 1] for placement 'p' (Beta-Bernoulli thompson), got 2");
        let gauss = parse(r#"{"type": "gaussian_thompson"}"#).unwrap();
        assert!(gauss.check_reward(1e5, "").is_ok());
        assert!(gauss.check_reward(1e308, "").unwrap_err().contains("the default range"));
        let declared = parse(r#"{"type": "lin_ucb", "rewards": [0, 500]}"#).unwrap();
        assert!(declared.check_reward(499.0, "").is_ok());
        assert!(declared.check_reward(-1.0, "").unwrap_err().contains("[0, 500] (the policy's `rewards`)"));
        assert!(declared.check_reward(f64::NAN, "").is_err());
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases = [
            (r#"{"type": "ucb1", "epsilon": 0.1}"#, "policy 'ucb1' does not take 'epsilon'"),
            (r#"{"type": "epsilon_greedy", "epsilon": 1.5}"#, "0 <= epsilon <= 1, got 1.5"),
            (r#"{"type": "thompson", "alpha": 0}"#, "alpha > 0, got 0"),
            (r#"{"type": "lin_ucb", "window": 10}"#, "does not take 'window'"),
            (r#"{"type": "softmax", "discount": 0}"#, "0 < discount <= 1"),
            (r#"{"type": "bogus"}"#, "unknown policy type 'bogus'"),
            (r#"{"type": "ucb1", "rewards": [5, 1]}"#, "finite min < max, got [5, 1]"),
            (r#"{"type": "thompson", "rewards": [0, 10]}"#, "must lie within [0, 1]"),
            (r#"{"type": "thompson", "alpah": 1}"#, "unknown field `alpah`"),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
