//! What one arm learned since the last time its learning was shared: the increments of its
//! sufficient statistics. Counts, sums, A and b are sums over observations, so increments
//! from many servers add up to what one server seeing everything would have learned
//! (for policies that do not forget).

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::counts::Counts;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArmDelta {
    pub counts: Counts,
    /// Linear arms: sum of x x', sum of r x, sum of x.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<(DMatrix<f64>, DVector<f64>, DVector<f64>)>,
}

impl ArmDelta {
    pub fn is_empty(&self) -> bool {
        self.counts.n == 0.0
    }

    pub fn observe(&mut self, x: &[f32], reward: f64, dim: usize) {
        self.counts.observe(reward, 1.0, None);
        if dim == 0 {
            return;
        }
        let (a, b, x_sum) =
            self.linear.get_or_insert_with(|| (DMatrix::zeros(dim, dim), DVector::zeros(dim), DVector::zeros(dim)));
        let x = DVector::from_iterator(dim, x.iter().map(|&v| f64::from(v)));
        a.ger(1.0, &x, &x, 1.0);
        b.axpy(reward, &x, 1.0);
        *x_sum += &x;
    }
}
