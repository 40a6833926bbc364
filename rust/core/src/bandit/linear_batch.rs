//! Linear arms' moments for a block of contexts at once, by two matrix products: the lifted
//! contexts (n x d(d+1)/2, see `policy::lift`) times every arm's lifted A^-1 weights gives
//! x' A^-1 x, and the contexts (n x d) times the thetas gives theta'x. nalgebra hands f32
//! products of this size to matrixmultiply's kernels, which pick AVX2/AVX-512 at run time.

use nalgebra::{DMatrix, DMatrixView};

use crate::policy::{Model, lift, lifted_len};

/// Smaller blocks are scored row by row: a product of tiny matrices gains nothing, and
/// nalgebra hands only products with every side above 5 to matrixmultiply (its fallback
/// for smaller ones reads row-strided views wrongly).
const MIN_SIDE: usize = 8;

#[derive(Default)]
pub(crate) struct Moments {
    /// `n x arms` column-major: sqrt(x' A^-1 x) (after [`Self::compute`]), then theta'x.
    quads: DMatrix<f32>,
    means: DMatrix<f32>,
    rows: usize,
    /// The block's encoded contexts (`n x coords`) and their lifted products (`n x
    /// lifted_len`), row-major.
    encoded: Vec<f32>,
    lifted: Vec<f32>,
    /// One row's encoded context and lifted products, on the row-by-row path.
    row_encoded: Vec<f32>,
    row: Vec<f32>,
}

impl Moments {
    /// Computes the moments of every linear arm for the `n x width` row-major `block`, or
    /// leaves them to [`Self::get`]'s row-by-row path for context-free models and tiny blocks.
    pub fn compute(&mut self, model: &Model, block: &[f32], width: usize, n: usize) {
        self.rows = 0;
        let (raw, d, arms) = (model.dim, model.coords(), model.len());
        // A shared model scores its own way ([`Model::prepare`]), row by row.
        if d < MIN_SIDE || n < MIN_SIDE || arms < MIN_SIDE || model.is_shared() {
            return;
        }
        let p = lifted_len(d);
        self.lifted.clear();
        self.encoded.clear();
        for row in block.chunks_exact(width).take(n) {
            model.encode(&row[..raw], &mut self.row_encoded);
            lift(&self.row_encoded, &mut self.row);
            self.encoded.extend_from_slice(&self.row_encoded);
            self.lifted.extend_from_slice(&self.row);
        }
        let (weights, thetas) = model.linear_matrices();
        let lifted = DMatrixView::from_slice_with_strides(&self.lifted, n, p, p, 1);
        let x = DMatrixView::from_slice_with_strides(&self.encoded, n, d, d, 1);
        if self.quads.shape() != (n, arms) {
            self.quads = DMatrix::zeros(n, arms);
            self.means = DMatrix::zeros(n, arms);
        }
        self.quads.gemm(1.0, &lifted, &DMatrixView::from_slice(weights, p, arms), 0.0);
        self.means.gemm(1.0, &x, &DMatrixView::from_slice(thetas, d, arms), 0.0);
        // Widths for the whole block in one pass the compiler vectorises.
        self.quads.as_mut_slice().iter_mut().for_each(|q| *q = q.max(0.0).sqrt());
        self.rows = n;
    }

    /// Readies [`Self::get`] for one row of the block, its raw `context` (encodes and lifts
    /// it on the row-by-row path).
    pub fn start_row(&mut self, model: &Model, context: &[f32]) {
        if self.rows == 0 && model.dim > 0 {
            model.encode(context, &mut self.row_encoded);
            model.prepare(&self.row_encoded, &mut self.row);
        }
    }

    /// (theta'x, sqrt(x' A^-1 x)) of arm `arm` for row `row` of the block.
    pub fn get(&self, model: &Model, row: usize, arm: usize) -> (f64, f64) {
        if self.rows == 0 {
            return model.linear_moments(arm, &self.row_encoded, &self.row);
        }
        let at = arm * self.rows + row; // column-major
        (f64::from(self.means.as_slice()[at]), f64::from(self.quads.as_slice()[at]))
    }
}
