//! The bandit's file format: JSON with a format name and a version, so a file from another
//! version is either read or refused with a message saying which versions this build reads.

use serde::{Deserialize, Serialize};

use super::Bandit;
use crate::error::{Error, Result};
use crate::policy::{Arm, Model, PolicyConfig};

pub const BANDIT_FORMAT: &str = "decision-engine/bandit";
/// Version 1: policy, shape, seed, decisions made, and every arm's sufficient statistics.
pub const BANDIT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct FileV1 {
    format: String,
    version: u32,
    policy: PolicyConfig,
    n_arms: usize,
    n_features: usize,
    seed: u64,
    decisions: u64,
    arms: Vec<Arm>,
}

/// Checks the header of a policy-state file of `format`, readable up to `newest`.
pub(crate) fn check_header(json: &str, format: &str, newest: u32) -> Result<u32> {
    let header: Header = serde_json::from_str(json)
        .map_err(|e| Error::InvalidInput(format!("not a {format} file (no format/version header: {e})")))?;
    if header.format != format {
        return Err(Error::InvalidInput(format!("expected a {format} file, got format '{}'", header.format)));
    }
    if header.version == 0 || header.version > newest {
        return Err(Error::InvalidInput(format!(
            "{format} file version {} is not readable by this build (it reads versions 1 to {newest}); \
             upgrade decision-engine to load it",
            header.version
        )));
    }
    Ok(header.version)
}

impl Bandit {
    pub fn to_json(&self) -> String {
        let file = FileV1 {
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
        check_header(json, BANDIT_FORMAT, BANDIT_VERSION)?;
        let file: FileV1 =
            serde_json::from_str(json).map_err(|e| Error::InvalidInput(format!("bad {BANDIT_FORMAT} file: {e}")))?;
        if file.arms.len() != file.n_arms {
            return Err(Error::InvalidInput(format!("file says {} arms but holds {}", file.n_arms, file.arms.len())));
        }
        for (i, arm) in file.arms.iter().enumerate() {
            match (&arm.linear, file.policy.is_contextual()) {
                (Some(linear), true) => {
                    linear.check(file.n_features).map_err(|e| Error::InvalidInput(format!("arm {i}: {e}")))?;
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
