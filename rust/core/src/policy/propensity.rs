//! The probability that Thompson sampling picks a given arm.
//!
//! There is no closed form for P(arm i has the largest sampled score). We approximate each
//! arm's score (sampled rate x value x weight) by a Gaussian with the posterior's mean and
//! standard deviation, and integrate P(i is max) = E_x~S_i[ prod_j P(S_j < x) ] with 6-point
//! Gauss-Hermite quadrature. Competitors that are almost surely below every quadrature point
//! are dropped first, so a learned posterior with a few contenders costs a few dozen normal
//! CDF evaluations.

use std::sync::LazyLock;

/// Gaussian summary of one arm's sampled score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmScore {
    pub mean: f64,
    pub std_dev: f64,
}

/// Physicists' Gauss-Hermite nodes and weights, n = 6 (positive half; symmetric).
const NODES: [f64; 3] = [0.436_077_411_927_616_5, 1.335_849_074_013_697, 2.350_604_973_674_492];
const WEIGHTS: [f64; 3] = [0.724_629_595_224_392_5, 0.157_067_320_322_856_6, 0.004_530_009_905_508_846];

/// Floor of a reported propensity, so importance weights stay finite.
pub const MIN_PROPENSITY: f64 = 1e-6;

/// Beyond this many standard deviations a normal CDF is taken as exactly 0 or 1.
const TAIL: f64 = 6.0;

/// Standard normal CDF, Abramowitz & Stegun 26.2.17 (absolute error < 7.5e-8).
fn normal_cdf_formula(z: f64) -> f64 {
    const P: f64 = 0.231_641_9;
    const B: [f64; 5] = [0.319_381_530, -0.356_563_782, 1.781_477_937, -1.821_255_978, 1.330_274_429];
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    let t = 1.0 / (1.0 + P * z.abs());
    let poly = t * (B[0] + t * (B[1] + t * (B[2] + t * (B[3] + t * B[4]))));
    let tail = INV_SQRT_2PI * (-0.5 * z * z).exp() * poly;
    if z >= 0.0 { 1.0 - tail } else { tail }
}

/// Table of the CDF over [-TAIL, TAIL], small enough to stay in L1: the inner loop of every
/// propensity interpolates in it instead of calling `exp` (interpolation error below 5e-6).
const TABLE_STEPS: usize = 1024;
const STEP: f64 = 2.0 * TAIL / TABLE_STEPS as f64;
static CDF_TABLE: LazyLock<Vec<f32>> =
    LazyLock::new(|| (0..=TABLE_STEPS).map(|i| normal_cdf_formula(-TAIL + i as f64 * STEP) as f32).collect());

/// Standard normal CDF for `-TAIL <= z <= TAIL`, from `table` (= `CDF_TABLE`).
fn normal_cdf(table: &[f32], z: f64) -> f64 {
    let position = (z + TAIL) * (1.0 / STEP);
    // Through i64: a saturating float-to-unsigned conversion costs several instructions more.
    let i = (position as i64 as usize).min(TABLE_STEPS - 1);
    let (low, high) = (f64::from(table[i]), f64::from(table[i + 1]));
    low + (high - low) * (position - i as f64)
}

/// P(S_target > S_j for every competitor j), scores independent Gaussians.
pub fn win_probability(target: ArmScore, competitors: &[ArmScore]) -> f64 {
    if competitors.is_empty() {
        return 1.0;
    }
    let spread = std::f64::consts::SQRT_2 * target.std_dev;
    let lowest = target.mean - spread * NODES[NODES.len() - 1];
    // Competitors almost surely below every quadrature point do not change the product.
    let relevant: Vec<Competitor> = competitors
        .iter()
        .map(|c| Competitor { top: c.mean + TAIL * c.std_dev, mean: c.mean, std_dev: c.std_dev })
        .filter(|c| c.top > lowest)
        .collect();
    let table = CDF_TABLE.as_slice();
    let mut total = 0.0;
    for (node, weight) in NODES.iter().zip(WEIGHTS) {
        for x in [target.mean - spread * node, target.mean + spread * node] {
            total += weight * all_below(table, x, &relevant);
        }
    }
    // The offer was chosen, so its probability is not 0 even where the approximation says so.
    (total / std::f64::consts::PI.sqrt()).clamp(MIN_PROPENSITY, 1.0)
}

struct Competitor {
    top: f64,
    mean: f64,
    std_dev: f64,
}

fn all_below(table: &[f32], x: f64, competitors: &[Competitor]) -> f64 {
    let mut product = 1.0;
    for c in competitors {
        if c.top <= x {
            continue; // almost surely below x
        }
        let p = if c.std_dev > 0.0 {
            let z = (x - c.mean) / c.std_dev;
            if z < -TAIL {
                return 0.0;
            }
            normal_cdf(table, z)
        } else if x < c.mean {
            0.0
        } else {
            0.5
        };
        product *= p;
        if product < 1e-12 {
            return 0.0;
        }
    }
    product
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_formula() {
        for i in 0..=1200 {
            let z = -6.0 + f64::from(i) * 0.01;
            assert!((normal_cdf(&CDF_TABLE, z) - normal_cdf_formula(z)).abs() < 5e-6, "z={z}");
        }
    }

    #[test]
    fn symmetric_arms_split_evenly() {
        let arm = ArmScore { mean: 0.1, std_dev: 0.02 };
        for n in [2usize, 5, 40] {
            let p = win_probability(arm, &vec![arm; n - 1]);
            assert!((p - 1.0 / n as f64).abs() < 0.01, "n={n} p={p}");
        }
    }

    #[test]
    fn two_arms_match_the_closed_form() {
        // For two Gaussians P(A > B) = Phi((ma - mb) / sqrt(sa^2 + sb^2)).
        let (a, b) = (ArmScore { mean: 0.12, std_dev: 0.02 }, ArmScore { mean: 0.1, std_dev: 0.015 });
        let exact = normal_cdf_formula(0.02 / (0.02f64.powi(2) + 0.015f64.powi(2)).sqrt());
        assert!((win_probability(a, &[b]) - exact).abs() < 1e-3);
        assert!((win_probability(a, &[b]) + win_probability(b, &[a]) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn probabilities_of_all_arms_sum_to_one() {
        let arms: Vec<ArmScore> = (0..12)
            .map(|i| ArmScore { mean: 0.05 + 0.01 * f64::from(i), std_dev: 0.01 + 0.002 * f64::from(i % 4) })
            .collect();
        let total: f64 = (0..arms.len())
            .map(|i| {
                let others: Vec<ArmScore> = arms.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| *a).collect();
                win_probability(arms[i], &others)
            })
            .sum();
        assert!((total - 1.0).abs() < 0.02, "{total}");
    }
}
