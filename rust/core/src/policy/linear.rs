//! One arm of a disjoint linear model (LinUCB, linear Thompson sampling): ridge regression
//! of the reward on the context, A = ridge I + sum x x', b = sum r x, theta = A^-1 b.
//!
//! A^-1 is kept up to date by Sherman-Morrison rank-one updates (O(d^2) per observation, no
//! inverse), and rebuilt from A by a Cholesky factorisation every `REFACTOR_EVERY` updates so
//! rounding errors cannot pile up. With a discount below 1 the update is no longer rank one
//! (the ridge prior is kept while the data fades), so A^-1 is rebuilt once per batch of
//! updates instead ([`LinearArm::settle`]).

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::context::Standardization;

const REFACTOR_EVERY: u32 = 256;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearArm {
    a: DMatrix<f64>,
    b: DVector<f64>,
    /// Sum of the contexts seen, for reporting uncertainty at the average context.
    x_sum: DVector<f64>,
    /// The policy's standardization when this arm was saved ([`super::context`]): its
    /// prior replaces the `ridge I` inside `a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    standardization: Option<Standardization>,
    /// What that prior adds to `a`; derived.
    #[serde(skip)]
    prior_shift: Option<DMatrix<f64>>,
    #[serde(skip)]
    derived: Option<Derived>,
}

#[derive(Debug, Clone)]
struct Derived {
    a_inv: DMatrix<f64>,
    theta: DVector<f64>,
    since_refactor: u32,
    stale: bool,
}

impl LinearArm {
    pub fn new(dim: usize, ridge: f64) -> Self {
        let mut arm = Self {
            a: DMatrix::identity(dim, dim) * ridge,
            b: DVector::zeros(dim),
            x_sum: DVector::zeros(dim),
            standardization: None,
            prior_shift: None,
            derived: None,
        };
        arm.refactor();
        arm
    }

    pub fn dim(&self) -> usize {
        self.b.len()
    }

    /// Checks a loaded arm's shapes.
    pub fn check(&self, dim: usize) -> Result<(), String> {
        let ok = self.a.nrows() == dim
            && self.a.ncols() == dim
            && self.b.len() == dim
            && self.x_sum.len() == dim
            && self
                .standardization
                .as_ref()
                .is_none_or(|s| s.len() > 0 && dim.is_multiple_of(s.len()) && s.variance.len() == s.len());
        if ok { Ok(()) } else { Err(format!("linear arm state does not have {dim} coordinates")) }
    }

    fn derived(&self) -> &Derived {
        self.derived.as_ref().expect("derived state is built on creation, load and update")
    }

    pub fn a_inv(&self) -> &DMatrix<f64> {
        &self.derived().a_inv
    }

    pub fn theta(&self) -> &DVector<f64> {
        &self.derived().theta
    }

    /// Adds the sum of the contexts seen into `sums`, and of each coordinate's squares (A's
    /// diagonal without its `ridge` prior) into `squares`, for the policy's standardization.
    pub fn add_sums(&self, ridge: f64, sums: &mut [f64], squares: &mut [f64]) {
        for j in 0..self.dim() {
            sums[j] += self.x_sum[j];
            squares[j] += self.a[(j, j)] - ridge;
        }
    }

    /// Takes the prior of `standardization` instead of `ridge I` (`None`: back to it). A
    /// standardization of fewer coordinates is of the first factor of pair features
    /// ([`super::shared`]): its prior is repeated over the second, P (x) I.
    pub fn standardize(&mut self, standardization: Option<Standardization>, ridge: f64) {
        let d = self.dim();
        self.prior_shift = standardization.as_ref().map(|s| {
            let (prior, repeat) = (s.prior(ridge), d / s.len().max(1));
            DMatrix::from_fn(d, d, |r, c| {
                let same = r % repeat == c % repeat;
                (if same { prior[(r / repeat, c / repeat)] } else { 0.0 }) - if r == c { ridge } else { 0.0 }
            })
        });
        self.standardization = standardization;
        self.refactor();
    }

    /// The standardization this arm learns under, if any.
    pub fn standardization(&self) -> Option<&Standardization> {
        self.standardization.as_ref()
    }

    /// Rebuilds A^-1 and theta from A (with the prior's shift) and b.
    pub fn refactor(&mut self) {
        let dim = self.dim();
        let a = match &self.prior_shift {
            Some(shift) => &self.a + shift,
            None => self.a.clone(),
        };
        let a_inv = match a.clone().cholesky() {
            Some(c) => c.inverse(),
            // A is a positive definite prior plus a sum of outer products: positive definite
            // unless rounding broke it; a pseudo-inverse keeps the arm usable.
            None => a.pseudo_inverse(1e-12).unwrap_or_else(|_| DMatrix::identity(dim, dim)),
        };
        let theta = &a_inv * &self.b;
        self.derived = Some(Derived { a_inv, theta, since_refactor: 0, stale: false });
    }

    /// Adds one observation. With `discount` < 1, or `defer` (a batch with many rows for
    /// this arm: one refactorisation at the end beats a rank-one update per row), the arm is
    /// stale until [`Self::settle`].
    pub fn observe(&mut self, x: &[f32], reward: f64, discount: f64, ridge: f64, defer: bool) {
        let x = DVector::from_iterator(self.dim(), x.iter().map(|&v| f64::from(v)));
        if discount < 1.0 {
            // A = ridge I + discount (A - ridge I) + x x': the prior stays, the data fades.
            self.a *= discount;
            for i in 0..self.dim() {
                self.a[(i, i)] += (1.0 - discount) * ridge;
            }
            self.b *= discount;
            self.x_sum *= discount;
        }
        self.a.ger(1.0, &x, &x, 1.0);
        self.b.axpy(reward, &x, 1.0);
        self.x_sum += &x;
        let derived = self.derived.as_mut().expect("built on creation");
        if discount < 1.0 || defer || derived.stale {
            derived.stale = true;
            return;
        }
        // Sherman-Morrison: (A + x x')^-1 = A^-1 - (A^-1 x)(A^-1 x)' / (1 + x' A^-1 x).
        let u = &derived.a_inv * &x;
        let denominator = 1.0 + x.dot(&u);
        derived.a_inv.ger(-1.0 / denominator, &u, &u, 1.0);
        derived.since_refactor += 1;
        if derived.since_refactor >= REFACTOR_EVERY {
            self.refactor();
        } else {
            derived.theta = &derived.a_inv * &self.b;
        }
    }

    /// Brings A^-1 and theta up to date after discounted updates.
    pub fn settle(&mut self) {
        if self.derived.as_ref().is_none_or(|d| d.stale) {
            self.refactor();
        }
    }

    /// sqrt(x' A^-1 x) at the average context seen (at the origin before any).
    pub fn width_at_mean(&self, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let x = &self.x_sum / n;
        x.dot(&(self.a_inv() * &x)).max(0.0).sqrt()
    }

    /// Adds another server's observations: A and b are sums, so deltas merge exactly.
    pub fn add(&mut self, a_delta: &DMatrix<f64>, b_delta: &DVector<f64>, x_sum: &DVector<f64>) {
        self.a += a_delta;
        self.b += b_delta;
        self.x_sum += x_sum;
        self.refactor();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sherman_morrison_matches_a_direct_inverse() {
        let mut arm = LinearArm::new(3, 1.0);
        let xs = [[1.0f32, 0.5, -0.2], [0.3, -1.0, 2.0], [0.0, 0.7, 0.1], [1.5, 1.5, 1.5]];
        for (i, x) in xs.iter().enumerate() {
            arm.observe(x, i as f64 * 0.25, 1.0, 1.0, false);
        }
        let direct = arm.a.clone().try_inverse().unwrap();
        assert!((arm.a_inv() - &direct).amax() < 1e-12);
        assert!((arm.theta() - &direct * &arm.b).amax() < 1e-12);
    }

    #[test]
    fn recovers_a_linear_reward() {
        let mut arm = LinearArm::new(2, 0.01);
        for i in 0..200 {
            let x = [(i % 7) as f32 / 7.0, (i % 5) as f32 / 5.0];
            arm.observe(&x, 0.3 * f64::from(x[0]) + 0.6 * f64::from(x[1]), 1.0, 0.01, false);
        }
        assert!((arm.theta()[0] - 0.3).abs() < 0.01 && (arm.theta()[1] - 0.6).abs() < 0.01, "{}", arm.theta());
    }
}
