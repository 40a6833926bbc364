//! A policy on its own, outside any catalog: arms are numbered, contexts are rows of a
//! matrix. The engine's placements use the same [`Model`]; this is what notebooks,
//! benchmarks and off-policy evaluation drive directly.

mod file;
pub(crate) mod linear_batch;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::arbitrate::{ArmView, Workspace, choose_with, first_slot_probabilities};
use crate::error::{Error, Result};
use crate::policy::{Model, PolicyConfig, ScoreLaw};

/// Per-thread buffers of a selection.
type Scratch = (Workspace, Vec<usize>, linear_batch::Moments);

/// Rows scored together: enough for an efficient matrix product, small enough for cache.
const CHUNK: usize = 512;

#[derive(Debug, Clone)]
pub struct Bandit {
    model: Model,
    seed: u64,
    /// Decisions made so far: row `r` of the next call draws from stream `decisions + r`,
    /// so results do not depend on how calls are split or on the thread count.
    decisions: u64,
}

/// Choices of a batch: `rows x slots`, -1 (NaN propensity) where a slot stayed empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub choices: Vec<i64>,
    pub propensities: Vec<f64>,
}

impl Bandit {
    pub fn new(config: PolicyConfig, n_arms: usize, n_features: usize, seed: u64) -> Result<Self> {
        config.validate().map_err(|e| Error::InvalidInput(e.message))?;
        if n_arms == 0 {
            return Err(Error::InvalidInput("a bandit needs at least one arm".to_owned()));
        }
        if config.is_contextual() && n_features == 0 {
            return Err(Error::InvalidInput(format!("{} needs n_features >= 1", config.name())));
        }
        if config.features.is_some() || config.interactions.is_some() {
            return Err(Error::InvalidInput(
                "'features' and 'interactions' name catalog features; a standalone bandit reads every column"
                    .to_owned(),
            ));
        }
        if config.shared {
            return Err(Error::InvalidInput(
                "'shared' models read the offers' catalog attributes; a standalone bandit has none".to_owned(),
            ));
        }
        let model = Model::new(config, n_arms, n_features);
        Ok(Self { model, seed, decisions: 0 })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn n_arms(&self) -> usize {
        self.model.len()
    }

    /// Columns a context row must have (context-free policies accept any, and ignore them).
    pub fn n_features(&self) -> usize {
        self.model.dim
    }

    /// Checks a `rows x width` context matrix (and eligibility mask) against the bandit.
    fn check(&self, x: &[f32], rows: usize, width: usize, eligible: Option<&[bool]>) -> Result<()> {
        let dim = self.model.dim;
        if dim > 0 && width != dim {
            return Err(Error::InvalidInput(format!("expected rows of {dim} features, got {width}")));
        }
        if x.len() != rows * width {
            return Err(Error::InvalidInput(format!("expected {rows} x {width} values, got {}", x.len())));
        }
        if let Some(mask) = eligible
            && mask.len() != rows * self.n_arms()
        {
            return Err(Error::InvalidInput(format!(
                "eligible must be {rows} x {} (rows x arms), got {} values",
                self.n_arms(),
                mask.len()
            )));
        }
        if let Some(bad) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "row {} column {} is not a finite number ({})",
                bad / width,
                bad % width,
                x[bad]
            )));
        }
        Ok(())
    }

    /// Chooses `slots` arms for each of `rows` contexts (`x` is `rows x width`, row-major;
    /// `width` is `n_features`, or anything for a context-free policy).
    pub fn select(
        &mut self,
        x: &[f32],
        (rows, width): (usize, usize),
        eligible: Option<&[bool]>,
        slots: usize,
        propensities: bool,
    ) -> Result<Selection> {
        self.check(x, rows, width, eligible)?;
        let arms = self.n_arms();
        let mut choices = vec![-1i64; rows * slots];
        let mut props = vec![f64::NAN; rows * slots];
        let scale = vec![1.0; arms];
        let group = vec![None; arms];
        let view = ArmView { model: &self.model, columns: &[], scale: &scale, group: &group };
        let first = self.decisions;
        let seed = self.seed;
        let run_chunk = |(ws, eligible_arms, moments): &mut Scratch,
                         (chunk, (out_choice, out_prop)): (usize, (&mut [i64], &mut [f64]))| {
            let start = chunk * CHUNK;
            let n = out_choice.len() / slots.max(1);
            let block = &x[start * width..(start + n) * width];
            moments.compute(&self.model, block, width, n);
            for row in 0..n {
                let global = start + row;
                eligible_in_row(eligible, global, arms, eligible_arms);
                let mut rng = stream(seed, first + global as u64);
                let context = &block[row * width..(row + 1) * width];
                moments.start_row(&self.model, context);
                let moments = &*moments;
                choose_with(&view, eligible_arms, slots, propensities, &mut rng, ws, |scores, m, rng| {
                    let linear = |i| moments.get(&self.model, row, i);
                    self.model.score_with(eligible_arms, &scale, linear, rng, scores, m)
                });
                for (s, pick) in ws.picks.iter().enumerate() {
                    out_choice[row * slots + s] = pick.local as i64;
                    out_prop[row * slots + s] = pick.propensity;
                }
            }
        };
        let step = CHUNK * slots.max(1);
        if rows <= CHUNK {
            // One block: handing it to the thread pool would cost more than scoring it.
            run_chunk(&mut Scratch::default(), (0, (&mut choices[..], &mut props[..])));
        } else {
            choices
                .par_chunks_mut(step)
                .zip(props.par_chunks_mut(step))
                .enumerate()
                .for_each_init(Scratch::default, |scratch, item| run_chunk(scratch, item));
        }
        self.decisions += rows as u64;
        Ok(Selection { choices, propensities: props })
    }

    /// The first slot's choice distribution over all arms for each context (`rows x arms`,
    /// rows sum to 1, 0 where not eligible), for off-policy evaluation. Draws nothing.
    pub fn action_probabilities(
        &self,
        x: &[f32],
        (rows, width): (usize, usize),
        eligible: Option<&[bool]>,
    ) -> Result<Vec<f64>> {
        self.check(x, rows, width, eligible)?;
        let arms = self.n_arms();
        let scale = vec![1.0; arms];
        let mut out = vec![0.0; rows * arms];
        out.par_chunks_mut(CHUNK * arms).enumerate().for_each_init(
            || (Vec::new(), Vec::new(), Vec::<ScoreLaw>::new(), Vec::new(), linear_batch::Moments::default()),
            |(eligible_arms, scores, laws, probabilities, moments), (chunk, out)| {
                let start = chunk * CHUNK;
                let n = out.len() / arms;
                let block = &x[start * width..(start + n) * width];
                moments.compute(&self.model, block, width, n);
                for row in 0..n {
                    let global = start + row;
                    eligible_in_row(eligible, global, arms, eligible_arms);
                    let context = &block[row * width..(row + 1) * width];
                    moments.start_row(&self.model, context);
                    let moments = &*moments;
                    // Sampled policies report their laws; the sample itself is not used.
                    let mut rng = stream(self.seed, u64::MAX - global as u64);
                    let linear = |i| moments.get(&self.model, row, i);
                    let picker = self.model.score_with(eligible_arms, &scale, linear, &mut rng, scores, laws);
                    probabilities.clear();
                    probabilities.resize(eligible_arms.len(), 0.0);
                    first_slot_probabilities(&self.model, (eligible_arms, &scale), scores, laws, picker, probabilities);
                    for (&a, &p) in eligible_arms.iter().zip(probabilities.iter()) {
                        out[row * arms + a] = p;
                    }
                }
            },
        );
        Ok(out)
    }

    /// Learns a batch of (context, arm, reward) in row order.
    pub fn update(&mut self, x: &[f32], (rows, width): (usize, usize), arms: &[i64], rewards: &[f64]) -> Result<()> {
        self.check(x, rows, width, None)?;
        if arms.len() != rows || rewards.len() != rows {
            return Err(Error::InvalidInput(format!(
                "update needs one arm and one reward per row: {rows} rows, {} arms, {} rewards",
                arms.len(),
                rewards.len()
            )));
        }
        let n_arms = self.n_arms() as i64;
        if let Some(bad) = arms.iter().position(|&a| a < 0 || a >= n_arms) {
            return Err(Error::InvalidInput(format!(
                "arm {} of row {bad} is out of range: arms are 0..{}",
                arms[bad],
                n_arms - 1
            )));
        }
        for (row, &reward) in rewards.iter().enumerate() {
            self.model.config.check_reward(reward, &format!("in row {row} ")).map_err(Error::InvalidInput)?;
        }
        let dim = self.model.dim;
        let rows = arms.iter().zip(rewards).enumerate().map(|(row, (&arm, &reward))| {
            let context = if dim > 0 { &x[row * width..row * width + dim] } else { &[][..] };
            (arm as usize, context, reward)
        });
        self.model.observe_batch(rows);
        Ok(())
    }

    /// (pulls, mean reward, uncertainty) of every arm.
    pub fn state(&self) -> Vec<(f64, f64, f64)> {
        (0..self.n_arms()).map(|i| self.model.summary(i)).collect()
    }
}

/// The arms row `row` of a `rows x arms` mask allows (all without a mask), into `out`.
fn eligible_in_row(mask: Option<&[bool]>, row: usize, arms: usize, out: &mut Vec<usize>) {
    out.clear();
    match mask {
        Some(mask) => out.extend((0..arms).filter(|&a| mask[row * arms + a])),
        None => out.extend(0..arms),
    }
}

/// Each decision draws from its own stream.
fn stream(seed: u64, decision: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ decision.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[cfg(test)]
mod tests;
