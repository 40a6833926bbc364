use rand::SeedableRng;
use rand_distr::{Beta, Distribution, Normal};

use super::*;

fn beta(alpha: f64, beta: f64, scale: f64) -> ScoreLaw {
    ScoreLaw::Beta { alpha, beta, scale }
}

/// How often each arm draws the highest score, over `draws` independent draws of every law.
fn choice_frequencies(laws: &[ScoreLaw], draws: usize, seed: u64) -> Vec<f64> {
    enum Sampler {
        Beta(Beta<f64>, f64),
        Normal(Normal<f64>),
    }
    let samplers: Vec<Sampler> = laws
        .iter()
        .map(|law| match *law {
            ScoreLaw::Beta { alpha, beta, scale } => Sampler::Beta(Beta::new(alpha, beta).unwrap(), scale),
            ScoreLaw::Normal { mean, std_dev } => Sampler::Normal(Normal::new(mean, std_dev).unwrap()),
        })
        .collect();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut wins = vec![0usize; laws.len()];
    for _ in 0..draws {
        let mut best = (f64::NEG_INFINITY, 0);
        for (i, s) in samplers.iter().enumerate() {
            let x = match s {
                Sampler::Beta(b, scale) => b.sample(&mut rng) * scale,
                Sampler::Normal(n) => n.sample(&mut rng),
            };
            if x > best.0 {
                best = (x, i);
            }
        }
        wins[best.1] += 1;
    }
    wins.iter().map(|&w| w as f64 / draws as f64).collect()
}

/// Within 0.005 absolute or 5% relative of the observed frequency (the bound), with
/// room for the sampling noise of `draws` draws.
fn assert_close(laws: &[ScoreLaw], draws: usize, what: &str) {
    let exact = win_probabilities(laws);
    let observed = choice_frequencies(laws, draws, 11);
    assert!((exact.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{what}: sums to {}", exact.iter().sum::<f64>());
    for (i, (&p, &f)) in exact.iter().zip(&observed).enumerate() {
        let noise = 4.0 * (f.max(p) * (1.0 - f.min(p)) / draws as f64).sqrt();
        let bound = (0.005f64).max(0.05 * f) + noise;
        assert!((p - f).abs() <= bound, "{what}: arm {i} exact {p:.5}, observed {f:.5} (bound {bound:.5})");
    }
}

#[test]
fn identical_arms_split_evenly() {
    for n in [2usize, 5, 40, 500] {
        let p = win_probabilities(&vec![beta(1.0, 1.0, 1.0); n]);
        assert!(p.iter().all(|&x| (x - 1.0 / n as f64).abs() < 1e-12), "n={n}: {:?}", &p[..2]);
    }
}

#[test]
fn two_normals_match_the_closed_form() {
    // P(A > B) = Phi((ma - mb) / sqrt(sa^2 + sb^2)); here with sa/sb = 20.
    let (a, b) = (ScoreLaw::Normal { mean: 0.12, std_dev: 0.02 }, ScoreLaw::Normal { mean: 0.1, std_dev: 0.001 });
    let z: f64 = 0.02 / (0.02f64.powi(2) + 0.001f64.powi(2)).sqrt();
    let exact = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
    let p = win_probabilities(&[a, b]);
    assert!((p[0] - exact).abs() < 1e-4, "{} vs {exact}", p[0]);
}

#[test]
fn low_rates_and_skewed_pulls_match_the_sampler() {
    let cases: Vec<(&str, Vec<ScoreLaw>)> = vec![
        // Rates near 0.5% with a few hundred to a few thousand pulls (the OBD regime).
        (
            "low rates",
            vec![beta(2.0, 400.0, 1.0), beta(6.0, 1200.0, 1.0), beta(12.0, 2100.0, 1.0), beta(1.0, 90.0, 1.0)],
        ),
        // Near 0.1%, one arm with 100x the pulls of the others.
        (
            "skewed pulls",
            vec![beta(101.0, 100_000.0, 1.0), beta(1.0, 800.0, 1.0), beta(2.0, 900.0, 1.0), beta(1.0, 1.0, 0.01)],
        ),
        // Values and weights scale the draws; an untried arm beside learned ones.
        ("scaled", vec![beta(30.0, 970.0, 10.0), beta(60.0, 940.0, 5.0), beta(1.0, 1.0, 0.5), beta(3.0, 5.0, 0.2)]),
        // A Jeffreys prior: infinite densities at both ends of the support.
        ("singular", vec![beta(0.5, 0.5, 1.0), beta(0.5, 20.5, 1.0), beta(3.5, 0.5, 0.9)]),
        (
            "gaussian",
            vec![
                ScoreLaw::Normal { mean: 1.0, std_dev: 0.5 },
                ScoreLaw::Normal { mean: 1.4, std_dev: 0.05 },
                ScoreLaw::Normal { mean: 0.2, std_dev: 2.0 },
            ],
        ),
    ];
    for (what, laws) in &cases {
        assert_close(laws, 200_000, what);
    }
}

#[test]
fn many_arms_match_the_sampler() {
    // 60 arms at rates 0.2-2% with 50 to 30,000 pulls each.
    let laws: Vec<ScoreLaw> = (0..60)
        .map(|i| {
            let pulls = 50.0 * 1.115f64.powi(i);
            let rate = 0.002 + 0.0003 * f64::from((i * 37) % 61);
            beta(1.0 + rate * pulls, 1.0 + (1.0 - rate) * pulls, 1.0)
        })
        .collect();
    assert_close(&laws, 100_000, "60 arms");
}

#[test]
fn fixed_scores_win_by_order_and_value() {
    let fixed = |v| ScoreLaw::Normal { mean: v, std_dev: 0.0 };
    let p = win_probabilities(&[fixed(0.0), beta(1.0, 1.0, 0.0), fixed(0.0)]);
    assert_eq!(p, [1.0, 0.0, 0.0], "equal fixed scores: the first wins, as the picker breaks ties");
    // A fixed 0.5 against a uniform draw on [0, 1]: each wins half the time.
    let p = win_probabilities(&[fixed(0.5), beta(1.0, 1.0, 1.0)]);
    assert!((p[0] - 0.5).abs() < 1e-3 && (p[1] - 0.5).abs() < 1e-3, "{p:?}");
}

#[test]
fn the_table_gives_every_subset_what_integrating_it_alone_gives() {
    let mut laws: Vec<ScoreLaw> = (0..40)
        .map(|i| {
            let pulls = 100.0 * 1.2f64.powi(i);
            let rate = 0.003 + 0.0002 * f64::from((i * 17) % 23);
            beta(1.0 + rate * pulls, 1.0 + (1.0 - rate) * pulls, 1.0 + f64::from(i % 3))
        })
        .collect();
    let mut table = WinTable::new(&laws);
    let check = |table: &WinTable, laws: &[ScoreLaw], what: &str| {
        for subset in [(0..40).collect::<Vec<usize>>(), (0..40).step_by(3).collect(), vec![5, 17, 33], vec![2, 39]] {
            let alone = win_probabilities(&subset.iter().map(|&i| laws[i]).collect::<Vec<_>>());
            for (pick, &p) in alone.iter().enumerate() {
                let q = table.win_probability(&subset, pick);
                assert!((p - q).abs() < 1e-3, "{what}: arm {} of {subset:?}: table {q}, alone {p}", subset[pick]);
            }
        }
    };
    check(&table, &laws, "as laid out");
    // An arm learns a little: its CDF is redone on the same grid.
    if let ScoreLaw::Beta { alpha, beta: b, scale } = laws[17] {
        laws[17] = beta(alpha + 1.0, b + 30.0, scale);
    }
    assert!(table.update(17, laws[17]), "a small step keeps the grid");
    check(&table, &laws, "after an update");
    // A big step does not fit the grid laid out for the old law.
    assert!(!table.update(3, beta(500.0, 500.0, 1.0)));
}

#[test]
fn the_table_handles_fixed_scores_like_integrating_alone() {
    let fixed = |v| ScoreLaw::Normal { mean: v, std_dev: 0.0 };
    let laws = [beta(1.0, 1.0, 1.0), fixed(0.5), fixed(0.0), beta(2.0, 30.0, 0.0), beta(3.0, 9.0, 2.0)];
    let table = WinTable::new(&laws);
    for subset in [vec![0, 1], vec![1, 2, 3], vec![0, 1, 4], vec![2, 3], vec![0, 1, 2, 3, 4]] {
        let alone = win_probabilities(&subset.iter().map(|&i| laws[i]).collect::<Vec<_>>());
        for (pick, &p) in alone.iter().enumerate() {
            let q = table.win_probability(&subset, pick);
            assert!((p - q).abs() < 2e-3, "arm {} of {subset:?}: table {q}, alone {p}", subset[pick]);
        }
    }
}

#[test]
fn a_table_that_learns_for_long_keeps_its_sums() {
    // Hundreds of small updates go into the sums over every arm incrementally (and afresh
    // every `RESUM_AFTER`); a pick among all arms but a few reads those sums.
    let mut laws: Vec<ScoreLaw> = (0..30).map(|i| beta(5.0 + f64::from(i), 600.0, 1.0 + f64::from(i % 4))).collect();
    let mut table = WinTable::new(&laws);
    for step in 0..(RESUM_AFTER + 90) {
        let arm = (step * 7) % laws.len();
        // Back and forth between two nearby posteriors, so every step is an update.
        if let ScoreLaw::Beta { alpha, beta: b, scale } = laws[arm] {
            laws[arm] = beta(alpha, if (step / laws.len()).is_multiple_of(2) { b + 2.0 } else { b - 2.0 }, scale);
        }
        assert!(table.update(arm, laws[arm]), "step {step}: a small step keeps the grid");
    }
    assert!(table.updates > 0, "the last updates went into the sums incrementally");
    let most: Vec<usize> = (0..30).filter(|i| i % 10 != 3).collect();
    let learned: Vec<f64> = (0..most.len()).map(|pick| table.win_probability(&most, pick)).collect();
    table.sum_all();
    let fresh = WinTable::new(&laws);
    for (pick, &q) in learned.iter().enumerate() {
        let resummed = table.win_probability(&most, pick);
        assert!(
            (q - resummed).abs() <= 1e-12 * q.max(1e-300),
            "arm {}: {q} learned, {resummed} summed afresh",
            most[pick]
        );
        let laid_out = fresh.win_probability(&most, pick);
        assert!((q - laid_out).abs() < 1e-5, "arm {}: {q} learned, {laid_out} on a new grid", most[pick]);
    }
    assert!(learned.iter().filter(|&&p| p > 0.01).count() >= 3, "several arms are in contention: {learned:?}");
}

#[test]
fn closed_form_cdfs_agree_with_integrating_the_density() {
    for law in [beta(1.0, 1.0, 30.0), beta(1.0, 400.0, 1.0), beta(7.0, 1.0, 2.0), beta(1.0, 12.0, -3.0)] {
        let closed = closed_cdf(law).expect("alpha or beta is 1");
        let d = Density::new(law, 1);
        let grid: Vec<f64> = (0..=400).map(|k| d.lo + (d.hi - d.lo) * f64::from(k) / 400.0).collect();
        let (mut integrated, mut previous) = (0.0, d.lo);
        for &x in &grid[1..] {
            integrated += d.mass(previous, x);
            previous = x;
            let exact = closed(x) - closed(d.lo);
            assert!((integrated - exact).abs() < 1e-6, "{law:?} at {x}: integrated {integrated}, closed {exact}");
        }
    }
    // An infinite density at 0: sqrt(r), where integrating would take only a leading term.
    let root = closed_cdf(beta(0.5, 1.0, 1.0)).expect("beta is 1");
    assert!((root(0.005) - 0.005f64.sqrt()).abs() < 1e-15);
    assert!(closed_cdf(beta(2.0, 3.0, 1.0)).is_none());
}

#[test]
fn one_normal_pick_matches_integrating_every_arm() {
    let normal = |mean, std_dev| ScoreLaw::Normal { mean, std_dev };
    let cases: Vec<(&str, Vec<ScoreLaw>)> = vec![
        ("close", vec![normal(1.0, 0.2), normal(1.1, 0.25), normal(0.9, 0.15), normal(0.2, 0.1)]),
        ("narrow competitors", vec![normal(1.0, 0.5), normal(1.4, 0.01), normal(1.2, 0.02), normal(-3.0, 0.3)]),
        ("one far above", vec![normal(0.0, 0.1), normal(5.0, 0.1), normal(0.1, 1.0)]),
        ("100 arms", (0..100).map(|i| normal(0.02 * f64::from(i % 17), 0.05 + 0.003 * f64::from(i % 29))).collect()),
    ];
    let phi = |x: f64, m: f64, s: f64| 0.5 * libm::erfc((m - x) / (s * std::f64::consts::SQRT_2));
    for (what, laws) in &cases {
        let spread: Vec<(f64, f64)> = laws.iter().map(|l| (l.mean(), l.std_dev())).collect();
        let mut total = 0.0;
        for (pick, &(m, s)) in spread.iter().enumerate() {
            let q = normal_win_probability(laws, pick).expect("normal laws");
            total += q;
            if pick % 9 != 0 && spread.len() > 10 {
                continue; // the reference below is slow: a sample of a large case's picks
            }
            // The reference: the midpoint rule on 20,000 steps over the pick's +-9 sd.
            let n = 20_000;
            let h = 18.0 / f64::from(n);
            let reference: f64 = (0..n)
                .map(|k| {
                    let z = -9.0 + h * (f64::from(k) + 0.5);
                    let others: f64 = (0..spread.len())
                        .filter(|&j| j != pick)
                        .map(|j| phi(m + s * z, spread[j].0, spread[j].1))
                        .product();
                    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() * others * h
                })
                .sum();
            assert!((reference - q).abs() < 5e-6, "{what}: arm {pick}: {q}, reference {reference}");
        }
        assert!((total - 1.0).abs() < 5e-5, "{what}: the picks' probabilities sum to {total}");
    }
    assert_close(&cases[1].1, 200_000, "narrow competitors, against the sampler");
    assert!(normal_win_probability(&[normal(1.0, 0.0), normal(0.0, 1.0)], 0).is_none(), "a fixed score");
}
