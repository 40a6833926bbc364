//! The customer plane through the engine: writes, events and computed attributes, decide by
//! id, erasure, recovery, and layouts that change under stored profiles.

use super::*;
use crate::catalog::Catalog;
use crate::schema::NamedValue;
use crate::store::Value;
use crate::store::durable::{DurableOptions, Fsync};

const T0: f64 = 1_700_000_000.0;
const DAY: f64 = 86_400.0;

fn catalog_json(extra_feature: &str, unknown: &str) -> String {
    format!(
        r#"{{
      "features": [
        {{"name": "age", "type": "int", "default": 40}},
        {{"name": "segment", "type": "category", "values": ["basic", "gold"], "default": "basic"}},
        {{"name": "vip", "type": "bool"}},
        {{"name": "cart_adds_7d", "type": "int", "computed": {{"event": "cart_add", "aggregate": "count", "window": 604800}}}},
        {{"name": "spend_30d", "type": "float", "computed": {{"event": "purchase", "aggregate": "sum", "property": "amount", "window": 2592000}}}},
        {{"name": "last_cart", "type": "float", "default": 0, "computed": {{"event": "cart_add", "aggregate": "last", "property": "value"}}}},
        {{"name": "days_since_purchase", "type": "float", "default": 9999, "computed": {{"event": "purchase", "aggregate": "time_since", "unit": "days"}}}}
        {extra_feature}
      ],
      "channels": ["web", "email"],
      "placements": [{{"id": "hero", "channel": "web", "slots": 1, "policy": {{"type": "thompson"}}}},
                     {{"id": "mail", "channel": "email", "slots": 1, "policy": {{"type": "thompson"}}}}],
      "offers": [
        {{"id": "cart_reminder", "placements": ["hero", "mail"], "rule": "cart_adds_7d >= 2 && days_since_purchase > 1"}},
        {{"id": "gold_card", "placements": ["hero"], "rule": "segment == \"gold\""}},
        {{"id": "plain", "placements": ["hero", "mail"], "product": "plain"}}
      ],
      "events": [{{"type": "purchase", "purchase": "product"}},
                 {{"type": "email_opt_in", "grant": "email"}},
                 {{"type": "email_opt_out", "revoke": "email"}}],
      "profiles": {{"unknown": "{unknown}", "capacity": 1000}}
    }}"#
    )
}

fn engine() -> Engine {
    Engine::new(Catalog::from_json(&catalog_json("", "not_found")).unwrap(), 3).simulated()
}

fn write(id: &str, features: &[(&str, Value)]) -> ProfileWrite {
    ProfileWrite {
        id: id.to_owned(),
        features: features.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect(),
        ..ProfileWrite::default()
    }
}

fn event(id: &str, profile: &str, kind: &str, time: f64, properties: &[(&str, Value)]) -> Event {
    Event {
        id: id.to_owned(),
        profile_id: profile.to_owned(),
        kind: kind.to_owned(),
        time,
        properties: properties.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect(),
    }
}

fn feature(view: &ProfileView, name: &str) -> Value {
    view.features.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no {name}"))
}

fn by_id(engine: &Engine, placement: &str, id: &str, now: f64) -> Result<Decision> {
    let placements = [placement];
    let request = StoredDecideRequest {
        placements: &placements,
        profile_id: id,
        context: &[],
        consents: &[],
        purchases: &[],
        history: &[],
        now,
        explain: true,
        exclude: &[],
    };
    engine.decide_stored(&request).map(|mut d| d.remove(0))
}

#[test]
fn writes_are_partial_and_a_bad_row_is_rejected_whole() {
    let engine = engine();
    let rows = [
        write("c1", &[("age", Value::Number(31.0)), ("vip", Value::Flag(true))]),
        write("c2", &[("age", Value::Number(50.0)), ("segment", Value::Text("platinum".into()))]),
        write("c3", &[("age", Value::Number(f64::NAN))]),
        write("c4", &[("cart_adds_7d", Value::Number(3.0))]),
        write("c5", &[("height", Value::Number(3.0))]),
        write("", &[("age", Value::Number(3.0))]),
        write("c6", &[("vip", Value::Number(2.0))]), // 0 and 1 would do, as in columns
    ];
    let report = engine.upsert_profiles(&rows, Some(T0)).unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.refused, 6);
    let messages: Vec<&str> = report.rejected.iter().map(|r| r.message.as_str()).collect();
    assert!(messages[0].contains("must be one of basic, gold, got 'platinum'"), "{messages:?}");
    assert!(messages[1].contains("not a finite number"), "{messages:?}");
    assert!(messages[2].contains("computed from events"), "{messages:?}");
    assert!(messages[3].contains("unknown feature 'height'"), "{messages:?}");
    assert!(messages[4].contains("must not be empty"), "{messages:?}");
    assert!(messages[5].contains("takes a flag"), "{messages:?}");
    assert_eq!(report.rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    // Nothing of a rejected row was written: c2 does not exist, though its age was valid.
    assert!(engine.profile("c2", Some(T0)).unwrap().is_none());
    assert_eq!(engine.profile_count(), Some(1));

    engine.upsert_profiles(&[write("c1", &[("segment", Value::Text("gold".into()))])], Some(T0)).unwrap();
    let c1 = engine.profile("c1", Some(T0)).unwrap().unwrap();
    assert_eq!(feature(&c1, "age"), Value::Number(31.0), "a partial write keeps the other features");
    assert_eq!(feature(&c1, "segment"), Value::Text("gold".into()));
    assert_eq!(feature(&c1, "vip"), Value::Flag(true));
    assert_eq!(feature(&c1, "cart_adds_7d"), Value::Number(0.0));
    assert_eq!(feature(&c1, "days_since_purchase"), Value::Number(9999.0));
}

#[test]
fn computed_attributes_follow_events_over_their_windows() {
    let engine = engine();
    let value = |v: f64| [("value", Value::Number(v))];
    let events = [
        event("e1", "c1", "cart_add", T0, &value(10.0)),
        event("e2", "c1", "cart_add", T0 + DAY, &value(20.0)),
        event("e2", "c1", "cart_add", T0 + DAY, &value(20.0)),
        event(
            "e3",
            "c1",
            "purchase",
            T0 + 2.0 * DAY,
            &[("amount", Value::Number(99.5)), ("product", Value::Text("plain".into()))],
        ),
        event("e4", "c1", "purchase", T0, &[("amount", Value::Number(1.0))]),
        event("", "c1", "cart_add", T0, &value(1.0)),
        event("e5", "c1", "cart_add", f64::NAN, &value(1.0)),
        event("e6", "c1", "cart_add", T0, &[]),
        event("e7", "c1", "page_view", T0, &[]),
    ];
    let report = engine.track(&events).unwrap();
    assert_eq!((report.accepted, report.duplicates, report.refused), (4, 1, 4));
    let messages: Vec<&str> = report.rejected.iter().map(|r| r.message.as_str()).collect();
    assert!(messages[0].contains("has no property 'product'"), "{messages:?}");
    assert!(messages[1].contains("id must not be empty"), "{messages:?}");
    assert!(messages[2].contains("needs a time"), "{messages:?}");
    assert!(messages[3].contains("has no property 'value', which feature 'last_cart' reads"), "{messages:?}");

    let at = |t: f64| engine.profile("c1", Some(t)).unwrap().unwrap();
    let now = at(T0 + 3.0 * DAY);
    assert_eq!(feature(&now, "cart_adds_7d"), Value::Number(2.0));
    assert_eq!(feature(&now, "last_cart"), Value::Number(20.0));
    assert_eq!(feature(&now, "spend_30d"), Value::Number(99.5));
    assert_eq!(feature(&now, "days_since_purchase"), Value::Number(1.0));
    assert_eq!(now.purchases, ["plain"]);
    // A week after the first cart add it has left the window; the second is still in.
    assert_eq!(feature(&at(T0 + 7.5 * DAY), "cart_adds_7d"), Value::Number(1.0));
    assert_eq!(feature(&at(T0 + 9.0 * DAY), "cart_adds_7d"), Value::Number(0.0));
    assert_eq!(feature(&at(T0 + 40.0 * DAY), "spend_30d"), Value::Number(0.0));
}

#[test]
fn events_grant_and_revoke_consent() {
    let engine = engine();
    engine.upsert_profiles(&[write("c1", &[("vip", Value::Flag(false))])], Some(T0)).unwrap();
    assert!(by_id(&engine, "mail", "c1", T0).unwrap().offers.is_empty(), "no consent to email yet");
    engine.track(&[event("o1", "c1", "email_opt_in", T0, &[])]).unwrap();
    assert_eq!(engine.profile("c1", Some(T0)).unwrap().unwrap().consents, ["email"]);
    assert_eq!(by_id(&engine, "mail", "c1", T0 + 1.0).unwrap().offers.len(), 1);
    engine.track(&[event("o2", "c1", "email_opt_out", T0 + 2.0, &[])]).unwrap();
    assert!(engine.profile("c1", Some(T0)).unwrap().unwrap().consents.is_empty());
}

#[test]
fn deciding_by_id_equals_deciding_with_the_same_features() {
    let stored = engine();
    let sent = engine();
    stored
        .upsert_profiles(
            &[write("c1", &[("vip", Value::Flag(true)), ("segment", Value::Text("gold".into()))])],
            Some(T0),
        )
        .unwrap();
    let value = [("value", Value::Number(5.0))];
    stored.track(&[event("a", "c1", "cart_add", T0, &value), event("b", "c1", "cart_add", T0, &value)]).unwrap();
    for round in 0..20 {
        let now = T0 + 10.0 + f64::from(round);
        let by_id = by_id(&stored, "hero", "c1", now).unwrap();
        // age default 40, gold, vip, 2 cart adds, no spend, last cart 5, no purchase yet.
        let features = [40.0, 1.0, 1.0, 2.0, 0.0, 5.0, 9999.0];
        let placements = ["hero"];
        let request =
            DecideRequest { profile_id: Some("c1"), explain: true, ..DecideRequest::new(&placements, &features, now) };
        let with_features = sent.decide(&request).unwrap();
        assert_eq!(by_id.offers, with_features.offers, "round {round}");
        assert_eq!(by_id.reasons, with_features.reasons, "round {round}");
    }
    // Context overrides a stored value for one decision only.
    let placements = ["hero"];
    let context = [("segment", NamedValue::Category("basic"))];
    let request = StoredDecideRequest {
        placements: &placements,
        profile_id: "c1",
        context: &context,
        consents: &[],
        purchases: &[],
        history: &[],
        now: T0 + 100.0,
        explain: true,
        exclude: &[],
    };
    let d = stored.decide_stored(&request).unwrap().remove(0);
    assert!(d.reasons.iter().any(|(o, r)| o == "gold_card" && r.to_string().contains("rule")), "{:?}", d.reasons);
    let c1 = stored.profile("c1", Some(T0)).unwrap().unwrap();
    assert_eq!(feature(&c1, "segment"), Value::Text("gold".into()));
}

#[test]
fn a_never_seen_id_is_not_found_or_decided_on_the_defaults() {
    let strict = engine();
    assert!(matches!(by_id(&strict, "hero", "nobody", T0), Err(Error::UnknownProfile(_))));
    strict.upsert_profiles(&[write("c1", &[("age", Value::Number(30.0))])], Some(T0)).unwrap();
    let err = by_id(&strict, "hero", "c1", T0).unwrap_err().to_string();
    assert!(err.contains("no value for vip") && err.contains("declares no default"), "{err}");

    let lenient_json = catalog_json("", "defaults")
        .replace(r#""name": "vip", "type": "bool""#, r#""name": "vip", "type": "bool", "default": false"#);
    let lenient = Engine::new(Catalog::from_json(&lenient_json).unwrap(), 3).simulated();
    assert_eq!(by_id(&lenient, "hero", "nobody", T0).unwrap().offers.len(), 1);
    assert!(lenient.profile("nobody", Some(T0)).unwrap().is_none(), "deciding does not create a profile");

    let err = Catalog::from_json(&catalog_json("", "defaults")).unwrap_err().to_string();
    assert!(err.contains("needs a default for every stored feature; none for vip"), "{err}");
}

#[test]
fn catalog_declarations_are_checked() {
    let bad = |feature: &str| {
        Catalog::from_json(&catalog_json(&format!(", {feature}"), "not_found")).unwrap_err().to_string()
    };
    let last =
        bad(r#"{"name": "x", "type": "float", "computed": {"event": "e", "aggregate": "last", "property": "p"}}"#);
    assert!(last.contains("feature 'x': computed: last needs a default"), "{last}");
    let window = bad(r#"{"name": "x", "type": "int", "computed": {"event": "e", "aggregate": "count"}}"#);
    assert!(window.contains("count needs a window"), "{window}");
    let sum = bad(
        r#"{"name": "x", "type": "int", "computed": {"event": "e", "aggregate": "sum", "property": "p", "window": 60}}"#,
    );
    assert!(sum.contains("must be float"), "{sum}");
    let reserved = bad(r#"{"name": "consents", "type": "int"}"#);
    assert!(reserved.contains("reserved"), "{reserved}");
    let default = bad(r#"{"name": "x", "type": "category", "values": ["a"], "default": "b"}"#);
    assert!(default.contains("feature 'x': default: feature 'x' must be one of a, got 'b'"), "{default}");
}

#[test]
fn erasure_leaves_nothing_of_the_profile() {
    let engine = engine();
    engine.upsert_profiles(&[write("c1", &[("vip", Value::Flag(true))])], Some(T0)).unwrap();
    let d = by_id(&engine, "hero", "c1", T0).unwrap();
    assert!(!engine.contact_history("c1").is_empty());
    assert!(engine.delete_profile("c1").unwrap());
    assert!(engine.profile("c1", Some(T0)).unwrap().is_none());
    assert!(engine.contact_history("c1").is_empty());
    assert!(engine.report_outcome(d.decision_id, None, 1.0, false).is_err(), "its pending decision is gone");
    assert!(!engine.delete_profile("c1").unwrap());
}

#[test]
fn capacity_bounds_the_store() {
    let json = catalog_json("", "not_found").replace(r#""capacity": 1000"#, r#""capacity": 64"#);
    let engine = Engine::new(Catalog::from_json(&json).unwrap(), 3).simulated();
    let rows: Vec<ProfileWrite> = (0..1000).map(|i| write(&format!("c{i}"), &[("age", Value::Number(1.0))])).collect();
    assert_eq!(engine.upsert_profiles(&rows, Some(T0)).unwrap().accepted, 1000);
    let held = engine.profile_count().unwrap();
    assert!(held <= 64 + 63, "{held}");
    assert!(engine.profile("c999", Some(T0)).unwrap().is_some(), "the most recent are kept");
}

#[test]
fn an_idle_profile_is_let_go() {
    let json = catalog_json("", "not_found").replace(r#""capacity": 1000"#, r#""capacity": 1000, "idle_ttl": 86400"#);
    let engine = Engine::new(Catalog::from_json(&json).unwrap(), 3).simulated();
    engine.upsert_profiles(&[write("c1", &[("age", Value::Number(1.0))])], Some(T0)).unwrap();
    assert!(engine.profile("c1", Some(T0 + 0.5 * DAY)).unwrap().is_some());
    assert!(engine.profile("c1", Some(T0 + 1.6 * DAY)).unwrap().is_none());
}

#[test]
fn the_wall_clock_refuses_events_from_the_future() {
    let engine = Engine::new(Catalog::from_json(&catalog_json("", "not_found")).unwrap(), 3);
    let now = crate::limits::wall_seconds();
    let value = [("value", Value::Number(1.0))];
    let report = engine.track(&[event("f", "c1", "cart_add", now + 365.0 * DAY, &value)]).unwrap();
    assert_eq!(report.refused, 1);
    assert!(report.rejected[0].message.contains("ahead of the server clock"), "{:?}", report.rejected);
    assert!(engine.profile("c1", None).unwrap().is_none(), "nothing was written");
}

#[test]
fn columns_write_like_rows() {
    let engine = engine();
    let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let columns = [
        (
            "age".to_owned(),
            Column::Numbers { values: vec![20.0, f64::NAN, 40.0], present: Some(vec![true, false, true]) },
        ),
        ("vip".to_owned(), Column::Numbers { values: vec![1.0, 0.0, 2.0], present: None }),
        (
            "segment".to_owned(),
            Column::Categories { names: vec!["gold".into(), "silver".into()], codes: vec![0, 1, -1] },
        ),
    ];
    let report = engine.upsert_columns(&ids, &columns, Some(T0)).unwrap();
    assert_eq!(report.accepted, 1);
    let messages: Vec<&str> = report.rejected.iter().map(|r| r.message.as_str()).collect();
    assert!(messages[0].contains("got 'silver'") && messages[1].contains("takes a flag"), "{messages:?}");
    let a = engine.profile("a", Some(T0)).unwrap().unwrap();
    assert_eq!((feature(&a, "age"), feature(&a, "segment")), (Value::Number(20.0), Value::Text("gold".into())));
    let err = engine.upsert_columns(
        &ids,
        &[("cart_adds_7d".into(), Column::Numbers { values: vec![1.0; 3], present: None })],
        None,
    );
    assert!(err.unwrap_err().to_string().contains("computed from events"));
}

#[test]
fn profiles_and_events_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("profiles-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open = |snapshot_every| {
        let options = DurableOptions { dir: dir.clone(), fsync: Fsync::Never, snapshot_every };
        let catalog = Catalog::from_json(&catalog_json("", "not_found")).unwrap();
        Engine::open(catalog, 3, 1000, options).unwrap().0.simulated()
    };
    for snapshot_every in [1_000_000, 2] {
        let _ = std::fs::remove_dir_all(&dir);
        {
            let engine = open(snapshot_every);
            engine.upsert_profiles(&[write("c1", &[("vip", Value::Flag(true))])], Some(T0)).unwrap();
            let value = [("value", Value::Number(7.0))];
            engine
                .track(&[event("a", "c1", "cart_add", T0, &value), event("b", "c1", "cart_add", T0, &value)])
                .unwrap();
            engine.track(&[event("o", "c1", "email_opt_in", T0, &[])]).unwrap();
            engine.upsert_profiles(&[write("gone", &[("vip", Value::Flag(true))])], Some(T0)).unwrap();
            engine.delete_profile("gone").unwrap();
        }
        let engine = open(snapshot_every);
        let c1 = engine.profile("c1", Some(T0 + 1.0)).unwrap().unwrap();
        assert_eq!(feature(&c1, "vip"), Value::Flag(true), "snapshot_every {snapshot_every}");
        assert_eq!(feature(&c1, "cart_adds_7d"), Value::Number(2.0));
        assert_eq!(c1.consents, ["email"]);
        assert!(engine.profile("gone", Some(T0)).unwrap().is_none());
        // The event ids came back too: a retried event is still a duplicate.
        let retry = engine.track(&[event("a", "c1", "cart_add", T0, &[("value", Value::Number(7.0))])]).unwrap();
        assert_eq!(retry.duplicates, 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reload_with_another_schema_keeps_profiles_by_name() {
    let engine = engine();
    engine
        .upsert_profiles(
            &[write("c1", &[("segment", Value::Text("gold".into())), ("vip", Value::Flag(true))])],
            Some(T0),
        )
        .unwrap();
    engine.track(&[event("a", "c1", "cart_add", T0, &[("value", Value::Number(3.0))])]).unwrap();
    // A new feature first, and the segment values reordered: codes move, names stay.
    let json = catalog_json("", "not_found")
        .replace(r#""features": ["#, r#""features": [{"name": "tenure", "type": "int", "default": 0},"#)
        .replace(r#"["basic", "gold"]"#, r#"["gold", "silver", "basic"]"#);
    engine.replace_catalog(Catalog::from_json(&json).unwrap()).unwrap();
    let c1 = engine.profile("c1", Some(T0)).unwrap().unwrap();
    assert_eq!(feature(&c1, "segment"), Value::Text("gold".into()));
    assert_eq!(feature(&c1, "tenure"), Value::Number(0.0));
    assert_eq!(feature(&c1, "cart_adds_7d"), Value::Number(1.0));
    assert_eq!(feature(&c1, "vip"), Value::Flag(true));
}
