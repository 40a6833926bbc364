//! The probability that Thompson sampling picks a given arm.
//!
//! There is no closed form for P(arm i has the largest sampled score). We approximate each
//! arm's score (sampled rate x value x weight) by a Gaussian with the posterior's mean and
//! standard deviation, and integrate P(i is max) = E_x~S_i[ prod_j P(S_j < x) ] with 10-point
//! Gauss-Hermite quadrature. Arms far from the integration range are skipped, so a learned
//! posterior with a few contenders costs a few dozen normal CDF evaluations.

/// Gaussian summary of one arm's sampled score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmScore {
    pub mean: f64,
    pub std_dev: f64,
}

/// Physicists' Gauss-Hermite nodes and weights, n = 10 (positive half; symmetric).
const NODES: [f64; 5] = [
    0.342_901_327_223_704_6,
    1.036_610_829_789_514,
    1.756_683_649_299_882,
    2.532_731_674_232_79,
    3.436_159_118_837_738,
];
const WEIGHTS: [f64; 5] = [
    0.610_862_633_735_325_8,
    0.240_138_611_082_314_7,
    0.033_874_394_455_481_06,
    0.001_343_645_746_781_233,
    7.640_432_855_232_621e-6,
];

fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2)
}

/// P(S_target > S_j for every competitor j), scores independent Gaussians.
pub fn win_probability(target: ArmScore, competitors: &[ArmScore]) -> f64 {
    if competitors.is_empty() {
        return 1.0;
    }
    let spread = std::f64::consts::SQRT_2 * target.std_dev;
    let mut total = 0.0;
    for (node, weight) in NODES.iter().zip(WEIGHTS) {
        for x in [target.mean - spread * node, target.mean + spread * node] {
            total += weight * all_below(x, competitors);
        }
    }
    (total / std::f64::consts::PI.sqrt()).clamp(0.0, 1.0)
}

fn all_below(x: f64, competitors: &[ArmScore]) -> f64 {
    let mut product = 1.0;
    for c in competitors {
        let p = if c.std_dev > 0.0 {
            let z = (x - c.mean) / c.std_dev;
            if z > 8.0 {
                continue;
            }
            normal_cdf(z)
        } else if x > c.mean {
            1.0
        } else if x < c.mean {
            0.0
        } else {
            0.5
        };
        product *= p;
        if product < 1e-300 {
            return 0.0;
        }
    }
    product
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_arms_split_evenly() {
        let arm = ArmScore {
            mean: 0.1,
            std_dev: 0.02,
        };
        for n in [2usize, 5, 40] {
            let p = win_probability(arm, &vec![arm; n - 1]);
            assert!((p - 1.0 / n as f64).abs() < 0.01, "n={n} p={p}");
        }
    }

    #[test]
    fn two_arms_match_the_closed_form() {
        // For two Gaussians P(A > B) = Phi((ma - mb) / sqrt(sa^2 + sb^2)).
        let (a, b) = (
            ArmScore {
                mean: 0.12,
                std_dev: 0.02,
            },
            ArmScore {
                mean: 0.1,
                std_dev: 0.015,
            },
        );
        let exact = normal_cdf(0.02 / (0.02f64.powi(2) + 0.015f64.powi(2)).sqrt());
        assert!((win_probability(a, &[b]) - exact).abs() < 1e-3);
        assert!((win_probability(a, &[b]) + win_probability(b, &[a]) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn probabilities_of_all_arms_sum_to_one() {
        let arms: Vec<ArmScore> = (0..12)
            .map(|i| ArmScore {
                mean: 0.05 + 0.01 * f64::from(i),
                std_dev: 0.01 + 0.002 * f64::from(i % 4),
            })
            .collect();
        let total: f64 = (0..arms.len())
            .map(|i| {
                let others: Vec<ArmScore> = arms
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, a)| *a)
                    .collect();
                win_probability(arms[i], &others)
            })
            .sum();
        assert!((total - 1.0).abs() < 0.02, "{total}");
    }
}
