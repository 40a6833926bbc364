//! Engines sharing their state through a real redis-server on loopback: caps and budgets
//! exact across them, outcomes settled once and learned by all, an outage and its replay.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::catalog::Catalog;

const DAY: f64 = 86_400.0;
const NOW: f64 = 1000.0 * DAY;

/// A redis-server of its own on a free loopback port; stopped when dropped.
pub(super) struct Redis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub(super) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("de-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self { port, dir, child: None };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the shared store's tests need redis-server (make test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub(super) fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_connection().unwrap();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.sort();
        keys
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn catalog() -> Catalog {
    Catalog::from_json(
        r#"{
      "features": [{"name": "age", "type": "int"}],
      "channels": ["web", "app"],
      "placements": [
        {"id": "hero", "channel": "web", "slots": 1, "policy": {"type": "thompson"}},
        {"id": "banner", "channel": "app", "slots": 1, "policy": {"type": "thompson"}}
      ],
      "offers": [
        {"id": "card", "placements": ["hero"], "group": "cards"},
        {"id": "news", "placements": ["hero"]},
        {"id": "loan", "placements": ["banner"],
         "budget": {"max": 25, "window": 86400, "counts": "impressions", "pacing": "none"}}
      ],
      "contact_policy": {"caps": [
          {"scope": "channel", "channel": "web", "max": 3, "window": 86400},
          {"scope": "group", "group": "cards", "max": 1, "window": 86400, "when_store_unavailable": "closed"}],
        "cooldown_after_conversion": 3600}
    }"#,
    )
    .unwrap()
}

fn engine(redis: &Redis, seed: u64) -> Arc<Engine> {
    let mut e = Engine::new(catalog(), seed).simulated();
    e.use_redis_store(&redis.url(), "t", Duration::from_millis(200)).unwrap();
    Arc::new(e)
}

fn decide(e: &Engine, placement: &str, profile: Option<&str>) -> Result<Decision> {
    let placements = [placement];
    let request = DecideRequest { profile_id: profile, ..DecideRequest::new(&placements, &[30.0], NOW) };
    e.decide(&request)
}

#[test]
fn a_cap_holds_exactly_across_servers_deciding_at_once() {
    let redis = Redis::start();
    let servers = [engine(&redis, 1), engine(&redis, 2)];
    let shown: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let e = Arc::clone(&servers[t % 2]);
                s.spawn(move || (0..10).map(|_| decide(&e, "hero", Some("p1")).unwrap().offers.len()).sum::<usize>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(shown, 3, "the web cap of 3 a day, over 40 decisions on two servers");
    let history = servers[0].stored_history("p1").unwrap();
    assert_eq!(history.len(), 3);
    assert!(history.iter().filter(|c| &*c.offer == "card").count() <= 1, "group cap of 1");
}

#[test]
fn a_budget_is_spent_once_across_servers_and_never_again_after_a_restart() {
    let redis = Redis::start();
    let (a, b) = (engine(&redis, 1), engine(&redis, 2));
    let shown =
        (0..40).filter(|i| !decide(if i % 2 == 0 { &a } else { &b }, "banner", None).unwrap().offers.is_empty());
    assert_eq!(shown.count(), 25);
    drop((a, b));
    let restarted = engine(&redis, 3);
    assert!(decide(&restarted, "banner", None).unwrap().offers.is_empty(), "a new server grants nothing again");
}

#[test]
fn an_outcome_is_settled_once_wherever_it_arrives_and_every_server_learns_it() {
    let redis = Redis::start();
    let (a, b) = (engine(&redis, 1), engine(&redis, 2));
    let d = decide(&a, "banner", Some("p1")).unwrap();
    assert_eq!(d.offers[0].offer_id, "loan");
    b.report_outcome(d.decision_id, None, 1.0, false).unwrap();
    assert!(matches!(a.report_outcome(d.decision_id, None, 1.0, false), Err(Error::AlreadyReported { .. })));
    let out_of_range = b.report_outcome(decide(&b, "banner", None).unwrap().decision_id, None, 2.0, false);
    let local = Engine::new(catalog(), 1).simulated();
    let local_id = decide(&local, "banner", None).unwrap().decision_id;
    let expected = local.report_outcome(local_id, None, 2.0, false).unwrap_err().to_string();
    assert_eq!(out_of_range.unwrap_err().to_string(), expected, "the same refusal as the embedded engine");
    for e in [&a, &b] {
        e.sync_shared().unwrap();
        let state = e.policy_state("banner").unwrap();
        assert_eq!((state[0].alpha, state[0].beta), (2.0, 1.0), "learned once, by both");
    }
    // The conversion started the cooldown for p1, seen by the other server.
    assert!(b.stored_history("p1").unwrap().iter().any(|c| c.kind == ContactKind::Converted));
    // A server started now begins from the snapshot and the stream: it knows the outcome too.
    a.close_shared().unwrap();
    let later = engine(&redis, 3);
    assert_eq!(later.policy_state("banner").unwrap()[0].alpha, 2.0);
}

#[test]
fn a_release_gives_back_contacts_and_budget_and_takes_no_outcome() {
    let redis = Redis::start();
    let (a, b) = (engine(&redis, 1), engine(&redis, 2));
    let d = decide(&a, "hero", Some("p1")).unwrap();
    assert_eq!(a.stored_history("p1").unwrap().len(), 1);
    b.release(d.decision_id).unwrap();
    assert!(a.stored_history("p1").unwrap().is_empty());
    assert!(matches!(a.report_outcome(d.decision_id, None, 1.0, false), Err(Error::AlreadySettled(_))));
    let spent: Vec<u64> = (0..25).map(|_| decide(&a, "banner", None).unwrap().decision_id).collect();
    assert!(decide(&b, "banner", None).unwrap().offers.is_empty());
    b.release(spent[0]).unwrap();
    assert_eq!(decide(&b, "banner", None).unwrap().offers.len(), 1, "the unit came back");
}

#[test]
fn a_decision_that_shows_nothing_leaves_nothing_and_erasure_leaves_no_key() {
    let redis = Redis::start();
    let a = engine(&redis, 1);
    let before = redis.keys();
    let exclude = ["card", "news"];
    let placements = ["hero"];
    let request =
        DecideRequest { profile_id: Some("p9"), exclude: &exclude, ..DecideRequest::new(&placements, &[30.0], NOW) };
    assert!(a.decide(&request).unwrap().offers.is_empty());
    assert_eq!(redis.keys(), before);
    let d = decide(&a, "hero", Some("p9")).unwrap();
    assert!(redis.keys().iter().any(|k| k.contains("{p9}")));
    assert!(a.delete_profile("p9").unwrap());
    assert!(!redis.keys().iter().any(|k| k.contains("{p9}") || k.ends_with(&format!(":d:{}", d.decision_id))));
}

#[test]
fn without_redis_decisions_go_on_and_what_they_reserved_is_replayed() {
    let mut redis = Redis::start();
    let a = engine(&redis, 1);
    redis.stop();
    let d = decide(&a, "hero", Some("p1")).unwrap();
    assert_eq!(d.offers.len(), 1);
    assert_eq!(d.offers[0].offer_id, "news", "the fail-closed group cap leaves `card` out");
    assert!(decide(&a, "banner", None).unwrap().offers.is_empty(), "budgeted offers wait for Redis");
    assert!(matches!(a.report_outcome(d.decision_id, None, 1.0, false), Err(Error::Storage(_))));
    let health = a.store_health().unwrap();
    assert!(!health.healthy);
    assert_eq!(health.buffered, 1);
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.store_health().unwrap().healthy {
        assert!(Instant::now() < deadline, "the store did not recover");
        let _ = a.sync_shared();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.store_health().unwrap().buffered, 0);
    assert_eq!(a.stored_history("p1").unwrap().len(), 1, "the contact was replayed");
    a.report_outcome(d.decision_id, None, 1.0, false).unwrap();
}

#[test]
fn a_pipelined_write_applies_every_row_of_one_profile_in_order() {
    let redis = Redis::start();
    let (a, b) = (engine(&redis, 1), engine(&redis, 2));
    let row = |age: f64, consents: &[&str]| ProfileWrite {
        id: "p1".to_owned(),
        features: vec![("age".to_owned(), crate::store::Value::Number(age))],
        consents: consents.iter().map(|c| (*c).to_owned()).collect(),
        revoked_consents: Vec::new(),
        purchases: Vec::new(),
    };
    let rows: Vec<ProfileWrite> =
        (0..3000).map(|i| row(f64::from(i % 90), if i == 10 { &["app"] } else { &[] })).collect();
    let report = std::thread::scope(|s| {
        let other = s.spawn(|| b.upsert_profiles(&[row(77.0, &["web"])], Some(NOW)).unwrap());
        let report = a.upsert_profiles(&rows, Some(NOW)).unwrap();
        assert_eq!(other.join().unwrap().accepted, 1);
        report
    });
    assert_eq!(report.accepted, 3000);
    let view = b.profile("p1", Some(NOW)).unwrap().unwrap();
    assert!(view.consents.contains(&"app".to_owned()) && view.consents.contains(&"web".to_owned()), "{view:?}");
}

#[test]
fn a_batch_takes_its_budget_units_from_the_shared_budget() {
    let redis = Redis::start();
    let (a, b) = (engine(&redis, 1), engine(&redis, 2));
    let shown = (0..20).filter(|_| !decide(&a, "banner", None).unwrap().offers.is_empty()).count();
    assert_eq!(shown, 20);
    let features = vec![30.0f32; 30];
    let batch =
        b.decide_batch(&BatchRequest { placement: "banner", features: &features, now: NOW, ..Default::default() });
    assert_eq!(batch.unwrap().offers.iter().filter(|&&o| o >= 0).count(), 5, "the 5 units left of 25");
    assert!(decide(&a, "banner", None).unwrap().offers.is_empty());
    assert_eq!(a.budget_usage("loan", NOW).unwrap(), Some((25, 25)));
}

#[test]
fn without_redis_an_open_cap_counts_what_this_server_showed_meanwhile() {
    let mut redis = Redis::start();
    let a = engine(&redis, 1);
    redis.stop();
    let shown: usize = (0..6).map(|_| decide(&a, "hero", Some("p1")).unwrap().offers.len()).sum();
    assert_eq!(shown, 3, "the web cap of 3 a day holds on this server's own contacts");
}

#[test]
fn every_key_a_decision_leaves_expires() {
    let redis = Redis::start();
    let a = engine(&redis, 1);
    let shown = decide(&a, "hero", Some("p1")).unwrap();
    a.release(shown.decision_id).unwrap();
    let settled = decide(&a, "banner", Some("p2")).unwrap();
    a.report_outcome(settled.decision_id, None, 1.0, false).unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    for key in redis.keys() {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut c).unwrap();
        let bounded = key.ends_with(":learn") || key.ends_with(":policy") || key.contains(":layout:");
        assert!(ttl > 0 || bounded, "{key} has no lifetime");
    }
}
