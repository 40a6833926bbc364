use super::*;
use crate::catalog::Catalog;

const CATALOG: &str = r#"{
  "features": [
    {"name": "age", "type": "int"},
    {"name": "owns_card", "type": "bool"},
    {"name": "segment", "type": "category", "values": ["bronze", "gold"]}
  ],
  "channels": ["web", "email"],
  "placements": [
    {"id": "hero", "channel": "web", "slots": 2, "policy": {"type": "thompson", "alpha": 1, "beta": 1}},
    {"id": "mail", "channel": "email", "slots": 1, "policy": {"type": "thompson"}}
  ],
  "offers": [
    {"id": "card", "placements": ["hero"], "rule": "age >= 21 && !owns_card", "group": "cards"},
    {"id": "card_plus", "placements": ["hero"], "rule": "segment == \"gold\"", "group": "cards"},
    {"id": "loan", "placements": ["hero", "mail"], "rule": "age >= 30", "consent": "email"},
    {"id": "old", "placements": ["hero"], "active_to": 100.0},
    {"id": "news", "placements": ["hero", "mail"]}
  ]
}"#;

fn engine(seed: u64) -> Engine {
    Engine::new(Catalog::from_json(CATALOG).unwrap(), seed).simulated()
}

fn request<'a>(placement: &'a [&'a str], features: &'a [f32], consents: &'a [&'a str]) -> DecideRequest<'a> {
    DecideRequest { consents, explain: true, ..DecideRequest::new(placement, features, 1000.0) }
}

#[test]
fn decide_explains_every_offer_left_out() {
    let e = engine(1);
    let d = e.decide(&request(&["hero"], &[25.0, 1.0, 1.0], &[])).unwrap();
    let chosen: Vec<&str> = d.offers.iter().map(|o| o.offer_id.as_str()).collect();
    assert_eq!(chosen.len(), 2);
    assert!(chosen.contains(&"card_plus") && chosen.contains(&"news"), "{chosen:?}");
    let reason = |id: &str| d.reasons.iter().find(|(o, _)| o == id).map(|(_, r)| r.clone());
    assert_eq!(reason("card"), Some(Reason::Rule { clause: "!owns_card".into() }));
    assert_eq!(reason("loan"), Some(Reason::NoConsent { channel: "email".into() }));
    assert_eq!(reason("old"), Some(Reason::Expired));
    let total: f64 = d.offers.iter().map(|o| o.propensity).sum();
    assert!(d.offers.iter().all(|o| o.propensity > 0.0 && o.propensity <= 1.0) && total > 0.0);
}

#[test]
fn one_offer_per_exclusion_group() {
    let e = engine(2);
    for _ in 0..50 {
        let d = e.decide(&request(&["hero"], &[40.0, 0.0, 1.0], &["email"])).unwrap();
        let cards = d.offers.iter().filter(|o| o.offer_id.starts_with("card")).count();
        assert!(cards <= 1, "{d:?}");
        if let Some((_, r)) = d.reasons.iter().find(|(o, _)| o.starts_with("card")) {
            assert!(matches!(r, Reason::GroupTaken { .. } | Reason::Outranked { .. }), "{r:?}");
        }
    }
}

#[test]
fn bad_input_is_rejected_with_what_was_expected() {
    let e = engine(3);
    let err = e.decide(&request(&["hero"], &[25.0, 1.0], &[])).unwrap_err().to_string();
    assert!(err.contains("expected 3 features, got 2"), "{err}");
    let err = e.decide(&request(&["hero"], &[f32::NAN, 1.0, 0.0], &[])).unwrap_err().to_string();
    assert!(err.contains("feature 'age'") && err.contains("not a finite number"), "{err}");
    let err = e.decide(&request(&["hero"], &[20.0, 1.0, 5.0], &[])).unwrap_err().to_string();
    assert!(err.contains("category code"), "{err}");
    assert!(matches!(e.decide(&request(&["nope"], &[20.0, 1.0, 0.0], &[])), Err(Error::UnknownPlacement(_))));
    assert!(e.decide(&request(&["hero"], &[20.0, 1.0, 0.0], &["fax"])).is_err());
}

#[test]
fn outcomes_update_once_and_only_for_shown_offers() {
    let e = engine(4);
    let d = e.decide(&request(&["mail"], &[40.0, 0.0, 0.0], &["email"])).unwrap();
    let id = d.decision_id;
    let shown = d.offers[0].offer_id.clone();
    e.report_outcome(id, None, 1.0, false).unwrap();
    let state = e.policy_state("mail").unwrap();
    let arm = state.iter().find(|a| a.offer_id == shown).unwrap();
    assert_eq!((arm.alpha, arm.beta), (2.0, 1.0));
    // a retried outcome is told it was reported (ALREADY_EXISTS), not that the decision is unknown
    assert!(matches!(e.report_outcome(id, None, 1.0, false), Err(Error::AlreadySettled(_))));
    assert!(matches!(e.release(id), Err(Error::AlreadySettled(_))));
    assert!(matches!(e.report_outcome(999_999, None, 1.0, false), Err(Error::UnknownDecision(_))));
    let d = e.decide(&request(&["hero"], &[40.0, 0.0, 1.0], &["email"])).unwrap();
    let err = e.report_outcome(d.decision_id, None, 1.0, false).unwrap_err().to_string();
    assert!(err.contains("say which one"), "{err}");
    assert!(matches!(e.report_outcome(d.decision_id, Some("ghost"), 1.0, false), Err(Error::UnknownOffer(_))));
    let first = d.offers[0].offer_id.clone();
    e.report_outcome(d.decision_id, Some(&first), 0.0, false).unwrap();
    assert!(matches!(e.report_outcome(d.decision_id, Some(&first), 0.0, false), Err(Error::AlreadyReported { .. })));
    assert!(e.report_outcome(d.decision_id, Some(&d.offers[1].offer_id), 2.0, false).is_err());
}

#[test]
fn batch_decides_like_single_decisions() {
    let rows: Vec<f32> = (0..700).flat_map(|i| [(18 + i % 50) as f32, (i % 2) as f32, (i % 3 % 2) as f32]).collect();
    let consents: Vec<u8> = (0..700).flat_map(|i| [1, u8::from(i % 4 != 0)]).collect();
    let (a, b) = (engine(9), engine(9));
    let batch = a
        .decide_batch(&BatchRequest {
            placement: "hero",
            features: &rows,
            consents: Some(&consents),
            now: 1000.0,
            propensities: true,
            profile_ids: None,
            ..Default::default()
        })
        .unwrap();
    let catalog = &a.current().catalog;
    for (i, row) in rows.chunks_exact(3).enumerate() {
        let names: Vec<&str> = if consents[i * 2 + 1] == 1 { vec!["web", "email"] } else { vec!["web"] };
        let single = b.decide(&request(&["hero"], row, &names)).unwrap();
        let ids: Vec<&str> = batch.offers[i * 2..i * 2 + 2]
            .iter()
            .filter(|&&o| o >= 0)
            .map(|&o| catalog.offers[o as usize].id.as_str())
            .collect();
        let single_ids: Vec<&str> = single.offers.iter().map(|o| o.offer_id.as_str()).collect();
        assert_eq!(ids, single_ids, "row {i}");
    }
}

#[test]
fn thompson_learns_the_better_offer() {
    let e = engine(5);
    let features = [40.0, 1.0, 0.0];
    let mut news = 0;
    for t in 0..3000 {
        let d = e
            .decide(&DecideRequest { consents: &["email"], ..DecideRequest::new(&["mail"], &features, 1000.0) })
            .unwrap();
        let offer = &d.offers[0].offer_id;
        let rate = if offer == "news" { 0.3 } else { 0.1 };
        let reward = if (t * 7919 % 1000) as f64 / 1000.0 < rate { 1.0 } else { 0.0 };
        e.report_outcome(d.decision_id, None, reward, false).unwrap();
        if t >= 2000 && offer == "news" {
            news += 1;
        }
    }
    assert!(news > 900, "news chosen {news} of the last 1000");
}

#[test]
fn replacing_the_catalog_keeps_what_was_learned() {
    let e = engine(6);
    let features = [40.0, 1.0, 0.0];
    let request = DecideRequest { consents: &["email"], ..DecideRequest::new(&["mail"], &features, 1000.0) };
    let before = e.decide(&request).unwrap();
    e.report_outcome(before.decision_id, None, 1.0, false).unwrap();
    let in_flight = e.decide(&request).unwrap();

    e.replace_catalog(Catalog::from_json(&CATALOG.replace("\"old\"", "\"older\"")).unwrap()).unwrap();
    assert!(e.current().catalog.offer_index("older").is_some());
    e.report_outcome(in_flight.decision_id, None, 1.0, false).unwrap();
    let state = e.policy_state("mail").unwrap();
    let learned: f64 = state.iter().map(|a| a.alpha + a.beta - 2.0).sum();
    assert_eq!(learned, 2.0, "both outcomes reach the new catalog's arms: {state:?}");
}

/// 8 features and 10 offers on `lin_ucb`: big enough for the batch's blocked matrix path.
fn linear_engine() -> Engine {
    let features: Vec<String> = (0..8).map(|i| format!(r#"{{"name": "f{i}", "type": "float"}}"#)).collect();
    let offers: Vec<String> = (0..10).map(|i| format!(r#"{{"id": "o{i}", "placements": ["p"]}}"#)).collect();
    let json = format!(
        r#"{{"features": [{}], "channels": ["web"], "offers": [{}],
            "placements": [{{"id": "p", "channel": "web", "slots": 2, "policy": {{"type": "lin_ucb", "alpha": 0.5}}}}]}}"#,
        features.join(","),
        offers.join(",")
    );
    Engine::new(Catalog::from_json(&json).unwrap(), 11).simulated()
}

#[test]
fn the_blocked_linear_batch_decides_like_single_decisions() {
    use rand::{RngExt, SeedableRng};
    let e = linear_engine();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let row = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| (0..8).map(|_| rng.random::<f32>()).collect::<Vec<f32>>();
    for _ in 0..400 {
        let x = row(&mut rng);
        let d = e.decide(&DecideRequest::new(&["p"], &x, 0.0)).unwrap();
        let reward = f64::from(u8::from(x[0] > 0.5 && d.offers[0].offer_id == "o3"));
        e.report_outcome(d.decision_id, Some(&d.offers[0].offer_id), reward, false).unwrap();
    }
    let rows: Vec<f32> = (0..600).flat_map(|_| row(&mut rng)).collect();
    let request = BatchRequest {
        placement: "p",
        features: &rows,
        consents: None,
        now: 0.0,
        propensities: true,
        profile_ids: None,
        ..Default::default()
    };
    let batch = e.decide_batch(&request).unwrap();
    let ids = e.current().catalog.placements[0].offers.clone();
    for (r, x) in rows.chunks_exact(8).enumerate() {
        let single = e.decide(&DecideRequest::new(&["p"], x, 0.0)).unwrap();
        for (slot, chosen) in single.offers.iter().enumerate() {
            let local = batch.offers[r * 2 + slot] as usize;
            assert_eq!(e.current().catalog.offers[ids[local]].id, chosen.offer_id, "row {r} slot {slot}");
            assert!((f64::from(batch.scores[r * 2 + slot]) - chosen.score).abs() < 1e-4, "row {r}");
        }
    }
}

/// A shared lin_ucb over offers described by a `color`, deciding all of them at once.
fn shared_catalog(offers: &[(&str, &str)]) -> Catalog {
    let offers: Vec<String> = offers
        .iter()
        .map(|(id, color)| format!(r#"{{"id": "{id}", "placements": ["p"], "attributes": {{"color": "{color}"}}}}"#))
        .collect();
    let json = format!(
        r#"{{"features": [{{"name": "segment", "type": "category", "values": ["a", "b"]}}], "channels": ["web"],
            "offers": [{}], "placements": [{{"id": "p", "channel": "web", "slots": {},
            "policy": {{"type": "lin_ucb", "alpha": 0.0, "shared": true}}}}]}}"#,
        offers.join(","),
        offers.len()
    );
    Catalog::from_json(&json).unwrap()
}

/// Score by offer id for a profile of `segment`.
fn scores(e: &Engine, segment: f32) -> std::collections::HashMap<String, f64> {
    let d = e.decide(&DecideRequest::new(&["p"], &[segment], 0.0)).unwrap();
    d.offers.into_iter().map(|o| (o.offer_id, o.score)).collect()
}

#[test]
fn a_shared_policy_is_saved_loaded_and_carried_over_a_reload() {
    let e = Engine::new(shared_catalog(&[("red_1", "red"), ("blue_1", "blue")]), 3).simulated();
    for i in 0..300 {
        let segment = (i % 2) as f32;
        let d = e.decide(&DecideRequest::new(&["p"], &[segment], 0.0)).unwrap();
        for o in &d.offers {
            let likes = (segment == 0.0) == o.offer_id.starts_with("red");
            e.report_outcome(d.decision_id, Some(&o.offer_id), if likes { 0.8 } else { 0.2 }, false).unwrap();
        }
    }
    let learned = scores(&e, 0.0);
    assert!((learned["red_1"] - 0.8).abs() < 0.05 && (learned["blue_1"] - 0.2).abs() < 0.05, "{learned:?}");

    let fresh = Engine::new(shared_catalog(&[("red_1", "red"), ("blue_1", "blue")]), 3).simulated();
    fresh.load_policy_state(&e.save_policy_state()).unwrap();
    for (id, score) in scores(&fresh, 0.0) {
        assert!((score - learned[&id]).abs() < 1e-9, "{id}: {score} after loading, {} before", learned[&id]);
    }

    // A new red offer starts from what red offers learned.
    e.replace_catalog(shared_catalog(&[("red_1", "red"), ("blue_1", "blue"), ("red_2", "red")])).unwrap();
    let carried = scores(&e, 0.0);
    assert!((carried["red_2"] - learned["red_1"]).abs() < 1e-9, "{carried:?}");
    // A new attribute value changes the layout: the shared model starts again.
    e.replace_catalog(shared_catalog(&[("red_1", "red"), ("green_1", "green")])).unwrap();
    assert!(scores(&e, 0.0).values().all(|&s| s == 0.0), "{:?}", scores(&e, 0.0));
}

#[test]
fn a_shared_policy_learns_from_other_servers() {
    let colors = [("red_1", "red"), ("blue_1", "blue")];
    let (a, b) =
        (Engine::new(shared_catalog(&colors), 3).simulated(), Engine::new(shared_catalog(&colors), 4).simulated());
    a.take_policy_delta(); // starts keeping what `a` learns
    for i in 0..100 {
        let d = a.decide(&DecideRequest::new(&["p"], &[(i % 2) as f32], 0.0)).unwrap();
        a.report_outcome(d.decision_id, Some(&d.offers[0].offer_id), 0.7, false).unwrap();
    }
    b.apply_policy_delta(&a.take_policy_delta()).unwrap();
    let (sa, sb) = (scores(&a, 1.0), scores(&b, 1.0));
    for (id, score) in &sa {
        assert!((score - sb[id]).abs() < 1e-6, "{id}: {score} on the learning server, {} on the other", sb[id]);
    }
    assert!(sa.values().any(|&s| s > 0.1), "something was learned: {sa:?}");
}
