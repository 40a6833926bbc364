//! Triggers through the engine on a simulated clock: delays, cancellation, quiet hours,
//! re-entry, caps shared with inbound decisions, deliveries, and restarts.

use super::*;
use crate::catalog::Catalog;
use crate::store::Value;
use crate::store::durable::{DurableOptions, Fsync};

/// A midnight, UTC.
const DAY0: f64 = 86_400.0 * 19_700.0;
const NOON: f64 = DAY0 + 12.0 * 3_600.0;
const MINUTE: f64 = 60.0;

pub(super) fn catalog(trigger_extra: &str) -> Catalog {
    Catalog::from_json(&format!(
        r#"{{
      "features": [
        {{"name": "utc_offset", "type": "float", "default": 0}},
        {{"name": "cart_adds_7d", "type": "int", "computed": {{"event": "cart_add", "aggregate": "count", "window": 604800}}}}
      ],
      "channels": ["web", "email"],
      "placements": [{{"id": "hero", "channel": "web", "slots": 1, "policy": {{"type": "thompson"}}}},
                     {{"id": "email_cart", "channel": "email", "slots": 1, "policy": {{"type": "thompson"}}}}],
      "offers": [
        {{"id": "cart_reminder", "placements": ["email_cart"], "rule": "cart_adds_7d >= 1"}},
        {{"id": "banner", "placements": ["hero", "email_cart"], "value": 0.1}}
      ],
      "contact_policy": {{"caps": [{{"scope": "channel", "channel": "email", "max": 1, "window": 86400}}]}},
      "events": [{{"type": "email_opt_in", "grant": "email"}}],
      "profiles": {{"unknown": "not_found"}},
      "triggers": [{{
        "id": "cart_abandoned", "event": "cart_add", "key": "cart_id", "delay": 1800,
        "properties": [{{"name": "cart_value", "type": "float"}}],
        "filter": "cart_value >= 20",
        "cancel_on": [{{"event": "purchase", "key": "cart_id"}}],
        "placement": "email_cart"
        {trigger_extra}
      }}]
    }}"#
    ))
    .unwrap()
}

fn with_trigger(extra: &str) -> Engine {
    let engine = Engine::new(catalog(extra), 5).simulated();
    setup(&engine);
    engine
}

fn setup(engine: &Engine) {
    let write = ProfileWrite {
        id: "c1".into(),
        features: vec![("utc_offset".into(), Value::Number(0.0))],
        consents: vec!["email".into()],
        ..ProfileWrite::default()
    };
    engine.upsert_profiles(&[write], Some(DAY0)).unwrap();
}

pub(super) fn cart(id: &str, cart: &str, value: f64, time: f64) -> Event {
    Event {
        id: id.into(),
        profile_id: "c1".into(),
        kind: "cart_add".into(),
        time,
        properties: vec![("cart_id".into(), Value::Text(cart.into())), ("cart_value".into(), Value::Number(value))],
    }
}

pub(super) fn purchase(id: &str, cart: &str, time: f64) -> Event {
    Event {
        id: id.into(),
        profile_id: "c1".into(),
        kind: "purchase".into(),
        time,
        properties: vec![("cart_id".into(), Value::Text(cart.into()))],
    }
}

fn outcomes(engine: &Engine) -> Vec<String> {
    engine.trigger_history("c1").unwrap().into_iter().map(|e| e.outcome).collect()
}

#[test]
fn an_abandoned_cart_sends_after_the_delay_and_a_purchase_cancels() {
    let engine = with_trigger("");
    engine.track(&[cart("e1", "k1", 50.0, NOON)]).unwrap();
    assert_eq!(engine.pending_timers().unwrap(), 1);
    assert_eq!(engine.fire_due(Some(NOON + 29.0 * MINUTE)).unwrap(), 0, "not before the delay");
    assert_eq!(engine.fire_due(Some(NOON + 30.0 * MINUTE)).unwrap(), 1);
    let sent = engine.poll_deliveries("email", 10, 30.0, Some(NOON + 30.0 * MINUTE)).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].offers[0].0, "cart_reminder");
    assert_eq!((sent[0].attempt, sent[0].key.as_str()), (1, "k1"));
    assert_eq!(outcomes(&engine), ["delivered"]);

    // A second cart, bought within the delay: cancelled, by which event.
    engine.track(&[cart("e2", "k2", 50.0, NOON + 2.0 * 3_600.0)]).unwrap();
    engine.track(&[purchase("p1", "other-cart", NOON + 2.1 * 3_600.0)]).unwrap();
    assert_eq!(engine.pending_timers().unwrap(), 1, "a purchase of another cart cancels nothing");
    engine.track(&[purchase("p2", "k2", NOON + 2.2 * 3_600.0)]).unwrap();
    assert_eq!(engine.pending_timers().unwrap(), 0);
    let last = engine.trigger_history("c1").unwrap().pop().unwrap();
    assert_eq!((last.outcome.as_str(), last.detail.as_str()), ("cancelled", "by event 'p2' (purchase)"));
}

#[test]
fn the_filter_and_the_key_decide_who_enters() {
    let engine = with_trigger("");
    engine.track(&[cart("small", "k1", 5.0, NOON)]).unwrap();
    let mut no_key = cart("nokey", "k1", 50.0, NOON);
    no_key.properties.remove(0);
    engine.track(&[no_key]).unwrap();
    assert_eq!(engine.pending_timers().unwrap(), 0);
    let history = engine.trigger_history("c1").unwrap();
    assert_eq!(outcomes(&engine), ["filtered", "filtered"]);
    assert!(history[0].detail.contains("cart_value >= 20 is false"), "{history:?}");
    assert!(history[1].detail.contains("no property 'cart_id'"), "{history:?}");
}

#[test]
fn caps_are_shared_with_inbound_decisions() {
    let engine = with_trigger("");
    // An inbound email decision takes the channel's one message a day.
    let placements = ["email_cart"];
    let request = super::profiles::StoredDecideRequest {
        placements: &placements,
        profile_id: "c1",
        context: &[],
        consents: &[],
        purchases: &[],
        history: &[],
        now: NOON,
        explain: false,
        exclude: &[],
    };
    assert_eq!(engine.decide_stored(&request).unwrap()[0].offers.len(), 1);
    engine.track(&[cart("e1", "k1", 50.0, NOON)]).unwrap();
    engine.fire_due(Some(NOON + 30.0 * MINUTE)).unwrap();
    let last = engine.trigger_history("c1").unwrap().pop().unwrap();
    assert_eq!(last.outcome, "capped", "{last:?}");
    assert!(last.detail.contains("cap"), "{last:?}");
    assert_eq!(engine.pending_deliveries().unwrap(), 0);
}

#[test]
fn quiet_hours_queue_or_discard() {
    let queue = r#", "quiet_hours": {"start": 22, "end": 8, "time_zone": "utc_offset", "without_time_zone": "discard", "action": "queue", "ttl": 43200}"#;
    let engine = with_trigger(queue);
    let late = DAY0 + 21.75 * 3_600.0; // fires at 22:15 UTC
    engine.track(&[cart("e1", "k1", 50.0, late)]).unwrap();
    engine.fire_due(Some(late + 30.0 * MINUTE)).unwrap();
    assert_eq!((engine.pending_timers().unwrap(), engine.pending_deliveries().unwrap()), (1, 0), "queued until 08:00");
    engine.fire_due(Some(DAY0 + 31.0 * 3_600.0)).unwrap();
    assert_eq!(engine.pending_deliveries().unwrap(), 0, "still quiet at 07:00");
    engine.fire_due(Some(DAY0 + 32.0 * 3_600.0)).unwrap();
    assert_eq!(engine.pending_deliveries().unwrap(), 1, "sent at 08:00");

    let discard = queue.replace(r#""action": "queue", "ttl": 43200"#, r#""action": "discard""#);
    let engine = with_trigger(&discard);
    engine.track(&[cart("e1", "k1", 50.0, late)]).unwrap();
    engine.fire_due(Some(late + 30.0 * MINUTE)).unwrap();
    assert_eq!(outcomes(&engine), ["discarded_quiet_hours"]);

    // At UTC+11 it is 09:15 local: not quiet.
    let engine = with_trigger(&discard);
    let write = ProfileWrite {
        id: "c1".into(),
        features: vec![("utc_offset".into(), Value::Number(11.0))],
        ..ProfileWrite::default()
    };
    engine.upsert_profiles(&[write], Some(DAY0)).unwrap();
    engine.track(&[cart("e1", "k1", 50.0, late)]).unwrap();
    engine.fire_due(Some(late + 30.0 * MINUTE)).unwrap();
    assert_eq!(outcomes(&engine), ["delivered"]);
}

#[test]
fn a_profile_without_a_time_zone_follows_the_declared_policy() {
    let quiet = |without: &str| {
        format!(
            r#", "quiet_hours": {{"start": 22, "end": 8, "time_zone": "utc_offset", "without_time_zone": "{without}", "action": "discard"}}"#
        )
    };
    let late = DAY0 + 21.75 * 3_600.0;
    for (without, expected) in
        [("discard", "discarded_quiet_hours"), ("utc", "discarded_quiet_hours"), ("ignore", "delivered")]
    {
        let engine = Engine::new(catalog(&quiet(without)), 5).simulated();
        let write = ProfileWrite { id: "c1".into(), consents: vec!["email".into()], ..ProfileWrite::default() };
        engine.upsert_profiles(&[write], Some(DAY0)).unwrap();
        engine.track(&[cart("e1", "k1", 50.0, late)]).unwrap();
        engine.fire_due(Some(late + 30.0 * MINUTE)).unwrap();
        let last = engine.trigger_history("c1").unwrap().pop().unwrap();
        assert_eq!(last.outcome, expected, "{without}: {last:?}");
        if without == "discard" {
            assert!(last.detail.contains("no time zone"), "{last:?}");
        }
    }
}

#[test]
fn reentry_and_live_instances_are_bounded() {
    let engine = with_trigger(r#", "reentry": 86400, "max_live": 1"#);
    engine.track(&[cart("e1", "k1", 50.0, NOON)]).unwrap();
    engine.track(&[cart("e2", "k2", 50.0, NOON + MINUTE)]).unwrap();
    assert_eq!(outcomes(&engine), ["reentry"]);
    let engine = engine_with_max_live();
    engine.track(&[cart("e1", "k1", 50.0, NOON)]).unwrap();
    engine.track(&[cart("e2", "k1", 50.0, NOON + MINUTE)]).unwrap();
    engine.track(&[cart("e3", "k2", 50.0, NOON + MINUTE)]).unwrap();
    assert_eq!(engine.pending_timers().unwrap(), 2, "one live instance per cart");
    assert_eq!(outcomes(&engine), ["max_live"]);
}

fn engine_with_max_live() -> Engine {
    with_trigger(r#", "max_live": 1"#)
}

#[test]
fn an_unacknowledged_delivery_comes_again_then_is_released() {
    let engine = with_trigger(r#", "delivery_ttl": 3600"#);
    engine.track(&[cart("e1", "k1", 50.0, NOON)]).unwrap();
    let fire = NOON + 30.0 * MINUTE;
    engine.fire_due(Some(fire)).unwrap();
    assert_eq!(engine.poll_deliveries("email", 10, 30.0, Some(fire)).unwrap().len(), 1);
    assert!(engine.poll_deliveries("email", 10, 30.0, Some(fire + 10.0)).unwrap().is_empty(), "in flight");
    let again = engine.poll_deliveries("email", 10, 30.0, Some(fire + 31.0)).unwrap();
    assert_eq!(again[0].attempt, 2);
    assert!(
        engine.poll_deliveries("web", 10, 30.0, Some(fire + 100.0)).unwrap().is_empty(),
        "other channels see nothing"
    );
    // Never acknowledged: released after the delivery ttl, the email cap given back.
    engine.fire_due(Some(fire + 3_601.0)).unwrap();
    assert_eq!(engine.pending_deliveries().unwrap(), 0);
    assert_eq!(outcomes(&engine), ["delivered", "released"]);
    engine.track(&[cart("e2", "k2", 50.0, fire + 3_700.0)]).unwrap();
    engine.fire_due(Some(fire + 3_700.0 + 30.0 * MINUTE)).unwrap();
    assert_eq!(outcomes(&engine).last().unwrap(), "delivered", "the cap was given back");
    let id = engine.poll_deliveries("email", 10, 30.0, Some(fire + 6_000.0)).unwrap()[0].decision_id;
    assert_eq!(engine.ack_deliveries(&[id, id, 12_345]).unwrap(), 1);
    assert!(engine.poll_deliveries("email", 10, 30.0, Some(fire + 9_000.0)).unwrap().is_empty());
    assert!(engine.poll_deliveries("sms", 10, 30.0, None).is_err());
}

#[test]
fn timers_fire_once_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("triggers-restart-{}", std::process::id()));
    for snapshot_every in [1_000_000, 3] {
        let _ = std::fs::remove_dir_all(&dir);
        let open = || {
            let options = DurableOptions { dir: dir.clone(), fsync: Fsync::Never, snapshot_every };
            Engine::open(catalog(""), 5, 1000, options).unwrap().0.simulated()
        };
        {
            let engine = open();
            setup(&engine);
            for (i, k) in ["k1", "k2", "k3"].iter().enumerate() {
                engine.track(&[cart(&format!("e{i}"), k, 50.0, NOON + i as f64 * 3_600.0)]).unwrap();
            }
            engine.fire_due(Some(NOON + 30.0 * MINUTE)).unwrap();
            assert_eq!(engine.pending_deliveries().unwrap(), 1);
        }
        let engine = open();
        assert_eq!(engine.pending_timers().unwrap(), 2, "snapshot_every {snapshot_every}");
        assert_eq!(engine.pending_deliveries().unwrap(), 1, "the delivery survived, waiting for its ack");
        engine.fire_due(Some(NOON + 10.0 * 3_600.0)).unwrap();
        assert_eq!(engine.pending_timers().unwrap(), 0);
        // The email cap allows one a day: the other two end capped, none fires twice.
        assert_eq!(outcomes(&engine), ["delivered", "capped", "capped"], "snapshot_every {snapshot_every}");
        drop(engine);
        let engine = open();
        assert_eq!(engine.pending_timers().unwrap(), 0);
        assert_eq!(engine.fire_due(Some(NOON + 20.0 * 3_600.0)).unwrap(), 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn erasure_takes_timers_and_deliveries() {
    let engine = with_trigger("");
    engine.track(&[cart("e1", "k1", 50.0, NOON), cart("e2", "k2", 50.0, NOON + 3_600.0)]).unwrap();
    engine.fire_due(Some(NOON + 30.0 * MINUTE)).unwrap();
    assert_eq!((engine.pending_timers().unwrap(), engine.pending_deliveries().unwrap()), (1, 1));
    assert!(engine.delete_profile("c1").unwrap());
    assert_eq!((engine.pending_timers().unwrap(), engine.pending_deliveries().unwrap()), (0, 0));
    assert!(engine.trigger_history("c1").unwrap().is_empty());
}

#[test]
fn trigger_declarations_are_checked() {
    let bad = |extra: &str| {
        let json = catalog("").triggers.triggers.len(); // the valid one compiles
        assert_eq!(json, 1);
        Catalog::from_json(&catalog_json_with(extra)).unwrap_err().to_string()
    };
    assert!(bad(r#""filter": "cart_value >>= 2""#).contains("trigger 'cart_abandoned': rule 1:"));
    assert!(bad(r#""placement": "nowhere""#).contains("unknown placement 'nowhere'"));
    assert!(bad(r#""delay": -1"#).contains("delay must be >= 0"));
}

fn catalog_json_with(replacement: &str) -> String {
    let key = replacement.split(':').next().unwrap();
    let original = match key {
        r#""filter""# => r#""filter": "cart_value >= 20""#,
        r#""placement""# => r#""placement": "email_cart""#,
        _ => r#""delay": 1800"#,
    };
    let json = r#"{"features": [{"name": "utc_offset", "type": "float"}], "channels": ["web", "email"],
      "placements": [{"id": "email_cart", "channel": "email", "slots": 1, "policy": {"type": "thompson"}}],
      "offers": [{"id": "a", "placements": ["email_cart"]}],
      "triggers": [{"id": "cart_abandoned", "event": "cart_add", "delay": 1800,
        "properties": [{"name": "cart_value", "type": "float"}], "filter": "cart_value >= 20", "placement": "email_cart"}]}"#;
    json.replace(original, replacement)
}

#[test]
fn quiet_hours_follow_an_iana_zone_and_a_bad_zone_names_the_value() {
    let json = r#"{"features": [{"name": "tz", "type": "category", "values": ["Europe/Paris", "America/New_York"]}],
      "channels": ["email"],
      "placements": [{"id": "email_cart", "channel": "email", "slots": 1, "policy": {"type": "thompson"}}],
      "offers": [{"id": "a", "placements": ["email_cart"]}],
      "triggers": [{"id": "cart", "event": "cart_add", "delay": 0, "placement": "email_cart",
        "quiet_hours": {"start": 22, "end": 8, "time_zone": "tz", "without_time_zone": "utc",
                        "action": "queue", "ttl": 86400}}]}"#;
    let engine = Engine::new(Catalog::from_json(json).unwrap(), 5).simulated();
    let july = 1_782_864_000.0; // 2026-07-01 00:00 UTC: 20:00 in New York (EDT), 02:00 in Paris
    for (id, zone) in [("ny", "America/New_York"), ("paris", "Europe/Paris")] {
        let write = ProfileWrite {
            id: id.into(),
            features: vec![("tz".into(), Value::Text(zone.into()))],
            consents: vec!["email".into()],
            ..ProfileWrite::default()
        };
        engine.upsert_profiles(&[write], Some(july - 60.0)).unwrap();
        let event = Event {
            id: format!("e-{id}"),
            profile_id: id.into(),
            kind: "cart_add".into(),
            time: july,
            properties: vec![],
        };
        engine.track(&[event]).unwrap();
    }
    engine.fire_due(Some(july)).unwrap();
    let delivered: Vec<String> =
        engine.poll_deliveries("email", 10, 30.0, Some(july)).unwrap().into_iter().map(|d| d.profile).collect();
    assert_eq!(delivered, ["ny"], "20:00 in New York; Paris is in its quiet hours (02:00 CEST)");
    // Paris's quiet hours end at 08:00 CEST, 06:00 UTC (not 07:00, as the winter offset would say).
    engine.fire_due(Some(july + 5.9 * 3_600.0)).unwrap();
    assert_eq!(engine.pending_deliveries().unwrap(), 1);
    engine.fire_due(Some(july + 6.0 * 3_600.0)).unwrap();
    assert_eq!(engine.pending_deliveries().unwrap(), 2, "sent at 08:00 in Paris");

    let bad = json.replace("America/New_York", "Mars/Olympus_Mons");
    let error = Catalog::from_json(&bad).unwrap_err().to_string();
    assert!(
        error.contains("trigger 'cart'") && error.contains("'Mars/Olympus_Mons', which is not an IANA time zone"),
        "{error}"
    );
}

#[test]
fn every_outcome_reaches_the_outcome_feed_in_order_and_a_replay_adds_none() {
    let dir = std::env::temp_dir().join(format!("de-trigger-feed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open = || {
        let options = DurableOptions { dir: dir.clone(), fsync: Fsync::Never, snapshot_every: 1_000_000 };
        Engine::open(catalog(""), 5, 1000, options).unwrap().0.simulated()
    };
    let engine = open();
    setup(&engine);
    engine.track(&[cart("e1", "k1", 5.0, NOON), cart("e2", "k2", 50.0, NOON), cart("e3", "k3", 50.0, NOON)]).unwrap();
    engine.track(&[purchase("e4", "k3", NOON + MINUTE)]).unwrap();
    engine.fire_due(Some(NOON + 30.0 * MINUTE)).unwrap();
    let (first, cursor) = engine.trigger_outcomes("", 2).unwrap();
    let (rest, end) = engine.trigger_outcomes(&cursor, 100).unwrap();
    let seen: Vec<String> = first.iter().chain(&rest).map(|(p, e)| format!("{p}:{}:{}", e.key, e.outcome)).collect();
    assert_eq!(seen, ["c1:k1:filtered", "c1:k3:cancelled", "c1:k2:delivered"]);
    assert!(engine.trigger_outcomes(&end, 100).unwrap().0.is_empty(), "nothing new");
    assert!(engine.trigger_outcomes("x", 10).unwrap_err().to_string().contains("not a cursor"));
    assert!(engine.trigger_outcomes("", 0).is_err());
    drop(engine);
    let engine = open();
    assert!(engine.trigger_outcomes("", 100).unwrap().0.is_empty(), "the replay feeds nothing again");
    assert_eq!(outcomes(&engine), ["filtered", "cancelled", "delivered"], "the history is back");
    let _ = std::fs::remove_dir_all(&dir);
}
