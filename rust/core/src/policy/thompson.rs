//! Beta-Bernoulli Thompson sampling: one posterior per arm, updated by rewards in [0, 1].

use rand::Rng;
use rand_distr::{Distribution, Gamma};

use super::propensity::ScoreLaw;

#[derive(Debug, Clone)]
pub struct ThompsonArm {
    alpha: f64,
    beta: f64,
    /// Beta(alpha, beta) is sampled as X / (X + Y) with X ~ Gamma(alpha), Y ~ Gamma(beta):
    /// Marsaglia-Tsang gamma draws cost a fraction of a direct Beta draw. Built once per
    /// update, so sampling on the hot path does no setup.
    successes: Gamma<f64>,
    failures: Gamma<f64>,
    /// Posterior mean and standard deviation, kept so propensities need no square roots.
    mean: f64,
    std_dev: f64,
}

impl ThompsonArm {
    pub fn new(alpha: f64, beta: f64) -> Self {
        let gamma = |shape| Gamma::new(shape, 1.0).expect("prior validated: alpha, beta > 0");
        let n = alpha + beta;
        let (mean, std_dev) = (alpha / n, (alpha * beta / (n * n * (n + 1.0))).sqrt());
        Self { alpha, beta, successes: gamma(alpha), failures: gamma(beta), mean, std_dev }
    }

    /// Posterior mean of the response rate.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn std_dev(&self) -> f64 {
        self.std_dev
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let x = self.successes.sample(rng);
        let y = self.failures.sample(rng);
        x / (x + y)
    }

    /// The law of `sample() * scale`, for propensities.
    pub fn law(&self, scale: f64) -> ScoreLaw {
        ScoreLaw::Beta { alpha: self.alpha, beta: self.beta, scale }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_follow_the_posterior() {
        // Beta(1, 1) after 30 successes and 70 failures
        let arm = ThompsonArm::new(31.0, 71.0);
        assert!((arm.mean() - 31.0 / 102.0).abs() < 1e-12);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let mean: f64 = (0..20_000).map(|_| arm.sample(&mut rng)).sum::<f64>() / 20_000.0;
        assert!((mean - arm.mean()).abs() < 0.005, "{mean}");
    }
}
