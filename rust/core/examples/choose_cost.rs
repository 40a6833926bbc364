//! Rough cost split of one arbitration (100 arms): sampling vs. propensity.
//! `cargo run --release -p decision-engine-core --example choose_cost`
use std::time::Instant;

use decision_engine_core::arbitrate::{ArmView, Workspace, choose};
use decision_engine_core::policy::{ArmScore, ThompsonArm, win_probability};
use rand::SeedableRng;

fn main() {
    let n = 100;
    for (label, arms) in [
        ("prior", (0..n).map(|_| ThompsonArm::new(1.0, 1.0)).collect::<Vec<_>>()),
        ("learned", (0..n).map(|i| ThompsonArm::new(1.0 + 20.0 + i as f64, 1.0 + 1000.0)).collect()),
    ] {
        let scale: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
        let group = vec![None; n];
        let view = ArmView { arms: &arms, scale: &scale, group: &group };
        let eligible: Vec<usize> = (0..n).step_by(2).collect();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let mut ws = Workspace::default();
        let reps = 20_000;
        let t = Instant::now();
        let mut sink = 0.0;
        for _ in 0..reps {
            for &i in &eligible {
                sink += arms[i].sample(&mut rng);
            }
        }
        let sample_ns = t.elapsed().as_nanos() as f64 / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            choose(&view, &eligible, 1, &mut rng, &mut ws);
        }
        let choose_ns = t.elapsed().as_nanos() as f64 / reps as f64;
        let scores: Vec<ArmScore> = eligible.iter().map(|&i| arms[i].score(scale[i])).collect();
        let t = Instant::now();
        for _ in 0..reps {
            sink += win_probability(scores[0], &scores[1..]);
        }
        let prop_ns = t.elapsed().as_nanos() as f64 / reps as f64;
        println!(
            "{label}: sample 50 arms {sample_ns:.0} ns, choose {choose_ns:.0} ns, one propensity {prop_ns:.0} ns ({sink:.1})"
        );
    }
}
