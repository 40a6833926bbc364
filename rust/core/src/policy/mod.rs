//! Bandit policies: configuration, per-arm learned state, scoring, and propensities.

mod config;
mod context;
mod counts;
mod delta;
mod lifted;
mod linear;
mod model;
mod propensity;
mod score;
mod shared;
mod thompson;

pub use config::{Kind, POLICY_TYPES, PolicyConfig, PolicyError};
pub use context::{ColumnKind, ContextSpec};
pub use counts::Counts;
pub use delta::ArmDelta;
pub use lifted::{lift, lifted_len};
pub use linear::LinearArm;
pub use model::{Arm, Model, Picker};
pub use propensity::{MIN_PROPENSITY, ScoreLaw};

#[cfg(test)]
mod tests;
