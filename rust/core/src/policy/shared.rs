//! One linear model for every offer of a placement (`shared: true`), like Vowpal Wabbit's
//! ADF mode: the features of a (profile, offer) pair are the products u_a o_b of the
//! profile's coordinates u ([`super::context`]) and the offer's o (a bias, then its
//! `attributes`), so an offer never shown starts from what offers with its attributes
//! learned, and the o bias carries what holds for every offer.
//!
//! Scoring many offers for one context is cheap: with phi = u (x) o, theta' phi = m(u)' o
//! with m_b = sum_a u_a theta_ab, and phi' A^-1 phi = o' M(u) o with
//! M_bd = sum_{a,c} u_a u_c A^-1_{ab,cd}. [`Shared::prepare`] computes m and M once per
//! context (from the lifted products of u and A^-1 folded to match), then each offer
//! costs |o|^2.

use nalgebra::DMatrix;

use super::context::{Encoder, Standardization};
use super::lifted::{lift, lifted_len};
use super::linear::LinearArm;

#[derive(Debug, Clone)]
pub struct Shared {
    pub(super) linear: LinearArm,
    /// Each arm's offer coordinates, all `width` long.
    offers: Vec<Vec<f32>>,
    width: usize,
    /// Coordinates of the profile side.
    profile: usize,
    /// A^-1 folded for contexts: `lifted_len(profile)` rows of `width^2`, row-major.
    folded: Vec<f32>,
    /// theta as `profile x width`, row-major.
    theta: Vec<f32>,
}

impl Shared {
    /// A shared model over `profile` coordinates and the arms' `offers` vectors, learned
    /// afresh or from `saved` (when its shape fits).
    pub fn new(profile: usize, offers: Vec<Vec<f32>>, ridge: f64, saved: Option<LinearArm>) -> Self {
        let width = offers.first().map_or(1, Vec::len);
        let dim = profile * width;
        let linear = match saved {
            Some(mut linear) if linear.check(dim).is_ok() => {
                linear.settle();
                linear
            }
            _ => LinearArm::new(dim, ridge),
        };
        let mut shared = Self { linear, offers, width, profile, folded: Vec::new(), theta: Vec::new() };
        shared.restack();
        shared
    }

    fn pair(&self, u: &[f32], arm: usize, out: &mut Vec<f32>) {
        out.clear();
        let o = &self.offers[arm];
        for &ua in u {
            out.extend(o.iter().map(|&ob| ua * ob));
        }
    }

    /// Learns one reward of `arm` at encoded context `u`; returns the pair's features (for
    /// sharing with other servers).
    pub fn observe(&mut self, u: &[f32], arm: usize, reward: f64, discount: f64, ridge: f64, defer: bool) -> Vec<f32> {
        let mut phi = Vec::with_capacity(self.profile * self.width);
        self.pair(u, arm, &mut phi);
        self.linear.observe(&phi, reward, discount, ridge, defer);
        phi
    }

    /// Adds another server's increments (over the pair features).
    pub fn add(&mut self, a: &DMatrix<f64>, b: &nalgebra::DVector<f64>, x: &nalgebra::DVector<f64>) {
        if a.nrows() == self.linear.dim() {
            self.linear.add(a, b, x);
            self.restack();
        }
    }

    pub fn settle(&mut self) {
        self.linear.settle();
        self.restack();
    }

    /// Rebuilds the folded A^-1 and theta after the model learned.
    pub fn restack(&mut self) {
        let (p, w) = (self.profile, self.width);
        let (a_inv, theta) = (self.linear.a_inv(), self.linear.theta());
        self.folded.clear();
        self.folded.reserve(lifted_len(p) * w * w);
        for a in 0..p {
            for c in a..p {
                for b in 0..w {
                    for d in 0..w {
                        let mut v = a_inv[(a * w + b, c * w + d)];
                        if a != c {
                            v += a_inv[(c * w + b, a * w + d)];
                        }
                        self.folded.push(v as f32);
                    }
                }
            }
        }
        self.theta = theta.iter().map(|&t| t as f32).collect();
    }

    /// For encoded context `u`: M(u) (`width^2`) then m(u) (`width`), into `out`.
    pub fn prepare(&self, u: &[f32], out: &mut Vec<f32>) {
        let w = self.width;
        let mut lifted = Vec::with_capacity(lifted_len(u.len()));
        lift(u, &mut lifted);
        out.clear();
        out.resize(w * w + w, 0.0);
        let (m_quad, m_mean) = out.split_at_mut(w * w);
        for (k, &l) in lifted.iter().enumerate() {
            if l != 0.0 {
                let row = &self.folded[k * w * w..(k + 1) * w * w];
                m_quad.iter_mut().zip(row).for_each(|(m, &f)| *m += l * f);
            }
        }
        for (a, &ua) in u.iter().enumerate() {
            if ua != 0.0 {
                let row = &self.theta[a * w..(a + 1) * w];
                m_mean.iter_mut().zip(row).for_each(|(m, &t)| *m += ua * t);
            }
        }
    }

    /// (theta' phi, sqrt(phi' A^-1 phi)) of `arm`, given [`Self::prepare`]'s output.
    pub fn moments(&self, arm: usize, prepared: &[f32]) -> (f64, f64) {
        let w = self.width;
        let o = &self.offers[arm];
        let mean: f32 = o.iter().zip(&prepared[w * w..]).map(|(a, b)| a * b).sum();
        let mut quad = 0.0f32;
        for (b, &ob) in o.iter().enumerate() {
            if ob != 0.0 {
                let row = &prepared[b * w..(b + 1) * w];
                quad += ob * o.iter().zip(row).map(|(a, m)| a * m).sum::<f32>();
            }
        }
        (f64::from(mean), f64::from(quad.max(0.0)).sqrt())
    }

    /// The width of `arm` at the average context seen.
    pub fn width_at_mean(&self, arm: usize, ridge: f64) -> f64 {
        let (mut sums, mut squares) = (vec![0.0; self.linear.dim()], vec![0.0; self.linear.dim()]);
        self.linear.add_sums(ridge, &mut sums, &mut squares);
        let rows = sums.first().copied().unwrap_or(0.0);
        if rows <= 0.0 {
            return 0.0;
        }
        let u: Vec<f32> = (0..self.profile).map(|a| (sums[a * self.width] / rows) as f32).collect();
        let mut prepared = Vec::new();
        self.prepare(&u, &mut prepared);
        self.moments(arm, &prepared).1
    }

    /// The standardization of the profile side from the pairs seen (o's bias is 1, so the
    /// features u_a x 1 are the profile's coordinates), or the saved one with `keep_saved`.
    pub fn standardize(&mut self, encoder: &Encoder, ridge: f64, keep_saved: bool) {
        let (mut sums, mut squares) = (vec![0.0; self.linear.dim()], vec![0.0; self.linear.dim()]);
        self.linear.add_sums(ridge, &mut sums, &mut squares);
        let w = self.width;
        let profile_sums: Vec<f64> = (0..self.profile).map(|a| sums[a * w]).collect();
        let profile_squares: Vec<f64> = (0..self.profile).map(|a| squares[a * w]).collect();
        let rows = profile_sums.first().copied().unwrap_or(0.0);
        let saved: Option<Standardization> = keep_saved.then(|| self.linear.standardization().cloned()).flatten();
        let standardization = saved.or_else(|| encoder.standardization(rows, &profile_sums, &profile_squares));
        self.linear.standardize(standardization, ridge);
        self.restack();
    }

    /// Rows learned (the bias pair's sum).
    pub fn rows(&self) -> f64 {
        let (mut sums, mut squares) = (vec![0.0; self.linear.dim()], vec![0.0; self.linear.dim()]);
        self.linear.add_sums(0.0, &mut sums, &mut squares);
        sums.first().copied().unwrap_or(0.0)
    }

    /// The expected reward of `arm` at encoded context `u`.
    pub fn mean(&self, arm: usize, u: &[f32]) -> f64 {
        let mut phi = Vec::new();
        self.pair(u, arm, &mut phi);
        phi.iter().zip(&self.theta).map(|(&x, &t)| f64::from(x) * f64::from(t)).sum()
    }
}
