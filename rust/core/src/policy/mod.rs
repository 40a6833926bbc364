//! Bandit policies: the configuration from the catalog and per-arm posterior state.

mod propensity;
mod thompson;

pub use propensity::{ArmScore, win_probability};
pub use thompson::ThompsonArm;

use serde::Deserialize;

fn one() -> f64 {
    1.0
}

/// How arms are chosen in a placement.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyConfig {
    /// Beta-Bernoulli Thompson sampling with a Beta(alpha, beta) prior on every arm.
    Thompson {
        #[serde(default = "one")]
        alpha: f64,
        #[serde(default = "one")]
        beta: f64,
    },
}

impl PolicyConfig {
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Thompson { alpha, beta } => {
                if alpha.is_finite() && beta.is_finite() && alpha > 0.0 && beta > 0.0 {
                    Ok(())
                } else {
                    Err(format!("thompson prior needs alpha > 0 and beta > 0, got alpha={alpha}, beta={beta}"))
                }
            }
        }
    }

    /// A fresh arm carrying this policy's prior.
    pub fn new_arm(&self) -> ThompsonArm {
        match *self {
            Self::Thompson { alpha, beta } => ThompsonArm::new(alpha, beta),
        }
    }
}
