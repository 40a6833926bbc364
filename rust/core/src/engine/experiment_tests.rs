//! Experiments through the engine: holdout treatment, separate learning per policy variant.

use super::*;
use crate::catalog::Catalog;

const CATALOG: &str = r#"{
  "features": [{"name": "age", "type": "int"}],
  "channels": ["web"],
  "placements": [
    {"id": "hero", "channel": "web", "slots": 1, "policy": {"type": "thompson"}},
    {"id": "side", "channel": "web", "slots": 1, "policy": {"type": "thompson"}}
  ],
  "offers": [
    {"id": "rich", "placements": ["hero", "side"], "value": 10},
    {"id": "cheap", "placements": ["hero", "side"], "value": 1},
    {"id": "young", "placements": ["hero", "side"], "value": 50, "rule": "age < 25"}
  ],
  "experiments": [
    {"id": "holdout", "layer": "global", "groups": [
      {"name": "holdout", "share": 0.2, "treatment": "default"},
      {"name": "personalized", "share": 0.8}]},
    {"id": "prior_ab", "layer": "policy", "placements": ["hero"], "groups": [
      {"name": "A", "share": 0.5},
      {"name": "B", "share": 0.5, "policy": {"type": "thompson", "alpha": 1, "beta": 19}}]}
  ]
}"#;

fn decide(e: &Engine, placement: &str, profile: &str, age: f32) -> Decision {
    let features = [age];
    let placements = [placement];
    e.decide(&DecideRequest { profile_id: Some(profile), ..DecideRequest::new(&placements, &features, 0.0) }).unwrap()
}

fn group<'d>(d: &'d Decision, experiment: &str) -> Option<&'d str> {
    d.experiments.iter().find(|(x, _)| x == experiment).map(|(_, g)| g.as_str())
}

#[test]
fn holdout_gets_the_highest_value_eligible_offer_deterministically() {
    let e = Engine::new(Catalog::from_json(CATALOG).unwrap(), 1).simulated();
    let mut holdouts = 0;
    for i in 0..2000 {
        let d = decide(&e, "side", &format!("p{i}"), 40.0);
        assert_eq!(group(&d, "prior_ab"), None, "prior_ab runs on hero only");
        if group(&d, "holdout") == Some("holdout") {
            holdouts += 1;
            assert_eq!(d.offers[0].offer_id, "rich");
            assert_eq!(d.offers[0].propensity, 1.0);
        } else {
            assert_eq!(group(&d, "holdout"), Some("personalized"));
        }
    }
    assert!((340..460).contains(&holdouts), "20% of 2000 within sampling error: {holdouts}");
}

#[test]
fn a_policy_variant_learns_apart_from_the_placement_policy() {
    let e = Engine::new(Catalog::from_json(CATALOG).unwrap(), 2).simulated();
    let (mut a, mut b) = (0, 0);
    for i in 0..400 {
        let d = decide(&e, "hero", &format!("q{i}"), 40.0);
        match group(&d, "prior_ab") {
            Some("A") => a += 1,
            Some("B") => b += 1,
            other => panic!("{other:?}"),
        }
        if group(&d, "holdout") == Some("personalized") {
            e.report_outcome(d.decision_id, None, 1.0, false).unwrap();
        }
    }
    assert!(a > 150 && b > 150, "{a} {b}");
    let base: f64 = e.policy_state("hero").unwrap().iter().map(|s| s.alpha - 1.0).sum();
    let loaded = e.current();
    let variant = loaded.arm_set(0, Some((1, 1)));
    assert_ne!(variant, 0);
    let learned: f64 = loaded.arm_sets[variant].arms.read().unwrap().arms().iter().map(|arm| arm.counts.sum).sum();
    assert!(base > 100.0 && learned > 100.0, "both arm sets learned: base {base}, variant {learned}");
}

#[test]
fn a_batch_with_profile_ids_assigns_groups_and_keeps_the_holdout_on_the_default() {
    let e = Engine::new(Catalog::from_json(CATALOG).unwrap(), 3).simulated();
    let ids: Vec<String> = (0..300).map(|i| format!("b{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rows = vec![40.0f32; ids.len()];
    let request = BatchRequest {
        placement: "side",
        features: &rows,
        consents: None,
        now: 0.0,
        propensities: true,
        profile_ids: Some(&ids),
        ..Default::default()
    };
    let batch = e.decide_batch(&request).unwrap();
    let n_exp = 2;
    assert_eq!(batch.groups.len(), ids.len() * n_exp);
    let rich =
        e.current().catalog.placements[1].offers.iter().position(|&o| e.current().catalog.offers[o].id == "rich");
    let mut holdouts = 0;
    for (row, id) in ids.iter().enumerate() {
        let single = decide(&e, "side", id, 40.0);
        let expected = match group(&single, "holdout") {
            Some("holdout") => 0,
            Some("personalized") => 1,
            other => panic!("{other:?}"),
        };
        assert_eq!(batch.groups[row * n_exp], expected, "the batch assigns as a single decision does");
        assert_eq!(batch.groups[row * n_exp + 1], -1, "prior_ab is not on this placement");
        if expected == 0 {
            holdouts += 1;
            assert_eq!(batch.offers[row], rich.unwrap() as i32, "the holdout gets the highest-value default");
            assert_eq!(batch.propensities.as_ref().unwrap()[row], 1.0);
        }
    }
    assert!(holdouts > 30, "{holdouts}");
    // A policy variant cannot run inside a batch: a clear error, not a silent wrong policy.
    let err = e.decide_batch(&BatchRequest { placement: "hero", ..request }).unwrap_err().to_string();
    assert!(err.contains("runs its own policy") && err.contains("experiment 'prior_ab'"), "{err}");
}
