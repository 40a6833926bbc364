//! The bandit's file format: JSON with a format name and a version, so a file from another
//! version is either read or refused with a message saying which versions this build reads.

use serde::{Deserialize, Serialize};

use super::Bandit;
use crate::error::{Error, Result};
use crate::policy::{Arm, ContextSpec, Model, PolicyConfig};
use crate::store::file::check_header;

pub const BANDIT_FORMAT: &str = "decision-engine/bandit";
/// Version 1: policy, shape, seed, decisions made, and every arm's sufficient statistics.
/// Version 2: a linear arm's statistics are over the encoded context (a bias term first),
/// not the raw features; version 1 files of context-free policies read unchanged.
pub const BANDIT_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    policy: PolicyConfig,
    n_arms: usize,
    n_features: usize,
    seed: u64,
    decisions: u64,
    arms: Vec<Arm>,
}

impl Bandit {
    pub fn to_json(&self) -> String {
        let file = File {
            format: BANDIT_FORMAT.to_owned(),
            version: BANDIT_VERSION,
            policy: self.model.config.clone(),
            n_arms: self.n_arms(),
            n_features: self.model.dim,
            seed: self.seed,
            decisions: self.decisions,
            arms: self.model.arms().to_vec(),
        };
        serde_json::to_string(&file).expect("bandit state serializes")
    }

    pub fn from_json(json: &str) -> Result<Self> {
        let version = check_header(json, BANDIT_FORMAT, BANDIT_VERSION)?;
        let file: File =
            serde_json::from_str(json).map_err(|e| Error::InvalidInput(format!("bad {BANDIT_FORMAT} file: {e}")))?;
        if file.arms.len() != file.n_arms {
            return Err(Error::InvalidInput(format!("file says {} arms but holds {}", file.n_arms, file.arms.len())));
        }
        if version == 1 && file.policy.is_contextual() {
            return Err(Error::InvalidInput(format!(
                "this {BANDIT_FORMAT} file (version 1) holds a {} policy learned on raw features; version 2 \
                 models add a bias and standardize, so that state cannot be carried over: train it again",
                file.policy.name()
            )));
        }
        let coords = Model::context_coords(&ContextSpec::numeric(file.n_features));
        for (i, arm) in file.arms.iter().enumerate() {
            match (&arm.linear, file.policy.is_contextual()) {
                (Some(linear), true) => {
                    linear.check(coords).map_err(|e| Error::InvalidInput(format!("arm {i}: {e}")))?;
                }
                (None, false) => {}
                _ => {
                    return Err(Error::InvalidInput(format!("arm {i} does not match policy {}", file.policy.name())));
                }
            }
        }
        let mut bandit = Self::new(file.policy.clone(), file.n_arms, file.n_features, file.seed)?;
        bandit.model = Model::from_arms(file.policy, file.arms, file.n_features);
        bandit.decisions = file.decisions;
        Ok(bandit)
    }
}
