//! The wire path without Python: protobuf bytes in, the core decides, protobuf bytes out.

use std::collections::HashMap;

use decision_engine_core::{Catalog, Engine};
use prost::Message;

use super::pb;

const NOW: i64 = 1_800_000_000;

fn engine() -> Engine {
    let catalog = r#"{
      "features": [{"name": "age", "type": "float"},
                   {"name": "segment", "type": "category", "values": ["basic", "gold"]}],
      "channels": ["web"],
      "placements": [{"id": "hero", "channel": "web", "slots": 1, "policy": {"type": "thompson"}},
                     {"id": "side", "channel": "web", "slots": 1, "policy": {"type": "thompson"}}],
      "offers": [{"id": "card", "placements": ["hero", "side"], "rule": "segment == 'gold'"},
                 {"id": "loan", "placements": ["hero", "side"], "rule": "age >= 18"}]
    }"#;
    Engine::new(Catalog::from_json(catalog).unwrap(), 7).simulated()
}

fn now() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: NOW, nanos: 0 })
}

fn number(n: f64) -> pb::FeatureValue {
    pb::FeatureValue { value: Some(pb::feature_value::Value::Number(n)) }
}

fn category(c: &str) -> pb::FeatureValue {
    pb::FeatureValue { value: Some(pb::feature_value::Value::Category(c.to_owned())) }
}

fn named(features: &[(&str, pb::FeatureValue)]) -> HashMap<String, pb::FeatureValue> {
    features.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect()
}

fn request(profile: pb::Profile, placements: &[&str]) -> Vec<u8> {
    pb::DecideRequest {
        profile: Some(profile),
        placements: placements.iter().map(|p| (*p).to_owned()).collect(),
        now: now(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn decided(engine: &Engine, profile: pb::Profile, placements: &[&str]) -> Vec<Vec<String>> {
    let (bytes, _) = super::decide(engine, &request(profile, placements), 0).unwrap();
    let response = pb::DecideResponse::decode(&*bytes).unwrap();
    response.decisions.iter().map(|d| d.offers.iter().map(|o| o.offer_id.clone()).collect()).collect()
}

fn refusal(engine: &Engine, profile: pb::Profile) -> String {
    super::decide(engine, &request(profile, &["hero"]), 0).unwrap_err().to_string()
}

#[test]
fn a_page_decides_each_placement_and_the_client_sees_the_worker_tag() {
    let engine = engine();
    let profile = pb::Profile { features: vec![30.0, 1.0], ..Default::default() };
    let tag = 5 << 56;
    let (bytes, decisions) = super::decide(&engine, &request(profile, &["hero", "side"]), tag).unwrap();
    let response = pb::DecideResponse::decode(&*bytes).unwrap();
    let mut shown: Vec<&str> =
        response.decisions.iter().flat_map(|d| d.offers.iter().map(|o| o.offer_id.as_str())).collect();
    shown.sort_unstable();
    assert_eq!(shown, ["card", "loan"], "both placements decided, no offer twice on the page");
    assert_eq!(decisions.len(), 2);
    for (wire, core) in response.decisions.iter().zip(&decisions) {
        assert_eq!(core.decision_id >> 56, 0, "the engine's own id");
        assert_eq!(wire.decision_id, core.decision_id | tag, "the worker's tag in the id the client sees");
    }
}

#[test]
fn named_features_decide_as_packed_ones() {
    let by_name = pb::Profile {
        named_features: named(&[("age", number(12.0)), ("segment", category("gold"))]),
        ..Default::default()
    };
    let packed = pb::Profile { features: vec![12.0, 1.0], ..Default::default() };
    let by_name = decided(&engine(), by_name, &["hero"]);
    assert_eq!(by_name, [["card"]], "only the card: a 12-year-old gets no loan");
    assert_eq!(by_name, decided(&engine(), packed, &["hero"]));
}

#[test]
fn bad_requests_say_what_was_wrong() {
    let engine = engine();
    let err = super::decide(&engine, b"\xff\xff\xff", 0).unwrap_err().to_string();
    assert!(err.contains("malformed DecideRequest"), "{err}");
    let both = pb::Profile {
        features: vec![30.0, 1.0],
        named_features: named(&[("age", number(30.0))]),
        ..Default::default()
    };
    let err = refusal(&engine, both);
    assert!(err.contains("either packed (features) or by name (named_features), not both"), "{err}");
    let unknown = pb::Profile { named_features: named(&[("agee", number(3.0))]), ..Default::default() };
    assert!(refusal(&engine, unknown).contains("unknown feature 'agee'"));
    let valueless =
        pb::Profile { named_features: named(&[("age", pb::FeatureValue { value: None })]), ..Default::default() };
    assert!(refusal(&engine, valueless).contains("feature 'age' has no value"));
}

#[test]
fn a_profile_written_over_the_wire_is_read_decided_by_id_and_deleted() {
    let engine = engine();
    let upsert = pb::UpsertProfilesRequest {
        profiles: vec![pb::ProfileUpsert {
            id: "c1".to_owned(),
            features: named(&[("age", number(40.0)), ("segment", category("basic"))]),
            consents: vec!["web".to_owned()],
            ..Default::default()
        }],
    };
    let written =
        pb::WriteResponse::decode(&*super::upsert_profiles(&engine, &upsert.encode_to_vec()).unwrap()).unwrap();
    assert_eq!((written.accepted, written.rejected.len()), (1, 0));
    let get = pb::GetProfileRequest { id: "c1".to_owned(), now: now() }.encode_to_vec();
    let stored = pb::StoredProfile::decode(&*super::get_profile(&engine, &get).unwrap()).unwrap();
    assert_eq!(stored.features.get("age"), Some(&number(40.0)));
    assert_eq!(stored.consents, ["web"]);
    let by_id = || pb::Profile { id: "c1".to_owned(), ..Default::default() };
    assert_eq!(decided(&engine, by_id(), &["hero"]), [["loan"]], "decided on the stored features");
    let delete = pb::DeleteProfileRequest { id: "c1".to_owned() }.encode_to_vec();
    assert!(pb::DeleteProfileResponse::decode(&*super::delete_profile(&engine, &delete).unwrap()).unwrap().found);
    let err = refusal(&engine, by_id());
    assert!(err.contains("c1"), "deciding by id on a deleted profile names it: {err}");
}
