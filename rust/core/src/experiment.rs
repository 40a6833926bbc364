//! Experiments: deterministic, salted assignment of profiles to groups, identical to
//! `decision_engine.experiments.assignment` in Python (test vectors in
//! `tests/data/assignment_vectors.json`).
//!
//! `bucket(salt, id) = xxh3_64(utf8(salt + "\x1f" + id)) mod 10_000`. Experiments of one
//! layer are mutually exclusive: each owns a slice of `bucket("layer:" + layer, id)`, taken in
//! catalog order; inside it, `bucket(experiment salt, id)` picks the group by cumulative share.

use serde::Deserialize;

use crate::error::{Location, Result, catalog_error};
use crate::policy::PolicyConfig;

pub const BASIS_POINTS: u32 = 10_000;

pub fn bucket(salt: &str, profile_id: &str) -> u32 {
    let mut key = Vec::with_capacity(salt.len() + 1 + profile_id.len());
    key.extend_from_slice(salt.as_bytes());
    key.push(0x1f);
    key.extend_from_slice(profile_id.as_bytes());
    (xxhash_rust::xxh3::xxh3_64(&key) % u64::from(BASIS_POINTS)) as u32
}

/// The group owning bucket `b`, given each group's exclusive upper bucket (the running sum
/// of the shares' basis points), in order.
pub fn group_of_bucket(uppers: impl IntoIterator<Item = u32>, b: u32) -> Option<usize> {
    uppers.into_iter().position(|upper| b < upper)
}

/// What a group receives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// The placement's own policy.
    Personalized,
    /// Non-personalized: the eligible offers of highest value x weight, no learning.
    Default,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    /// Share of the experiment's traffic, in basis-point steps (0.0001).
    pub share: f64,
    #[serde(default = "personalized")]
    pub treatment: Treatment,
    /// A policy of its own for this group (A/B of policies); learns separately.
    #[serde(default)]
    pub policy: Option<PolicyConfig>,
}

fn personalized() -> Treatment {
    Treatment::Personalized
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExperimentSpec {
    pub id: String,
    #[serde(default)]
    pub salt: Option<String>,
    #[serde(default)]
    pub layer: Option<String>,
    /// Share of the layer's traffic (default: all of it).
    #[serde(default)]
    pub traffic: Option<f64>,
    /// Placements it applies to (default: all).
    #[serde(default)]
    pub placements: Option<Vec<String>>,
    pub groups: Vec<GroupSpec>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Exclusive upper bucket of this group.
    pub upper: u32,
    pub treatment: Treatment,
    pub policy: Option<PolicyConfig>,
}

#[derive(Debug, Clone)]
pub struct Experiment {
    pub id: String,
    pub salt: String,
    pub layer_salt: String,
    /// The slice `[start, end)` of the layer bucket this experiment owns.
    pub slice: (u32, u32),
    /// Placement indices it applies to; `None`: all.
    pub placements: Option<Vec<usize>>,
    pub groups: Vec<Group>,
}

impl Experiment {
    /// The group index of a profile, if the profile falls in this experiment's layer slice.
    pub fn group_of(&self, profile_id: &str) -> Option<usize> {
        let layer = bucket(&self.layer_salt, profile_id);
        if !(self.slice.0 <= layer && layer < self.slice.1) {
            return None;
        }
        group_of_bucket(self.groups.iter().map(|g| g.upper), bucket(&self.salt, profile_id))
    }

    pub fn applies_to(&self, placement: usize) -> bool {
        self.placements.as_ref().is_none_or(|ps| ps.contains(&placement))
    }
}

/// A share of traffic in basis points: in (0, 1], in steps of 0.0001.
pub fn share_basis_points(share: f64) -> std::result::Result<u32, String> {
    if !(share > 0.0 && share <= 1.0) {
        return Err(format!("a share must be in (0, 1], got {share}"));
    }
    let points = share * f64::from(BASIS_POINTS);
    if (points - points.round()).abs() > 1e-6 {
        return Err(format!("a share must be in steps of 0.0001 (one basis point), got {share}"));
    }
    Ok(points.round() as u32)
}

/// The basis points of an experiment's groups, whose shares must sum to 1.
pub fn group_basis_points(shares: &[f64]) -> std::result::Result<Vec<u32>, String> {
    let points = shares.iter().map(|&s| share_basis_points(s)).collect::<std::result::Result<Vec<_>, _>>()?;
    let total: u32 = points.iter().sum();
    if total != BASIS_POINTS {
        return Err(format!("group shares must sum to 1, got {}", f64::from(total) / f64::from(BASIS_POINTS)));
    }
    Ok(points)
}

/// Compiles experiments; layers fill their slices in catalog order.
pub fn compile(specs: Vec<ExperimentSpec>, placement_index: impl Fn(&str) -> Option<usize>) -> Result<Vec<Experiment>> {
    let mut used: Vec<(String, u32)> = Vec::new();
    let mut experiments = Vec::with_capacity(specs.len());
    for spec in specs {
        let at = || Location::Catalog;
        let id = spec.id.clone();
        let fail = |detail: String| catalog_error(at(), format!("experiment '{id}': {detail}"));
        let layer = spec.layer.unwrap_or_else(|| "default".to_owned());
        let traffic =
            spec.traffic.map_or(Ok(BASIS_POINTS), share_basis_points).map_err(|e| fail(format!("traffic: {e}")))?;
        let start = match used.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, end)) => {
                let start = *end;
                *end += traffic;
                start
            }
            None => {
                used.push((layer.clone(), traffic));
                0
            }
        };
        if start + traffic > BASIS_POINTS || traffic == 0 {
            return Err(fail(format!("layer '{layer}' has no room for {traffic} basis points")));
        }
        let shares: Vec<f64> = spec.groups.iter().map(|g| g.share).collect();
        let points = group_basis_points(&shares).map_err(fail)?;
        let mut upper = 0;
        let mut groups = Vec::with_capacity(spec.groups.len());
        for (g, points) in spec.groups.into_iter().zip(points) {
            upper += points;
            if let Some(policy) = &g.policy {
                policy.validate().map_err(|e| fail(format!("group '{}': {e}", g.name)))?;
            }
            groups.push(Group { name: g.name, upper, treatment: g.treatment, policy: g.policy });
        }
        let placements = match spec.placements {
            None => None,
            Some(ids) => Some(
                ids.iter()
                    .map(|p| placement_index(p).ok_or_else(|| fail(format!("unknown placement '{p}'"))))
                    .collect::<Result<_>>()?,
            ),
        };
        experiments.push(Experiment {
            salt: spec.salt.unwrap_or_else(|| spec.id.clone()),
            id: spec.id,
            layer_salt: format!("layer:{layer}"),
            slice: (start, start + traffic),
            placements,
            groups,
        });
    }
    Ok(experiments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_basis_points_that_sum_to_one() {
        assert_eq!(share_basis_points(0.05), Ok(500));
        assert_eq!(share_basis_points(1.0), Ok(10_000));
        assert!(share_basis_points(0.0).unwrap_err().contains("(0, 1]"));
        assert!(share_basis_points(1.5).unwrap_err().contains("(0, 1]"));
        assert!(share_basis_points(f64::NAN).unwrap_err().contains("(0, 1]"));
        assert!(share_basis_points(0.00005).unwrap_err().contains("steps of 0.0001"));
        assert_eq!(group_basis_points(&[0.2, 0.3, 0.5]), Ok(vec![2_000, 3_000, 5_000]));
        assert_eq!(group_basis_points(&[0.5, 0.4]).unwrap_err(), "group shares must sum to 1, got 0.9");
    }

    /// The published vectors, shared with the Python implementation.
    #[test]
    fn reproduces_the_published_test_vectors() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/assignment_vectors.json"))
                .expect("tests/data/assignment_vectors.json");
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 20);
        for case in cases {
            let (salt, id) = (case["salt"].as_str().unwrap(), case["profile_id"].as_str().unwrap());
            let mut key = salt.as_bytes().to_vec();
            key.push(0x1f);
            key.extend_from_slice(id.as_bytes());
            assert_eq!(xxhash_rust::xxh3::xxh3_64(&key), case["xxh3_64"].as_u64().unwrap(), "{salt:?} {id:?}");
            assert_eq!(u64::from(bucket(salt, id)), case["bucket"].as_u64().unwrap());
            let mut upper = 0;
            let group = case["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| {
                    upper += g["share_bp"].as_u64().unwrap();
                    u64::from(bucket(salt, id)) < upper
                })
                .unwrap();
            assert_eq!(group["name"], case["group"]);
        }
    }
}
