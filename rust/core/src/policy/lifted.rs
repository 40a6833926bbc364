//! x' A^-1 x as one dot product: with A^-1 symmetric, x' A^-1 x = sum over r <= c of
//! w_rc * x_r x_c, where w holds A^-1's upper triangle with the off-diagonal doubled. The
//! "lifted" context holds the products x_r x_c. Half the multiplications of A^-1 x, and a
//! batch becomes one matrix product (contexts x lifted length) * (lifted length x arms).

/// Length of a lifted context of `dim` features.
pub fn lifted_len(dim: usize) -> usize {
    dim * (dim + 1) / 2
}

/// The products x_r x_c (r <= c), row by row, into `out`.
pub fn lift(x: &[f32], out: &mut Vec<f32>) {
    out.clear();
    for (r, &xr) in x.iter().enumerate() {
        out.extend(x[r..].iter().map(|&xc| xr * xc));
    }
}

/// A^-1's upper triangle in [`lift`]'s order, off-diagonal entries doubled.
pub fn weights(a_inv: &nalgebra::DMatrix<f64>, out: &mut [f32]) {
    let d = a_inv.nrows();
    let mut k = 0;
    for r in 0..d {
        for c in r..d {
            let w = if r == c { a_inv[(r, c)] } else { a_inv[(r, c)] + a_inv[(c, r)] };
            out[k] = w as f32;
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifted_dot_is_the_quadratic_form() {
        let a = nalgebra::DMatrix::from_row_slice(3, 3, &[2.0, 0.5, -0.1, 0.5, 1.0, 0.3, -0.1, 0.3, 3.0]);
        let x = [0.7f32, -1.2, 0.4];
        let mut w = vec![0.0; lifted_len(3)];
        weights(&a, &mut w);
        let mut lifted = Vec::new();
        lift(&x, &mut lifted);
        let fast: f32 = w.iter().zip(&lifted).map(|(a, b)| a * b).sum();
        let xv = nalgebra::DVector::from_iterator(3, x.iter().map(|&v| f64::from(v)));
        let exact = xv.dot(&(&a * &xv));
        assert!((f64::from(fast) - exact).abs() < 1e-5, "{fast} vs {exact}");
    }
}
