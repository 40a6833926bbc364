//! The policies as a whole: value-aware scoring for every type, and contextual models on
//! the profile as a model should see it.

use rand::SeedableRng;

use super::*;

fn config(json: &str) -> PolicyConfig {
    serde_json::from_str(json).unwrap()
}

#[test]
fn every_policy_scores_expected_reward_times_value_and_weight() {
    // Arm 0 responds 10% of the time and is worth 10; arm 1 responds 50% and is worth 1:
    // expected value 1.0 against 0.5, so every policy must prefer arm 0 once it has learned.
    for kind in POLICY_TYPES {
        let mut model = Model::new(config(&format!(r#"{{"type": "{kind}"}}"#)), 2, 1);
        for i in 0..2_000 {
            model.observe(0, &[1.0], if i % 10 == 0 { 1.0 } else { 0.0 });
            model.observe(1, &[1.0], if i % 2 == 0 { 1.0 } else { 0.0 });
        }
        model.settle();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let (mut scores, mut laws) = (Vec::new(), Vec::new());
        let mut first = 0;
        for _ in 0..1_000 {
            let picker = model.score(&[0, 1], &[10.0, 1.0], &[1.0], &mut rng, &mut scores, &mut laws);
            let mut pmf = Vec::new();
            crate::arbitrate::point_pmf(scores.iter().copied(), picker, &mut pmf);
            first += usize::from(pmf[0] > pmf[1] || (picker == Picker::Sampled && scores[0] > scores[1]));
        }
        assert!(first >= 900, "{kind}: arm 0 (value 1.0 per decision) ranked first {first} of 1000 times");
    }
}

/// A lin_ucb model trained on `rows` with the numeric column mapped by `f`.
fn trained(kind: &str, rows: &[(usize, [f32; 2], f64)], f: impl Fn(f32) -> f32) -> Model {
    let spec = ContextSpec { columns: vec![ColumnKind::Numeric, ColumnKind::Category(3)], interactions: vec![] };
    let mut model = Model::from_arms_with(config(&format!(r#"{{"type": "{kind}"}}"#)), vec![Arm::default(); 2], spec);
    for &(arm, [amount, segment], reward) in rows {
        model.observe(arm, &[f(amount), segment], reward);
    }
    model
}

fn rows() -> Vec<(usize, [f32; 2], f64)> {
    (0..400)
        .map(|i| {
            let (amount, segment) = ((i * 37 % 101) as f32 / 101.0, (i % 3) as f32);
            // Not monotone in the segment's code: only one-hot columns can fit it.
            let reward = [0.2, 0.9, 0.4][segment as usize] + 0.3 * f64::from(amount);
            (i % 2, [amount, segment], reward)
        })
        .collect()
}

#[test]
fn a_numeric_feature_counts_the_same_in_any_unit() {
    // Standardized coordinates: the same data in cents or in thousands gives the same model.
    for kind in ["lin_ucb", "lin_thompson"] {
        let (plain, scaled) = (trained(kind, &rows(), |a| a), trained(kind, &rows(), |a| 5_000.0 + 1_000.0 * a));
        let (mut u, mut v, mut lu, mut lv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for amount in [0.0f32, 0.3, 0.9] {
            for segment in [0.0f32, 1.0, 2.0] {
                plain.encode(&[amount, segment], &mut u);
                scaled.encode(&[5_000.0 + 1_000.0 * amount, segment], &mut v);
                lift(&u, &mut lu);
                lift(&v, &mut lv);
                for arm in 0..2 {
                    let (a, b) = (plain.linear_moments(arm, &u, &lu), scaled.linear_moments(arm, &v, &lv));
                    assert!((a.0 - b.0).abs() < 2e-3, "{kind}: mean {} vs {}", a.0, b.0);
                    assert!((a.1 - b.1).abs() < 2e-3 * (1.0 + a.1), "{kind}: width {} vs {}", a.1, b.1);
                }
            }
        }
    }
}

#[test]
fn a_category_is_learned_value_by_value() {
    let model = trained("lin_ucb", &rows(), |a| a);
    for (segment, expected) in [0.2, 0.9, 0.4].iter().enumerate() {
        let mean = model.mean(0, &[0.5, segment as f32]);
        assert!((mean - (expected + 0.15)).abs() < 0.05, "segment {segment}: learned {mean}, true {}", expected + 0.15);
    }
}

#[test]
fn declared_interactions_fit_a_product() {
    // reward = amount within segment 1 only: a product of the number and one category value.
    let spec = |interactions| ContextSpec { columns: vec![ColumnKind::Numeric, ColumnKind::Category(2)], interactions };
    let data: Vec<([f32; 2], f64)> = (0..600)
        .map(|i| {
            let (amount, segment) = ((i * 53 % 97) as f32 / 97.0, (i % 2) as f32);
            ([amount, segment], if segment == 1.0 { f64::from(amount) } else { 0.0 })
        })
        .collect();
    let error = |interactions| {
        let mut model =
            Model::from_arms_with(config(r#"{"type": "lin_ucb"}"#), vec![Arm::default()], spec(interactions));
        data.iter().for_each(|(x, r)| model.observe(0, x, *r));
        data.iter().map(|(x, r)| (model.mean(0, x) - r).abs()).fold(0.0, f64::max)
    };
    let (without, with) = (error(vec![]), error(vec![(0, 1)]));
    assert!(with < 0.02 && without > 0.2, "largest error without the product {without}, with it {with}");
}

/// A shared lin_ucb over one category column and offers with a `color` (red, blue) as
/// one-hot attributes after the bias: `[1, red, blue]`.
fn shared_model(offers: Vec<Vec<f32>>) -> Model {
    let spec = ContextSpec { columns: vec![ColumnKind::Category(2)], interactions: vec![] };
    let n = offers.len();
    Model::from_arms_with(config(r#"{"type": "lin_ucb", "shared": true}"#), vec![Arm::default(); n], spec)
        .with_shared(offers, None)
}

#[test]
fn a_shared_model_starts_a_new_offer_from_offers_like_it() {
    let (red, blue) = (vec![1.0, 1.0, 0.0], vec![1.0, 0.0, 1.0]);
    // Offers 0 (red) and 1 (blue) are shown; offer 2 (red) never is.
    let mut model = shared_model(vec![red.clone(), blue, red]);
    // Segment 0 likes red (0.8 against 0.2), segment 1 likes blue.
    let truth = |segment: usize, offer: usize| if (segment == 0) == (offer != 1) { 0.8 } else { 0.2 };
    for i in 0..800 {
        let (segment, offer) = (i % 2, (i / 2) % 2);
        model.observe(offer, &[segment as f32], truth(segment, offer));
    }
    for segment in 0..2 {
        let new = model.mean(2, &[segment as f32]);
        assert!((new - truth(segment, 2)).abs() < 0.05, "segment {segment}: the unseen red offer scores {new}");
    }
    assert_eq!(model.arms()[2].counts.n, 0.0, "offer 2 learned nothing of its own");
}

#[test]
fn shared_moments_are_the_pair_features_quadratic_form() {
    let offers = vec![vec![1.0, 1.0, 0.0], vec![1.0, 0.0, 1.0], vec![1.0, 0.5, 0.5]];
    let mut model = shared_model(offers.clone());
    for i in 0..300 {
        model.observe(i % 3, &[(i % 2) as f32], f64::from(i % 5 == 0));
    }
    let state = model.shared_state().unwrap().clone();
    let mut prepared = Vec::new();
    for segment in 0..2 {
        let mut u = Vec::new();
        model.encode(&[segment as f32], &mut u);
        model.prepare(&u, &mut prepared);
        for (arm, o) in offers.iter().enumerate() {
            let phi = nalgebra::DVector::from_iterator(
                u.len() * 3,
                u.iter().flat_map(|&a| o.iter().map(move |&b| f64::from(a * b))),
            );
            let (mean, width) = model.linear_moments(arm, &u, &prepared);
            let exact = (state.theta().dot(&phi), phi.dot(&(state.a_inv() * &phi)).sqrt());
            assert!(
                (mean - exact.0).abs() < 1e-5 && (width - exact.1).abs() < 1e-5,
                "{:?} vs {exact:?}",
                (mean, width)
            );
        }
    }
}

#[test]
fn a_constant_column_does_not_widen_exploration() {
    // A numeric column that is always 1 (beside the bias) is left unstandardized: the widths
    // match those of the same model without it (standardized by a floored variance, the f32
    // quadratic form cancelled to a width of 0: no exploration at all).
    let spec = |n| ContextSpec { columns: vec![ColumnKind::Numeric; n], interactions: vec![] };
    let (mut with, mut without) = (
        Model::from_arms_with(config(r#"{"type": "lin_ucb"}"#), vec![Arm::default()], spec(2)),
        Model::from_arms_with(config(r#"{"type": "lin_ucb"}"#), vec![Arm::default()], spec(1)),
    );
    for i in 0..200 {
        let x = (i % 13) as f32 / 13.0;
        with.observe(0, &[x, 1.0], f64::from(x));
        without.observe(0, &[x], f64::from(x));
    }
    let (mut u, mut lifted) = (Vec::new(), Vec::new());
    with.encode(&[0.5, 1.0], &mut u);
    with.prepare(&u, &mut lifted);
    let wide = with.linear_moments(0, &u, &lifted).1;
    without.encode(&[0.5], &mut u);
    without.prepare(&u, &mut lifted);
    let narrow = without.linear_moments(0, &u, &lifted).1;
    assert!((wide - narrow).abs() < 0.01 * narrow, "width {wide} with the constant column, {narrow} without");
}
