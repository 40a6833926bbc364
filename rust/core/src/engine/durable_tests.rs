//! The embedded store through the engine: recovery from journal and snapshot, torn tails.

use std::path::{Path, PathBuf};

use super::*;
use crate::catalog::Catalog;
use crate::store::durable::{DurableOptions, Fsync};

const NOW: f64 = 1_000_000.0;

fn catalog() -> Catalog {
    Catalog::from_json(
        r#"{
      "features": [{"name": "x", "type": "float"}],
      "channels": ["web"],
      "placements": [
        {"id": "hero", "channel": "web", "slots": 1, "policy": {"type": "thompson"}},
        {"id": "ctx", "channel": "web", "slots": 1, "policy": {"type": "lin_ucb"}}
      ],
      "offers": [
        {"id": "a", "placements": ["hero", "ctx"], "budget": {"max": 1000, "counts": "impressions", "pacing": "none"}},
        {"id": "b", "placements": ["hero", "ctx"]}
      ],
      "contact_policy": {"caps": [{"scope": "all", "max": 1000, "window": 86400}]}
    }"#,
    )
    .unwrap()
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("durable-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(dir: &Path, snapshot_every: u64) -> (Engine, crate::store::durable::RecoveryReport) {
    let options = DurableOptions { dir: dir.to_path_buf(), fsync: Fsync::Never, snapshot_every };
    let (engine, report) = Engine::open(catalog(), 7, 1000, options).unwrap();
    (engine.simulated(), report)
}

/// Decides for `profile` in both placements and reports a reward for every other decision;
/// returns the ids left pending.
fn traffic(engine: &Engine, rounds: usize) -> Vec<u64> {
    let mut pending = Vec::new();
    for i in 0..rounds {
        for placement in ["hero", "ctx"] {
            let x = [(i % 5) as f32];
            let placements = [placement];
            let request =
                DecideRequest { profile_id: Some("p1"), ..DecideRequest::new(&placements, &x, NOW + i as f64) };
            let d = engine.decide(&request).unwrap();
            if i % 2 == 0 {
                engine.report_outcome(d.decision_id, None, (i % 3 == 0) as u8 as f64, false).unwrap();
            } else {
                pending.push(d.decision_id);
            }
        }
    }
    pending
}

fn state(engine: &Engine) -> (String, Vec<ContactEvent>, Option<(u64, u64)>, usize) {
    (
        engine.save_policy_state(),
        engine.contact_history("p1"),
        engine.budget_usage("a", NOW).unwrap(),
        engine.pending_decisions(),
    )
}

#[test]
fn recovery_restores_everything_from_journal_and_snapshots() {
    for snapshot_every in [u64::MAX, 7] {
        let dir = dir(&format!("all-{snapshot_every}"));
        let (engine, report) = open(&dir, snapshot_every);
        assert_eq!(report.replayed, 0);
        let pending = traffic(&engine, 40);
        let before = state(&engine);
        drop(engine);
        let (engine, report) = open(&dir, snapshot_every);
        assert_eq!(report.snapshot_loaded, snapshot_every == 7, "{report:?}");
        assert_eq!(state(&engine), before, "snapshot every {snapshot_every}");
        // Decisions made before the restart still take outcomes, and ids keep increasing.
        engine.report_outcome(pending[0], None, 1.0, false).unwrap();
        let request = DecideRequest::new(&["hero"], &[1.0], NOW);
        assert!(engine.decide(&request).unwrap().decision_id > *pending.last().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_torn_last_record_is_skipped_with_a_warning() {
    let dir = dir("torn");
    let (engine, _) = open(&dir, u64::MAX);
    traffic(&engine, 10);
    let before = state(&engine);
    drop(engine);
    let journal = crate::store::durable::journal_path(&dir, 0);
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&journal, bytes).unwrap();
    let (engine, report) = open(&dir, u64::MAX);
    assert_eq!(report.discarded_bytes, 11);
    assert!(report.warning.as_deref().unwrap().contains("torn record"), "{report:?}");
    assert_eq!(state(&engine), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pending_decisions_expire_after_the_attribution_window() {
    let mut engine = Engine::with_max_pending(catalog(), 1, 1000).simulated();
    engine.set_attribution_window(100.0);
    let old = engine.decide(&DecideRequest::new(&["hero"], &[1.0], NOW)).unwrap();
    engine.decide(&DecideRequest::new(&["hero"], &[1.0], NOW + 101.0)).unwrap();
    let err = engine.report_outcome(old.decision_id, None, 1.0, false).unwrap_err();
    assert!(matches!(err, Error::UnknownDecision(_)), "{err}");
}
