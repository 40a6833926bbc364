//! Triggers on a real redis-server shared by two engines: each timer fires once across
//! servers racing for it, a server that dies holding a lease lets another fire its timers,
//! cancel-on, caps and deliveries hold across servers, and erasure leaves nothing.

use std::sync::Arc;
use std::time::Duration;

use super::shared_tests::Redis;
use super::trigger_tests::catalog;
use super::*;
use crate::store::Value;
use crate::store::shared::{CLAIM_LEASE, Found};
use crate::triggers::Delivery;

const NOON: f64 = 86_400.0 * 19_700.0 + 12.0 * 3_600.0;
const DELAY: f64 = 1_800.0;

fn server(redis: &Redis, seed: u64) -> Arc<Engine> {
    let mut e = Engine::new(catalog(""), seed).simulated();
    e.use_redis_store(&redis.url(), "t", Duration::from_millis(500)).unwrap();
    Arc::new(e)
}

fn customer(e: &Engine, id: &str) {
    let write = ProfileWrite {
        id: id.into(),
        features: vec![("utc_offset".into(), Value::Number(0.0))],
        consents: vec!["email".into()],
        ..ProfileWrite::default()
    };
    e.upsert_profiles(&[write], Some(NOON - 60.0)).unwrap();
}

fn event(kind: &str, id: &str, profile: &str, cart: &str, time: f64) -> Event {
    Event {
        id: id.into(),
        profile_id: profile.into(),
        kind: kind.into(),
        time,
        properties: vec![("cart_id".into(), Value::Text(cart.into())), ("cart_value".into(), Value::Number(50.0))],
    }
}

fn outcomes(e: &Engine, profile: &str) -> Vec<String> {
    e.trigger_history(profile).unwrap().into_iter().map(|h| h.outcome).collect()
}

#[test]
fn each_timer_fires_once_across_servers_racing_for_it() {
    let redis = Redis::start();
    let (a, b) = (server(&redis, 1), server(&redis, 2));
    let profiles: Vec<String> = (0..120).map(|i| format!("c{i}")).collect();
    for (i, p) in profiles.iter().enumerate() {
        let writer = if i % 2 == 0 { &a } else { &b };
        customer(writer, p);
        writer.track(&[event("cart_add", &format!("e{i}"), p, "k1", NOON)]).unwrap();
    }
    assert_eq!(a.pending_timers().unwrap(), 120, "one timer store for both servers");
    assert_eq!(b.fire_due(Some(NOON + DELAY - 1.0)).unwrap(), 0, "not before the delay");
    // Both servers fire at once, from two threads each.
    let fired: usize = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &b, &a, &b]
            .into_iter()
            .map(|e| s.spawn(move || (0..5).map(|_| e.fire_due(Some(NOON + DELAY)).unwrap()).sum::<usize>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(fired, 120, "every timer claimed by exactly one server");
    assert_eq!((a.pending_timers().unwrap(), b.pending_deliveries().unwrap()), (0, 120));
    for p in &profiles {
        assert_eq!(outcomes(&a, p), ["delivered"], "{p}");
    }
    // Subscribers on either server share the queue: each decision goes out once per visibility.
    let mut seen = std::collections::HashSet::new();
    for e in [&a, &b] {
        for d in e.poll_deliveries("email", 100, 30.0, Some(NOON + DELAY)).unwrap() {
            assert_eq!(d.attempt, 1);
            assert!(seen.insert(d.decision_id), "a decision delivered twice within its visibility");
        }
    }
    assert_eq!(seen.len(), 120);
    let ids: Vec<u64> = seen.into_iter().collect();
    assert_eq!(b.ack_deliveries(&ids).unwrap(), 120, "acknowledged on the other server");
    assert_eq!(a.ack_deliveries(&ids).unwrap(), 0, "once");
    assert_eq!(a.pending_deliveries().unwrap(), 0);
    // The outcome log holds every server's outcomes, readable on either.
    let (mut logged, mut cursor) = (Vec::new(), String::new());
    loop {
        let (page, next) = b.trigger_outcomes(&cursor, 50).unwrap();
        if page.is_empty() {
            break;
        }
        logged.extend(page);
        cursor = next;
    }
    let count = |outcome: &str| logged.iter().filter(|(_, e)| e.outcome == outcome).count();
    assert_eq!((count("delivered"), count("acknowledged"), logged.len()), (120, 120, 240));
}

#[test]
fn a_server_that_dies_holding_a_lease_lets_another_fire_its_timers() {
    let redis = Redis::start();
    let (a, b) = (server(&redis, 1), server(&redis, 2));
    customer(&a, "c1");
    a.track(&[event("cart_add", "e1", "c1", "k1", NOON)]).unwrap();
    // A claims the due timer and dies before firing it.
    let claimed = a.shared.as_ref().unwrap().redis.claim_due(NOON + DELAY, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    drop(a);
    assert_eq!(b.fire_due(Some(NOON + DELAY + 1.0)).unwrap(), 0, "leased to the dead server");
    assert_eq!(b.fire_due(Some(NOON + DELAY + CLAIM_LEASE + 1.0)).unwrap(), 1, "its lease ran out");
    assert_eq!(outcomes(&b, "c1"), ["delivered"]);
    assert_eq!(b.fire_due(Some(NOON + DELAY + 10.0 * CLAIM_LEASE)).unwrap(), 0, "fired once");
    assert_eq!(b.pending_deliveries().unwrap(), 1);
}

#[test]
fn a_firing_committed_by_a_dead_server_is_delivered_once() {
    let redis = Redis::start();
    let (a, b) = (server(&redis, 1), server(&redis, 2));
    customer(&a, "c1");
    a.track(&[event("cart_add", "e1", "c1", "k1", NOON)]).unwrap();
    // A claims and commits the decision (the firing ends with it), then dies before queueing.
    let shared = a.shared.as_ref().unwrap();
    let now = NOON + DELAY;
    let claimed = shared.redis.claim_due(now, 10).unwrap();
    let Found::Instance(instance) = shared.redis.find_instance(&claimed[0]).unwrap() else { panic!("waiting") };
    let loaded = a.current();
    let trigger = loaded.catalog.triggers.by_id(&instance.trigger).unwrap();
    let delivery_of = |d: &Decision| Delivery {
        decision_id: d.decision_id,
        trigger: trigger.id.clone(),
        profile: "c1".into(),
        key: "k1".into(),
        placement: "email_cart".into(),
        channel: "email".into(),
        offers: d.offers.iter().map(|o| (o.offer_id.clone(), o.score, o.propensity)).collect(),
        decided_at: now,
        expires_at: now + 3_600.0,
        attempt: 0,
        visible_at: now,
    };
    let decision = a.decide_firing(shared, &instance, "email_cart", now, &delivery_of).unwrap().unwrap();
    assert!(!decision.offers.is_empty());
    let again = a.decide_firing(shared, &instance, "email_cart", now, &delivery_of).unwrap();
    assert!(again.is_none_or(|d| d.offers.is_empty()), "an ended firing shows nothing again");
    drop(a);
    assert_eq!(b.pending_deliveries().unwrap(), 0, "not queued yet");
    b.fire_due(Some(now + CLAIM_LEASE + 1.0)).unwrap();
    let sent = b.poll_deliveries("email", 10, 30.0, Some(now + CLAIM_LEASE + 1.0)).unwrap();
    assert_eq!(sent.iter().map(|d| d.decision_id).collect::<Vec<_>>(), [decision.decision_id], "A's decision");
    assert_eq!(outcomes(&b, "c1"), ["delivered"]);
    assert_eq!(b.stored_history("c1").unwrap().len(), 1, "one contact: not decided again");
}

#[test]
fn cancel_caps_and_deliveries_hold_across_servers() {
    let redis = Redis::start();
    let (a, b) = (server(&redis, 1), server(&redis, 2));
    customer(&a, "c1");
    a.track(&[event("cart_add", "e1", "c1", "k1", NOON), event("cart_add", "e2", "c1", "k2", NOON)]).unwrap();
    b.track(&[event("purchase", "p1", "c1", "k1", NOON + 60.0)]).unwrap();
    assert_eq!(a.pending_timers().unwrap(), 1, "the purchase on B cancelled cart k1 started on A");
    assert_eq!(a.fire_due(Some(NOON + DELAY)).unwrap(), 1);
    // The email cap (1 a day) holds for an inbound decision on the other server.
    let placements = ["email_cart"];
    let request = StoredDecideRequest {
        placements: &placements,
        profile_id: "c1",
        context: &[],
        consents: &[],
        purchases: &[],
        history: &[],
        now: NOON + DELAY + 1.0,
        explain: true,
        exclude: &[],
    };
    assert!(b.decide_stored(&request).unwrap()[0].offers.is_empty(), "capped by the triggered email");
    // Not acknowledged within its visibility: delivered again, by the other server.
    let first = a.poll_deliveries("email", 10, 10.0, Some(NOON + DELAY)).unwrap();
    assert_eq!(first.len(), 1);
    assert!(b.poll_deliveries("email", 10, 10.0, Some(NOON + DELAY + 5.0)).unwrap().is_empty(), "in flight");
    let again = b.poll_deliveries("email", 10, 10.0, Some(NOON + DELAY + 11.0)).unwrap();
    assert_eq!((again[0].decision_id, again[0].attempt), (first[0].decision_id, 2));
    // Never acknowledged: released past its time to live, its contact given back.
    let expires = first[0].expires_at;
    assert_eq!(b.fire_due(Some(expires + 1.0)).unwrap(), 0);
    assert_eq!(a.pending_deliveries().unwrap(), 0);
    assert_eq!(outcomes(&a, "c1"), ["cancelled", "delivered", "released"]);
    assert!(!b.decide_stored(&StoredDecideRequest { now: expires + 2.0, ..request }).unwrap()[0].offers.is_empty());
}

#[test]
fn erasing_a_profile_leaves_no_trigger_key() {
    let redis = Redis::start();
    let a = server(&redis, 1);
    customer(&a, "c1");
    a.track(&[event("cart_add", "e1", "c1", "k1", NOON), event("cart_add", "e2", "c1", "k2", NOON + 1.0)]).unwrap();
    a.fire_due(Some(NOON + DELAY)).unwrap();
    assert_eq!((a.pending_timers().unwrap(), a.pending_deliveries().unwrap()), (1, 1), "one delivered, one waiting");
    assert!(redis.keys().iter().any(|k| k.contains("{c1}:t")));
    assert!(a.delete_profile("c1").unwrap());
    assert_eq!((a.pending_timers().unwrap(), a.pending_deliveries().unwrap()), (0, 0));
    let left: Vec<String> = redis.keys().into_iter().filter(|k| k.contains("{c1}") || k.contains("{Q}")).collect();
    assert!(left.is_empty(), "{left:?}");
}
