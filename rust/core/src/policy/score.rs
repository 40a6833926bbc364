//! How a policy scores the eligible arms of one decision: samples with the laws they were
//! drawn from (Thompson sampling), or point scores with the rule that picks among them.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::config::Kind;
use super::model::{Model, Picker, UNTRIED};
use super::propensity::ScoreLaw;

impl Model {
    /// Scores the `eligible` arms for one decision in raw context `x` into `scores` (times `scale`), with the
    /// law of each sampled score into `laws`; returns how to pick from them.
    pub fn score<R: Rng + ?Sized>(
        &self,
        eligible: &[usize],
        scale: &[f64],
        x: &[f32],
        rng: &mut R,
        scores: &mut Vec<f64>,
        laws: &mut Vec<ScoreLaw>,
    ) -> Picker {
        let (mut encoded, mut lifted) = (Vec::new(), Vec::new());
        if self.dim > 0 {
            self.encode(x, &mut encoded);
            self.prepare(&encoded, &mut lifted);
        }
        self.score_with(eligible, scale, |i| self.linear_moments(i, &encoded, &lifted), rng, scores, laws)
    }

    /// [`Self::score`] with linear arms' (theta'x, sqrt(x' A^-1 x)) from `linear`, so a batch
    /// can compute them for many contexts at once.
    pub fn score_with<R: Rng + ?Sized>(
        &self,
        eligible: &[usize],
        scale: &[f64],
        linear: impl Fn(usize) -> (f64, f64),
        rng: &mut R,
        scores: &mut Vec<f64>,
        laws: &mut Vec<ScoreLaw>,
    ) -> Picker {
        scores.clear();
        laws.clear();
        scores.reserve(eligible.len());
        laws.reserve(eligible.len());
        match self.config.kind {
            Kind::Thompson { .. } => {
                for &i in eligible {
                    let beta = self.cached[i].beta.as_ref().expect("thompson arms cache a Beta sampler");
                    scores.push(beta.sample(rng) * scale[i]);
                    laws.push(beta.law(scale[i]));
                }
                Picker::Sampled
            }
            Kind::GaussianThompson { .. } => {
                for &i in eligible {
                    let c = &self.cached[i];
                    let z: f64 = StandardNormal.sample(rng);
                    scores.push((c.mean + c.std_dev * z) * scale[i]);
                    laws.push(ScoreLaw::Normal { mean: c.mean * scale[i], std_dev: c.std_dev * scale[i] });
                }
                Picker::Sampled
            }
            Kind::Ucb1 { exploration } => {
                let log_total = self.total.max(1.0).ln();
                for &i in eligible {
                    let n = self.arms[i].counts.n;
                    let bonus = if n > 0.0 { exploration * (2.0 * log_total / n).sqrt() } else { UNTRIED };
                    scores.push((self.cached[i].mean + bonus) * scale[i]);
                }
                Picker::Greedy
            }
            Kind::EpsilonGreedy { epsilon } => {
                scores.extend(eligible.iter().map(|&i| self.cached[i].mean * scale[i]));
                Picker::EpsilonGreedy(epsilon)
            }
            Kind::Softmax { temperature } => {
                scores.extend(eligible.iter().map(|&i| self.cached[i].mean * scale[i]));
                Picker::Softmax(temperature)
            }
            Kind::LinUcb { alpha, .. } => {
                for &i in eligible {
                    let (mean, width) = linear(i);
                    scores.push((mean + alpha * width) * scale[i]);
                }
                Picker::Greedy
            }
            Kind::LinThompson { scale: v, .. } => {
                for &i in eligible {
                    let (mean, width) = linear(i);
                    let z: f64 = StandardNormal.sample(rng);
                    let std_dev = v * width;
                    scores.push((mean + std_dev * z) * scale[i]);
                    laws.push(ScoreLaw::Normal { mean: mean * scale[i], std_dev: std_dev * scale[i] });
                }
                Picker::Sampled
            }
        }
    }
}
