//! What a contextual policy sees of a profile: a bias term, numbers and flags as they are,
//! each category as one-hot columns, and declared interactions as products; the linear
//! model then learns on these coordinates as if the numeric ones were standardized.
//!
//! Standardizing by a running mean and variance would change the coordinates under the
//! statistics already learned. Instead each arm keeps its sufficient statistics on the
//! unstandardized coordinates u, and the standardization z = T u (z_j = (u_j - m_j) / s_j
//! for a numeric coordinate, the bias and one-hot ones unchanged) moves into the ridge
//! prior: ridge regression in z with prior `ridge I` is ridge regression in u with prior
//! P = ridge (T'T)^-1 = ridge (v v' + diag(s^2)), v = (1, m). Scores and widths are the
//! same in either coordinates, so only P changes when the statistics do. Their mean and
//! variance come from what every arm of the policy has seen (sums the arms keep anyway),
//! taken afresh whenever the rows seen reach a power of two; the [`Standardization`] in
//! force is saved with each arm, so a loaded model is the model that was saved.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// How one feature column enters the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A number, standardized.
    Numeric,
    /// 0 or 1, as it is.
    Flag,
    /// A category code `0..levels`, one-hot.
    Category(usize),
}

/// The columns a contextual policy reads, in order, and the pairs of them it multiplies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContextSpec {
    pub columns: Vec<ColumnKind>,
    /// Pairs of positions in `columns`.
    pub interactions: Vec<(usize, usize)>,
}

impl ContextSpec {
    /// `n` numeric columns (a standalone bandit's features).
    pub fn numeric(n: usize) -> Self {
        Self { columns: vec![ColumnKind::Numeric; n], interactions: Vec::new() }
    }
}

/// Fewer observations than this, over all arms, and the prior stays `ridge I`: a mean and
/// variance from a handful of rows would only add noise.
const MIN_ROWS_TO_STANDARDIZE: f64 = 32.0;

/// A numeric coordinate whose variance is below this share of (1 + mean^2) is constant as
/// far as the data goes: it keeps the plain `ridge` prior (standardizing it would make the
/// prior nearly singular along the bias, and its exploration width explode).
const CONSTANT_BELOW: f64 = 1e-6;

/// The coordinates of one policy's context, laid out from its [`ContextSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct Encoder {
    spec: ContextSpec,
    /// Per column: its first coordinate and how many it has.
    blocks: Vec<(usize, usize)>,
    /// Per coordinate: standardized (a number, or a product with one).
    standardized: Vec<bool>,
}

impl Encoder {
    pub fn new(spec: ContextSpec) -> Self {
        let mut blocks = Vec::with_capacity(spec.columns.len());
        let mut standardized = vec![false]; // the bias
        for kind in &spec.columns {
            let (width, numeric) = match kind {
                ColumnKind::Numeric => (1, true),
                ColumnKind::Flag => (1, false),
                ColumnKind::Category(levels) => (*levels, false),
            };
            blocks.push((standardized.len(), width));
            standardized.extend(std::iter::repeat_n(numeric, width));
        }
        for &(a, b) in &spec.interactions {
            let numeric = spec.columns[a] == ColumnKind::Numeric || spec.columns[b] == ColumnKind::Numeric;
            standardized.extend(std::iter::repeat_n(numeric, blocks[a].1 * blocks[b].1));
        }
        Self { spec, blocks, standardized }
    }

    /// Coordinates of an encoded context (0 without columns: a context-free policy).
    pub fn len(&self) -> usize {
        if self.spec.columns.is_empty() && self.spec.interactions.is_empty() { 0 } else { self.standardized.len() }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The coordinates of the raw context `raw` (one value per column) into `out`. A
    /// category code outside `0..levels` sets none of its columns.
    pub fn encode(&self, raw: &[f32], out: &mut Vec<f32>) {
        out.clear();
        if self.is_empty() {
            return;
        }
        out.push(1.0);
        for (kind, &value) in self.spec.columns.iter().zip(raw) {
            match *kind {
                ColumnKind::Numeric | ColumnKind::Flag => out.push(value),
                ColumnKind::Category(levels) => {
                    let start = out.len();
                    out.resize(start + levels, 0.0);
                    if value >= 0.0 && value.fract() == 0.0 && (value as usize) < levels {
                        out[start + value as usize] = 1.0;
                    }
                }
            }
        }
        for &(a, b) in &self.spec.interactions {
            let ((sa, wa), (sb, wb)) = (self.blocks[a], self.blocks[b]);
            for i in sa..sa + wa {
                for j in sb..sb + wb {
                    let product = out[i] * out[j];
                    out.push(product);
                }
            }
        }
    }

    /// The standardization from `rows` observations with coordinate sums `sums` and sums of
    /// squares `squares`; `None` while too few rows were seen (the prior stays `ridge I`).
    pub fn standardization(&self, rows: f64, sums: &[f64], squares: &[f64]) -> Option<Standardization> {
        if rows < MIN_ROWS_TO_STANDARDIZE || !self.standardized.iter().any(|&s| s) {
            return None;
        }
        let d = self.len();
        let (mut mean, mut variance) = (vec![0.0; d], vec![1.0; d]);
        (mean[0], variance[0]) = (1.0, 0.0); // the bias: v_0 = 1 and no spread of its own
        for j in 1..d {
            let m = sums[j] / rows;
            let v = squares[j] / rows - m * m;
            if self.standardized[j] && v >= CONSTANT_BELOW * (1.0 + m * m) {
                (mean[j], variance[j]) = (m, v);
            }
        }
        Some(Standardization { mean, variance })
    }
}

/// A standardization in force: per coordinate the mean and variance it divides out (the
/// bias as mean 1, variance 0; an unstandardized coordinate as mean 0, variance 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    pub mean: Vec<f64>,
    pub variance: Vec<f64>,
}

impl Standardization {
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// The ridge prior that standardizes, in the unstandardized coordinates:
    /// `ridge` (v v' + diag(variance)), v = `mean`.
    pub fn prior(&self, ridge: f64) -> DMatrix<f64> {
        let (v, s) = (&self.mean, &self.variance);
        DMatrix::from_fn(self.len(), self.len(), |r, c| ridge * (v[r] * v[c] + if r == c { s[r] } else { 0.0 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bias_numbers_one_hot_and_products() {
        let spec = ContextSpec {
            columns: vec![ColumnKind::Numeric, ColumnKind::Category(3), ColumnKind::Flag],
            interactions: vec![(0, 1)],
        };
        let encoder = Encoder::new(spec);
        assert_eq!(encoder.len(), 1 + 1 + 3 + 1 + 3);
        let mut out = Vec::new();
        encoder.encode(&[2.5, 1.0, 1.0], &mut out);
        assert_eq!(out, [1.0, 2.5, 0.0, 1.0, 0.0, 1.0, 0.0, 2.5, 0.0]);
        encoder.encode(&[2.5, 7.0, 0.0], &mut out);
        assert_eq!(&out[2..5], [0.0, 0.0, 0.0], "an unknown code sets no column");
    }

    #[test]
    fn the_prior_is_ridge_regression_on_standardized_coordinates() {
        // Ridge in z = T u with prior ridge I equals ridge in u with prior ridge (T'T)^-1.
        let encoder =
            Encoder::new(ContextSpec { columns: vec![ColumnKind::Numeric, ColumnKind::Flag], ..Default::default() });
        let rows: Vec<[f64; 3]> = (0..200).map(|i| [1.0, 500.0 + 37.0 * f64::from(i % 11), f64::from(i % 2)]).collect();
        let rewards: Vec<f64> = rows.iter().map(|u| 0.002 * u[1] - 0.3 * u[2]).collect();
        let n = rows.len() as f64;
        let sums: Vec<f64> = (0..3).map(|j| rows.iter().map(|u| u[j]).sum()).collect();
        let squares: Vec<f64> = (0..3).map(|j| rows.iter().map(|u| u[j] * u[j]).sum()).collect();
        let ridge = 2.0;
        let prior = encoder.standardization(n, &sums, &squares).expect("enough rows").prior(ridge);
        let gram = |f: &dyn Fn(&[f64; 3]) -> [f64; 3]| {
            let mut a = DMatrix::zeros(3, 3);
            let mut b = nalgebra::DVector::zeros(3);
            for (u, r) in rows.iter().zip(&rewards) {
                let x = nalgebra::DVector::from_row_slice(&f(u));
                a += &x * x.transpose();
                b += &x * *r;
            }
            (a, b)
        };
        let (mean, sd) = (sums[1] / n, (squares[1] / n - (sums[1] / n).powi(2)).sqrt());
        let (az, bz) = gram(&|u| [1.0, (u[1] - mean) / sd, u[2]]);
        let theta_z = (az + DMatrix::identity(3, 3) * ridge).try_inverse().unwrap() * bz;
        let (au, bu) = gram(&|u| *u);
        let theta_u = (au + prior).try_inverse().unwrap() * bu;
        for u in &rows[..5] {
            let z = nalgebra::DVector::from_row_slice(&[1.0, (u[1] - mean) / sd, u[2]]);
            let score_z = theta_z.dot(&z);
            let score_u = theta_u.dot(&nalgebra::DVector::from_row_slice(u));
            assert!((score_z - score_u).abs() < 1e-6, "{score_z} vs {score_u}");
        }
    }
}
