use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::*;

fn policy(json: &str) -> PolicyConfig {
    serde_json::from_str(json).unwrap()
}

const CONTEXT_FREE: [&str; 5] = [
    r#"{"type": "thompson"}"#,
    r#"{"type": "gaussian_thompson", "prior_variance": 0.25}"#,
    r#"{"type": "ucb1", "exploration": 0.5}"#,
    r#"{"type": "epsilon_greedy", "epsilon": 0.1}"#,
    r#"{"type": "softmax", "temperature": 0.05}"#,
];
const CONTEXTUAL: [&str; 2] = [r#"{"type": "lin_ucb", "alpha": 0.5}"#, r#"{"type": "lin_thompson", "scale": 0.3}"#];

/// Bernoulli arms with these rates; returns the share of the last 1,000 pulls on the best.
fn run_context_free(json: &str, rates: &[f64], steps: usize) -> f64 {
    let mut bandit = Bandit::new(policy(json), rates.len(), 0, 11).unwrap();
    let mut env = Xoshiro256PlusPlus::seed_from_u64(5);
    let mut best = 0;
    for step in 0..steps {
        let chosen = bandit.select(&[], (1, 0), None, 1, false).unwrap().choices[0];
        let reward = f64::from(u8::from(env.random::<f64>() < rates[chosen as usize]));
        bandit.update(&[], (1, 0), &[chosen], &[reward]).unwrap();
        if step >= steps - 1000 && chosen == 2 {
            best += 1;
        }
    }
    f64::from(best) / 1000.0
}

#[test]
fn context_free_policies_converge_to_the_best_arm() {
    for json in CONTEXT_FREE {
        let share = run_context_free(json, &[0.2, 0.4, 0.7, 0.3], 4000);
        assert!(share > 0.85, "{json}: best arm got {share} of the last pulls");
    }
}

/// Each arm's reward is a linear function of a 3-feature context, and the best arm
/// depends on the context: the policy must learn the regions.
fn linear_environment(steps: usize, json: &str) -> f64 {
    let weights = [[0.8, 0.0, 0.1], [0.0, 0.8, 0.1], [0.3, 0.3, 0.2]];
    let mut bandit = Bandit::new(policy(json), 3, 3, 3).unwrap();
    let mut env = Xoshiro256PlusPlus::seed_from_u64(9);
    let mut regret = 0.0;
    for step in 0..steps {
        let x = [env.random::<f32>(), env.random::<f32>(), 1.0];
        let expected: Vec<f64> =
            weights.iter().map(|w| w.iter().zip(&x).map(|(a, &b)| a * f64::from(b)).sum()).collect();
        let chosen = bandit.select(&x, (1, 3), None, 1, false).unwrap().choices[0] as usize;
        let noise = (env.random::<f64>() - 0.5) * 0.2;
        bandit.update(&x, (1, 3), &[chosen as i64], &[expected[chosen] + noise]).unwrap();
        if step >= steps - 500 {
            regret += expected.iter().copied().fold(f64::MIN, f64::max) - expected[chosen];
        }
    }
    regret / 500.0
}

#[test]
fn contextual_policies_learn_which_arm_suits_which_context() {
    for json in CONTEXTUAL {
        let regret = linear_environment(3000, json);
        assert!(regret < 0.03, "{json}: mean regret {regret} over the last 500 decisions");
    }
}

#[test]
fn propensities_match_choice_frequencies_and_probabilities_sum_to_one() {
    for json in CONTEXT_FREE.iter().chain(&CONTEXTUAL) {
        let mut bandit = Bandit::new(policy(json), 4, 2, 1).unwrap();
        let mut env = Xoshiro256PlusPlus::seed_from_u64(2);
        // Some learning, so the distribution is not uniform.
        for _ in 0..60 {
            let x = [env.random::<f32>(), 1.0];
            let arm = env.random_range(0..4);
            let reward = f64::from(u8::from(env.random::<f64>() < 0.2 + 0.1 * arm as f64));
            bandit.update(&x, (1, 2), &[arm], &[reward]).unwrap();
        }
        let x = [0.5f32, 1.0];
        let probabilities = bandit.action_probabilities(&x, (1, 2), None).unwrap();
        let total: f64 = probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "{json}: probabilities sum to {total}");
        let draws = 20_000;
        let many: Vec<f32> = x.iter().copied().cycle().take(2 * draws).collect();
        let selection = bandit.select(&many, (draws, 2), None, 1, true).unwrap();
        for arm in 0..4 {
            let observed = selection.choices.iter().filter(|&&c| c == arm).count() as f64 / draws as f64;
            assert!(
                (observed - probabilities[arm as usize]).abs() < 0.03,
                "{json}: arm {arm} chosen {observed}, probability {}",
                probabilities[arm as usize]
            );
            if let Some(row) = selection.choices.iter().position(|&c| c == arm) {
                let claimed = selection.propensities[row];
                assert!((claimed - probabilities[arm as usize]).abs() < 0.03, "{json}: arm {arm} propensity {claimed}");
            }
        }
    }
}

#[test]
fn later_slots_never_repeat_an_arm_and_respect_eligibility() {
    for json in CONTEXT_FREE.iter().chain(&CONTEXTUAL) {
        let mut bandit = Bandit::new(policy(json), 5, 2, 4).unwrap();
        let rows = 50;
        let x: Vec<f32> = (0..rows * 2).map(|i| (i % 7) as f32 / 7.0).collect();
        let eligible: Vec<bool> = (0..rows * 5).map(|i| i % 5 != 1).collect();
        let selection = bandit.select(&x, (rows, 2), Some(&eligible), 3, true).unwrap();
        for row in selection.choices.chunks(3) {
            assert!(!row.contains(&1), "{json}: ineligible arm chosen");
            assert!(row[0] != row[1] && row[1] != row[2] && row[0] != row[2], "{json}: {row:?}");
        }
        assert!(selection.propensities.iter().all(|&p| p > 0.0 && p <= 1.0), "{json}");
    }
}

#[test]
fn batch_and_single_rows_agree() {
    // 10 features: blocks go through the matrix product, single rows through the row path.
    const D: usize = 10;
    for json in CONTEXTUAL {
        let mut bandit = Bandit::new(policy(json), 6, D, 8).unwrap();
        let mut env = Xoshiro256PlusPlus::seed_from_u64(1);
        let x: Vec<f32> = (0..400 * D).map(|_| env.random::<f32>()).collect();
        let arms: Vec<i64> = (0..400).map(|i| i % 6).collect();
        let rewards: Vec<f64> = (0..400).map(|i| f64::from(x[i * D]) * (i % 6) as f64 / 6.0).collect();
        bandit.update(&x, (400, D), &arms, &rewards).unwrap();
        let mut one_by_one = bandit.clone();
        let together = bandit.select(&x, (400, D), None, 1, true).unwrap();
        let separately: Vec<(i64, f64)> = x
            .chunks(D)
            .map(|row| {
                let s = one_by_one.select(row, (1, D), None, 1, true).unwrap();
                (s.choices[0], s.propensities[0])
            })
            .collect();
        let same = together.choices.iter().zip(&separately).filter(|(a, b)| **a == b.0).count();
        // f32 rounding may flip near-ties between the matrix product and the row path.
        assert!(same >= 396, "{json}: {same} of 400 agree");
        let close = together.propensities.iter().zip(&separately).filter(|(a, b)| (**a - b.1).abs() < 1e-3).count();
        assert!(close >= 396, "{json}: {close} of 400 propensities agree");
    }
}

#[test]
fn save_and_load_round_trip() {
    for json in CONTEXT_FREE.iter().chain(&CONTEXTUAL) {
        let mut bandit = Bandit::new(policy(json), 3, 2, 5).unwrap();
        bandit.update(&[0.5, 1.0, 0.2, 1.0], (2, 2), &[0, 2], &[1.0, 0.0]).unwrap();
        let loaded = Bandit::from_json(&bandit.to_json()).unwrap();
        // A file keeps A, not A^-1: the loaded arm inverts it afresh, equal to rounding.
        let close = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-12 * (1.0 + a.abs());
        for (l, s) in loaded.state().iter().zip(bandit.state()) {
            assert!(close(l.0, s.0) && close(l.1, s.1) && close(l.2, s.2), "{json}: {l:?} vs {s:?}");
        }
        let (mut a, mut b) = (bandit.clone(), loaded);
        let x = [0.3f32, 1.0];
        let (sa, sb) = (a.select(&x, (1, 2), None, 2, true).unwrap(), b.select(&x, (1, 2), None, 2, true).unwrap());
        assert_eq!(sa.choices, sb.choices, "{json}");
        assert!(sa.propensities.iter().zip(&sb.propensities).all(|(p, q)| close(*p, *q)), "{json}");
    }
}

#[test]
fn files_from_other_versions_or_formats_are_refused_clearly() {
    let bandit = Bandit::new(policy(r#"{"type": "ucb1"}"#), 2, 0, 0).unwrap();
    let newer = bandit.to_json().replace("\"version\":2", "\"version\":7");
    let err = Bandit::from_json(&newer).unwrap_err().to_string();
    assert!(err.contains("version 7 is not readable") && err.contains("reads versions 1 to 2"), "{err}");
    let err = Bandit::from_json(r#"{"format": "other", "version": 1}"#).unwrap_err().to_string();
    assert!(err.contains("expected a decision-engine/bandit file"), "{err}");
    let err = Bandit::from_json("[]").unwrap_err().to_string();
    assert!(err.contains("not a decision-engine/bandit file"), "{err}");
}

#[test]
fn bad_input_is_rejected_with_what_was_expected() {
    let mut bandit = Bandit::new(policy(r#"{"type": "lin_ucb"}"#), 3, 2, 0).unwrap();
    let err = bandit.select(&[1.0, 2.0, 3.0], (1, 3), None, 1, true).unwrap_err().to_string();
    assert!(err.contains("expected rows of 2 features, got 3"), "{err}");
    let err = bandit.update(&[1.0, 2.0], (1, 2), &[3], &[1.0]).unwrap_err().to_string();
    assert!(err.contains("arm 3 of row 0 is out of range: arms are 0..2"), "{err}");
    let err = bandit.update(&[f32::NAN, 2.0], (1, 2), &[0], &[1.0]).unwrap_err().to_string();
    assert!(err.contains("row 0 column 0 is not a finite number"), "{err}");
    let mut thompson = Bandit::new(policy(r#"{"type": "thompson"}"#), 2, 0, 0).unwrap();
    let err = thompson.update(&[], (1, 0), &[0], &[2.0]).unwrap_err().to_string();
    assert!(err.contains("must be a number in [0, 1]"), "{err}");
    assert!(Bandit::new(policy(r#"{"type": "lin_ucb"}"#), 3, 0, 0).is_err());
}

#[test]
fn discount_follows_a_drifting_best_arm() {
    let mut bandit = Bandit::new(policy(r#"{"type": "thompson", "discount": 0.99}"#), 2, 0, 3).unwrap();
    let mut env = Xoshiro256PlusPlus::seed_from_u64(4);
    let mut late_best = 0;
    for step in 0..6000 {
        let rates = if step < 3000 { [0.7, 0.3] } else { [0.3, 0.7] };
        let chosen = bandit.select(&[], (1, 0), None, 1, false).unwrap().choices[0];
        let reward = f64::from(u8::from(env.random::<f64>() < rates[chosen as usize]));
        bandit.update(&[], (1, 0), &[chosen], &[reward]).unwrap();
        if step >= 5000 && chosen == 1 {
            late_best += 1;
        }
    }
    assert!(late_best > 850, "after the drift arm 1 got {late_best} of 1000");
}
