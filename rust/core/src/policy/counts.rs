//! Sufficient statistics of one context-free arm: (discounted) count, sum and sum of
//! squares of its rewards, or those of its last `window` rewards.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub n: f64,
    pub sum: f64,
    pub sum_sq: f64,
    /// The rewards inside the window, oldest first (empty without a window).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub recent: VecDeque<f64>,
}

impl Counts {
    /// Adds one reward: past ones keep weight `discount` each time, and with a window the
    /// oldest leaves once `window` are held.
    pub fn observe(&mut self, reward: f64, discount: f64, window: Option<u32>) {
        if discount < 1.0 {
            self.n *= discount;
            self.sum *= discount;
            self.sum_sq *= discount;
        }
        self.n += 1.0;
        self.sum += reward;
        self.sum_sq += reward * reward;
        if let Some(w) = window {
            self.recent.push_back(reward);
            if self.recent.len() > w as usize
                && let Some(old) = self.recent.pop_front()
            {
                self.n -= 1.0;
                self.sum -= old;
                self.sum_sq -= old * old;
            }
        }
    }

    /// Merges statistics learned elsewhere (sufficient statistics add up).
    pub fn add(&mut self, other: &Self) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    /// Mean reward, or `fallback` before any reward.
    pub fn mean_or(&self, fallback: f64) -> f64 {
        if self.n > 0.0 { self.sum / self.n } else { fallback }
    }

    /// Sum of squared deviations from the mean (never negative after rounding).
    pub fn squared_deviations(&self) -> f64 {
        if self.n > 0.0 { (self.sum_sq - self.sum * self.sum / self.n).max(0.0) } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_last_rewards() {
        let mut counts = Counts::default();
        for r in [1.0, 1.0, 0.0, 0.0, 0.0] {
            counts.observe(r, 1.0, Some(3));
        }
        assert_eq!((counts.n, counts.sum), (3.0, 0.0));
    }

    #[test]
    fn discount_weighs_recent_rewards_more() {
        let mut counts = Counts::default();
        for r in [1.0, 1.0, 1.0, 0.0] {
            counts.observe(r, 0.5, None);
        }
        // weights 1/8, 1/4, 1/2, 1
        assert!((counts.n - 1.875).abs() < 1e-12);
        assert!((counts.sum - 0.875).abs() < 1e-12);
    }
}
