//! Linear arms' moments for a block of contexts at once: one matrix product of the block
//! (n x d) with every arm's stacked [A^-1 | theta] (d x arms(d+1)), which runs at matrix
//! multiply speed (nalgebra hands f32 products of this size to matrixmultiply's kernels).

use nalgebra::{DMatrix, DMatrixView};

use crate::policy::Model;

/// Smaller blocks are scored row by row: a product of tiny matrices gains nothing, and
/// nalgebra hands only products with every side above 5 to matrixmultiply (its fallback
/// for smaller ones reads row-strided views wrongly).
const MIN_SIDE: usize = 8;

#[derive(Default)]
pub(super) struct Moments {
    /// `n x arms` of theta'x and sqrt(x' A^-1 x), column-major (row index fastest).
    means: Vec<f32>,
    widths: Vec<f32>,
    rows: usize,
    product: DMatrix<f32>,
    /// The block transposed (`d x n`), so the quadratic forms read both operands in order.
    columns: Vec<f32>,
    quad: Vec<f32>,
}

impl Moments {
    /// Computes the moments of every linear arm for the `n x width` row-major `block`, or
    /// leaves them to [`Self::get`]'s one-by-one path for context-free models and tiny blocks.
    pub fn compute(&mut self, model: &Model, block: &[f32], width: usize, n: usize) {
        self.rows = 0;
        let d = model.dim;
        if d < MIN_SIDE || n < MIN_SIDE {
            return;
        }
        let arms = model.len();
        let columns = arms * (d + 1);
        let x = DMatrixView::from_slice_with_strides(block, n, d, width, 1);
        let stacked = DMatrixView::from_slice(model.stacked(), d, columns);
        if self.product.shape() != (n, columns) {
            self.product = DMatrix::zeros(n, columns);
        }
        self.product.gemm(1.0, &x, &stacked, 0.0);
        self.means.clear();
        self.widths.clear();
        self.means.resize(n * arms, 0.0);
        self.widths.resize(n * arms, 0.0);
        let product = self.product.as_slice();
        self.columns.clear();
        self.columns.extend((0..d).flat_map(|r| (0..n).map(move |i| block[i * width + r])));
        self.quad.resize(n, 0.0);
        let quad = &mut self.quad;
        for a in 0..arms {
            quad.iter_mut().for_each(|q| *q = 0.0);
            for r in 0..d {
                let column = &product[(a * (d + 1) + r) * n..(a * (d + 1) + r + 1) * n];
                let x = &self.columns[r * n..(r + 1) * n];
                for ((q, &c), &v) in quad.iter_mut().zip(column).zip(x) {
                    *q += c * v;
                }
            }
            let mean = &product[(a * (d + 1) + d) * n..(a * (d + 1) + d + 1) * n];
            self.means[a * n..(a + 1) * n].copy_from_slice(mean);
            for (w, &q) in self.widths[a * n..(a + 1) * n].iter_mut().zip(quad.iter()) {
                *w = q.max(0.0).sqrt();
            }
        }
        self.rows = n;
    }

    /// (theta'x, sqrt(x' A^-1 x)) of arm `arm` for row `row` of the block.
    pub fn get(&self, model: &Model, row: usize, arm: usize, context: &[f32]) -> (f64, f64) {
        if self.rows == 0 {
            return model.linear_moments(arm, context);
        }
        let at = arm * self.rows + row;
        (f64::from(self.means[at]), f64::from(self.widths[at]))
    }
}
