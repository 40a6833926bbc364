//! The probability that a sampled policy (Thompson sampling) picks each arm.
//!
//! Each arm's sampled score has a known law: value x weight times a Beta posterior
//! (`thompson`), or a Gaussian (`gaussian_thompson`, `lin_thompson`). The chance that arm i
//! draws the highest score is
//!
//!   P(i) = integral of prod_{j != i} F_j(x) dF_i(x),
//!
//! which has no closed form. We compute it on one grid over the scores, fine where any arm's
//! density is: every arm contributes points at its mean plus multiples of its standard
//! deviation (denser at the centre, out to where its tail mass is below 1e-12), and near a
//! Beta's infinite density at 0 or 1 geometric points down to 1e-10 of the support. Each
//! arm's CDF is Simpson's integral of its density along the grid (normalised to 1), and
//! P(i) is the Stieltjes sum of the others' product against arm i's CDF steps. Arms with
//! one law (e.g. all untried) are grouped and computed once, and the result is normalised
//! to sum to 1; at low rates and skewed pull counts alike the tests compare it with the
//! sampler's own choice frequencies.
//!
//! Cost grows with arms x grid points where their windows overlap, so a context-free policy
//! keeps a [`WinTable`]: its arms' CDFs on one grid, from which a pick among any eligible
//! subset costs a sum of logs over the pick's window (of the candidates, or of all arms
//! less the few that are not candidates), extrapolated (Richardson) to about 1e-6.

use wide::f64x4;

/// Floor of a reported propensity, so importance weights stay finite.
pub const MIN_PROPENSITY: f64 = 1e-6;

/// The law of one arm's sampled score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreLaw {
    /// `scale` x Beta(alpha, beta).
    Beta {
        alpha: f64,
        beta: f64,
        scale: f64,
    },
    Normal {
        mean: f64,
        std_dev: f64,
    },
}

impl ScoreLaw {
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Beta { alpha, beta, scale } => scale * alpha / (alpha + beta),
            Self::Normal { mean, .. } => mean,
        }
    }

    pub fn std_dev(&self) -> f64 {
        match *self {
            Self::Beta { alpha, beta, scale } => {
                let n = alpha + beta;
                scale.abs() * (alpha * beta / (n * n * (n + 1.0))).sqrt()
            }
            Self::Normal { std_dev, .. } => std_dev.abs(),
        }
    }

    /// A law whose score is one value (no spread).
    fn is_point(&self) -> bool {
        self.std_dev().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    }

    fn bits(&self) -> [u64; 4] {
        match *self {
            Self::Beta { alpha, beta, scale } => [0, alpha.to_bits(), beta.to_bits(), scale.to_bits()],
            Self::Normal { mean, std_dev } => [1, mean.to_bits(), std_dev.to_bits(), 0],
        }
    }
}

/// Standard deviations from the mean beyond which an arm's tail mass is below about 1e-12.
/// A Beta at a low rate has an exponential-like right tail, hence the wider window.
const BETA_REACH: f64 = 25.0;
const NORMAL_REACH: f64 = 9.0;

/// Multiples of the standard deviation where each arm puts grid points (one side; mirrored):
/// a step of 0.25 within 4 standard deviations, coarser in the tails.
const Z_STEPS: [f64; 27] = [
    0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5, 5.0, 5.5, 6.0,
    7.0, 8.0, 10.0, 13.0, 18.0, 25.0,
];

/// Precomputed density of one distinct law over its window.
struct Density {
    law: ScoreLaw,
    lo: f64,
    hi: f64,
    /// log of the density's constant: -ln B(a, b) - ln |s|, or -ln(sd sqrt(2 pi)).
    ln_norm: f64,
    /// The density is infinite at `lo` / at `hi` (a Beta with alpha or beta below 1).
    singular_lo: bool,
    singular_hi: bool,
    /// How many of the input arms have this law.
    copies: usize,
}

impl Density {
    fn new(law: ScoreLaw, copies: usize) -> Self {
        let (m, sd) = (law.mean(), law.std_dev());
        match law {
            ScoreLaw::Beta { alpha, beta, scale } => {
                let (support_lo, support_hi) = if scale >= 0.0 { (0.0, scale) } else { (scale, 0.0) };
                let ln_beta = libm::lgamma(alpha) + libm::lgamma(beta) - libm::lgamma(alpha + beta);
                // The end where the rate is 0 is `lo` for a positive scale.
                let (zero_singular, one_singular) = (alpha < 1.0, beta < 1.0);
                let (singular_lo, singular_hi) =
                    if scale >= 0.0 { (zero_singular, one_singular) } else { (one_singular, zero_singular) };
                Self {
                    law,
                    lo: (m - BETA_REACH * sd).max(support_lo),
                    hi: (m + BETA_REACH * sd).min(support_hi),
                    ln_norm: -ln_beta - scale.abs().ln(),
                    singular_lo: singular_lo && m - BETA_REACH * sd <= support_lo,
                    singular_hi: singular_hi && m + BETA_REACH * sd >= support_hi,
                    copies,
                }
            }
            ScoreLaw::Normal { .. } => Self {
                law,
                lo: m - NORMAL_REACH * sd,
                hi: m + NORMAL_REACH * sd,
                ln_norm: -(sd * (2.0 * std::f64::consts::PI).sqrt()).ln(),
                singular_lo: false,
                singular_hi: false,
                copies,
            },
        }
    }

    /// The density at `x`, inside the support (a singular end gives infinity).
    fn pdf(&self, x: f64) -> f64 {
        match self.law {
            ScoreLaw::Beta { alpha, beta, scale } => {
                let r = (x / scale).clamp(0.0, 1.0);
                // At an end of the support the density is 0, finite, or infinite by the shape there.
                let end_shape = if r == 0.0 {
                    Some(alpha)
                } else if r == 1.0 {
                    Some(beta)
                } else {
                    None
                };
                if let Some(shape) = end_shape {
                    return if shape > 1.0 {
                        0.0
                    } else if shape == 1.0 {
                        self.ln_norm.exp()
                    } else {
                        f64::INFINITY
                    };
                }
                ((alpha - 1.0) * r.ln() + (beta - 1.0) * (-r).ln_1p() + self.ln_norm).exp()
            }
            ScoreLaw::Normal { mean, std_dev } => {
                let z = (x - mean) / std_dev;
                (-0.5 * z * z + self.ln_norm).exp()
            }
        }
    }

    /// The mass between `a` and `b` (a < b), Simpson's rule, or near a singular end the
    /// leading term of the incomplete Beta function.
    fn mass(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        if let ScoreLaw::Beta { alpha, beta, scale } = self.law {
            let (ra, rb) = ((a / scale).clamp(0.0, 1.0), (b / scale).clamp(0.0, 1.0));
            let (r_lo, r_hi) = (ra.min(rb), ra.max(rb));
            let norm = (self.ln_norm + scale.abs().ln()).exp(); // 1 / B(alpha, beta)
            if r_lo == 0.0 && alpha < 1.0 {
                // integral_0^r t^(a-1) (1-t)^(b-1) dt ~ r^a / a (1 - (b-1) a r / (a+1)).
                return norm * r_hi.powf(alpha) / alpha * (1.0 - (beta - 1.0) * alpha * r_hi / (alpha + 1.0));
            }
            if r_hi == 1.0 && beta < 1.0 {
                let q = 1.0 - r_lo;
                return norm * q.powf(beta) / beta * (1.0 - (alpha - 1.0) * beta * q / (beta + 1.0));
            }
        }
        (b - a) / 6.0 * (self.pdf(a) + 4.0 * self.pdf(0.5 * (a + b)) + self.pdf(b))
    }

    /// Grid points this law needs, each with the spacing it needs there.
    fn grid_points(&self, out: &mut Vec<(f64, f64)>) {
        let (m, sd) = (self.law.mean(), self.law.std_dev());
        let reach = match self.law {
            ScoreLaw::Beta { .. } => BETA_REACH,
            ScoreLaw::Normal { .. } => NORMAL_REACH,
        };
        let steps = Z_STEPS.iter().take_while(|&&z| z <= reach);
        for (k, &z) in steps.enumerate() {
            let gap = sd * (Z_STEPS.get(k + 1).copied().unwrap_or(z + 1.0) - z);
            for x in [m - sd * z, m + sd * z] {
                if x > self.lo && x < self.hi {
                    out.push((x, gap));
                }
            }
        }
        // The window's ends, thinned like its finest points: the CDF is right at every grid
        // point either way (its masses run to the true ends), and a catalog of thousands of
        // untried arms would otherwise put every arm's top on the grid.
        out.push((self.lo, Z_STEPS[1] * sd));
        out.push((self.hi, Z_STEPS[1] * sd));
        // Geometric points towards an infinite density, each kept.
        for (end, toward) in [(self.singular_lo, self.lo), (self.singular_hi, self.hi)]
            .into_iter()
            .filter(|(singular, _)| *singular)
            .map(|(_, end)| (end, if end == self.lo { 1.0 } else { -1.0 }))
        {
            let span = (self.hi - self.lo).min(sd);
            for k in 1..=10 {
                out.push((end + toward * span * 10f64.powi(-k), 0.0));
            }
        }
    }
}

/// The grid for `densities` (and fixed scores at `points`): every law's points, thinned
/// where another law's are already dense.
fn build_grid<'a>(densities: impl Iterator<Item = &'a Density>, points: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut candidates = Vec::new();
    for d in densities {
        d.grid_points(&mut candidates);
    }
    candidates.extend(points.map(|v| (v, 0.0)));
    candidates.retain(|&(x, _)| x.is_finite());
    thinned(candidates)
}

/// `points` (each with the spacing it needs there) in order, a point dropped where the last
/// one kept is closer than 0.6 of its spacing.
fn thinned(mut points: Vec<(f64, f64)>) -> Vec<f64> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut grid: Vec<f64> = Vec::with_capacity(points.len());
    for (x, gap) in points {
        match grid.last() {
            Some(&last) if x - last < 0.6 * gap || x == last => {}
            _ => grid.push(x),
        }
    }
    grid
}

/// `coarse` with the midpoint of every interval added: the fine grid of the Richardson step.
fn with_midpoints(coarse: &[f64]) -> Vec<f64> {
    let mut grid = Vec::with_capacity(2 * coarse.len());
    for pair in coarse.windows(2) {
        grid.extend([pair[0], 0.5 * (pair[0] + pair[1])]);
    }
    grid.extend(coarse.last());
    grid
}

/// The law's CDF at the grid points inside its window (`grid[k0..k1]`), normalised so its
/// whole window holds 1.
fn cdf_on_grid(d: &Density, grid: &[f64]) -> (usize, usize, Vec<f64>) {
    let k0 = grid.partition_point(|&x| x < d.lo);
    let k1 = grid.partition_point(|&x| x <= d.hi);
    if let Some(closed) = closed_cdf(d.law) {
        let (at_lo, at_hi) = (closed(d.lo), closed(d.hi));
        let span = at_hi - at_lo;
        if span > 0.0 {
            let cdf = grid[k0..k1].iter().map(|&x| ((closed(x) - at_lo) / span).clamp(0.0, 1.0)).collect();
            return (k0, k1, cdf);
        }
    }
    let mut cdf = Vec::with_capacity(k1.saturating_sub(k0));
    let mut total = 0.0;
    let mut previous = d.lo;
    for &x in &grid[k0..k1] {
        total += d.mass(previous, x);
        cdf.push(total);
        previous = x;
    }
    total += d.mass(previous, d.hi);
    if total > 0.0 {
        cdf.iter_mut().for_each(|c| *c = (*c / total).min(1.0));
    }
    (k0, k1, cdf)
}

/// The Stieltjes sum of `others` (the product of the other arms' CDFs) against the steps of
/// `cdf` (the pick's CDF at the same points; `below` just under the first, 1 above the last):
/// the trapezoid on every point and on every other one (those at even positions counting
/// from `parity`), then Richardson, (4 fine - coarse) / 3, which cancels the h^2 error.
fn richardson_stieltjes(cdf: &[f64], others: &[f64], below: f64, parity: usize) -> f64 {
    let (mut fine, mut c_prev, mut o_prev) = (0.0, below, 0.0);
    let (mut coarse, mut c_even, mut o_even) = (0.0, below, 0.0);
    for (k, (&c, &o)) in cdf.iter().zip(others).enumerate() {
        fine += (c - c_prev) * 0.5 * (o + o_prev);
        (c_prev, o_prev) = (c, o);
        if (k + parity).is_multiple_of(2) {
            coarse += (c - c_even) * 0.5 * (o + o_even);
            (c_even, o_even) = (c, o);
        }
    }
    fine += (1.0 - c_prev) * o_prev;
    coarse += (1.0 - c_even) * o_even;
    ((4.0 * fine - coarse) / 3.0).clamp(0.0, 1.0)
}

/// Standard deviations beyond which a normal CDF counts as 0 or 1 (3e-14 of mass beyond).
const NORMAL_TAIL: f64 = 7.5;

/// P(`laws[pick]` draws the highest score) when every law is a normal with spread (a
/// contextual `lin_thompson` pick): the pick's integral alone, over its own points every
/// quarter standard deviation and the points of narrower competitors, with each competitor's
/// CDF in closed form and competitors surely below the pick's window left out; to about
/// 1e-6. `None` for other laws (integrate them with [`win_probabilities`]).
pub fn normal_win_probability(laws: &[ScoreLaw], pick: usize) -> Option<f64> {
    let spread = |law: &ScoreLaw| match *law {
        ScoreLaw::Normal { mean, std_dev } if std_dev > 0.0 && std_dev.is_finite() => Some((mean, std_dev)),
        _ => None,
    };
    let (m, s) = spread(&laws[pick])?;
    let mut others = Vec::with_capacity(laws.len());
    let mut floor = f64::NEG_INFINITY;
    for (_, law) in laws.iter().enumerate().filter(|&(j, _)| j != pick) {
        let (mj, sj) = spread(law)?;
        floor = floor.max(mj - NORMAL_TAIL * sj);
        others.push((mj, sj));
    }
    let (lo, hi) = ((m - NORMAL_TAIL * s).max(floor), m + NORMAL_TAIL * s);
    if lo >= hi {
        return Some(0.0); // a competitor is surely above all of the pick's draws
    }
    others.retain(|&(mj, sj)| mj + NORMAL_TAIL * sj > lo);
    // The coarse grid: the pick's points, and a narrower competitor's where it rises.
    let step = 0.25 * s;
    let mut points: Vec<(f64, f64)> = Vec::new();
    let first = ((lo - m) / step).ceil() as i64;
    let last = ((hi - m) / step).floor() as i64;
    points.extend((first..=last).map(|k| (m + step * k as f64, step)));
    points.extend([(lo, step), (hi, step)]);
    for &(mj, sj) in others.iter().filter(|&&(_, sj)| sj < 0.5 * s) {
        for z in Z_STEPS.iter().take_while(|&&z| z <= 6.0) {
            for x in [mj - sj * z, mj + sj * z] {
                if x > lo && x < hi {
                    points.push((x, 0.5 * sj));
                }
            }
        }
    }
    let grid = with_midpoints(&thinned(points));
    let phi = |x: f64, mean: f64, sd: f64| 0.5 * libm::erfc((mean - x) / (sd * std::f64::consts::SQRT_2));
    let cdf: Vec<f64> = grid.iter().map(|&x| phi(x, m, s)).collect();
    // Beyond a competitor's tails its CDF is 1 (skipped) or 0 (the product is 0).
    let product: Vec<f64> = grid
        .iter()
        .map(|&x| {
            let mut product = 1.0;
            for &(mj, sj) in &others {
                if x >= mj + NORMAL_TAIL * sj {
                    continue;
                }
                if x <= mj - NORMAL_TAIL * sj {
                    return 0.0;
                }
                product *= phi(x, mj, sj);
            }
            product
        })
        .collect();
    Some(richardson_stieltjes(&cdf, &product, cdf[0], 0))
}

/// The CDF of a Beta score with alpha or beta 1 in closed form: r^alpha, or 1 - (1 - r)^beta
/// (an untried arm under the default prior, or one that never succeeded), which a large
/// catalog has many of; other laws are integrated.
fn closed_cdf(law: ScoreLaw) -> Option<impl Fn(f64) -> f64> {
    let ScoreLaw::Beta { alpha, beta, scale } = law else { return None };
    if (alpha != 1.0 && beta != 1.0) || scale == 0.0 {
        return None;
    }
    Some(move |x: f64| {
        let r = (x / scale).clamp(0.0, 1.0);
        let below = if beta == 1.0 { r.powf(alpha) } else { -(beta * (-r).ln_1p()).exp_m1() };
        // A negative scale turns the rate around: a higher rate is a lower score.
        if scale > 0.0 { below } else { 1.0 - below }
    })
}

/// P(arm i draws the highest score) for every arm in `laws`, exactly (to about 1e-4); ties
/// between arms of one fixed score go to the first of them, as the picker breaks them.
/// Sums to 1.
pub fn win_probabilities(laws: &[ScoreLaw]) -> Vec<f64> {
    let n = laws.len();
    let mut out = vec![0.0; n];
    if n <= 1 {
        out.iter_mut().for_each(|p| *p = 1.0);
        return out;
    }
    // Distinct spread laws (grouped), and the fixed ones.
    let mut distinct: Vec<Density> = Vec::new();
    let mut group_of = vec![usize::MAX; n];
    let mut seen: std::collections::HashMap<[u64; 4], usize> = std::collections::HashMap::new();
    let mut points: Vec<(usize, f64)> = Vec::new();
    for (i, law) in laws.iter().enumerate() {
        if law.is_point() {
            points.push((i, law.mean()));
            continue;
        }
        let g = *seen.entry(law.bits()).or_insert_with(|| {
            distinct.push(Density::new(*law, 0));
            distinct.len() - 1
        });
        distinct[g].copies += 1;
        group_of[i] = g;
    }
    // Below `floor` some arm is almost surely above: nobody wins there.
    let floor = distinct.iter().map(|d| d.lo).chain(points.iter().map(|&(_, v)| v)).fold(f64::NEG_INFINITY, f64::max);
    let relevant: Vec<usize> = (0..distinct.len()).filter(|&g| distinct[g].hi > floor).collect();

    let grid = build_grid(relevant.iter().map(|&g| &distinct[g]), points.iter().map(|&(_, v)| v));
    let k_len = grid.len();
    let mut ranges = Vec::with_capacity(relevant.len());
    let mut cdfs: Vec<Vec<f64>> = Vec::with_capacity(relevant.len());
    for &g in &relevant {
        let (k0, k1, cdf) = cdf_on_grid(&distinct[g], &grid);
        ranges.push((k0, k1));
        cdfs.push(cdf);
    }

    // log of the product of every arm's CDF, and how many arms are surely above, per point.
    let mut log_all = vec![0.0f64; k_len];
    let mut zeros = vec![0usize; k_len];
    for (r, &g) in relevant.iter().enumerate() {
        let copies = distinct[g].copies;
        let (k0, _) = ranges[r];
        zeros[..k0].iter_mut().for_each(|z| *z += copies);
        for (k, &c) in cdfs[r].iter().enumerate() {
            if c > 0.0 {
                log_all[k0 + k] += copies as f64 * c.ln();
            } else {
                zeros[k0 + k] += copies;
            }
        }
    }
    // A fixed score's CDF steps at its grid point: just below it, the product is 0.
    let mut step_at = vec![false; k_len];
    for &(_, v) in &points {
        let below = grid.partition_point(|&x| x < v);
        zeros[..below].iter_mut().for_each(|z| *z += 1);
        if below < k_len {
            step_at[below] = true;
        }
    }
    // The product of all CDFs but one arm with CDF value `c` at point k.
    let others = |k: usize, c: f64| -> f64 {
        let own_zero = usize::from(c <= 0.0);
        if zeros[k] > own_zero {
            return 0.0;
        }
        let log = if c > 0.0 { log_all[k] - c.ln() } else { log_all[k] };
        log.min(0.0).exp()
    };

    let mut group_p = vec![0.0; distinct.len()];
    for (r, &g) in relevant.iter().enumerate() {
        let (k0, _) = ranges[r];
        let cdf = &cdfs[r];
        let mut p = 0.0;
        let (mut c_prev, mut o_prev) = (0.0, 0.0);
        for (k, &c) in cdf.iter().enumerate() {
            let o = others(k0 + k, c);
            let o_left = if step_at[k0 + k] { 0.0 } else { o };
            p += (c - c_prev) * 0.5 * (o_left + o_prev);
            (c_prev, o_prev) = (c, o);
        }
        p += (1.0 - c_prev) * o_prev; // the tail above the last grid point
        group_p[g] = p;
    }
    for i in 0..n {
        if group_of[i] != usize::MAX {
            out[i] = group_p[group_of[i]];
        }
    }
    // A fixed score wins if every spread arm is below it, no fixed score is above it, and no
    // earlier arm has the same fixed score.
    for (rank, &(i, v)) in points.iter().enumerate() {
        let beaten = points.iter().enumerate().any(|(r, &(_, w))| w > v || (w == v && r < rank));
        if beaten {
            continue;
        }
        let k = grid.partition_point(|&x| x < v).min(k_len.saturating_sub(1));
        let mut p = 1.0;
        for (r, &g) in relevant.iter().enumerate() {
            let (k0, k1) = ranges[r];
            let c = if k < k0 {
                0.0
            } else if k >= k1 {
                1.0
            } else {
                cdfs[r][k - k0]
            };
            p *= c.powi(distinct[g].copies as i32);
        }
        out[i] = p;
    }
    let total: f64 = out.iter().sum();
    if total > 0.0 {
        out.iter_mut().for_each(|p| *p /= total);
    }
    out
}

/// Every arm of one policy laid out on one grid, with its CDF there: the chance that a pick
/// wins among any eligible subset is then a sum of logs over the pick's window and a
/// Stieltjes sum, with no density evaluated, so a batch whose rows have different eligible
/// offers pays little for exact propensities. An arm that learns gets its CDF again on the
/// same grid while the grid still resolves it (its spread within [0.7, 1.5] of the one laid
/// out for, its mean within half of that spread); otherwise the table is laid out afresh.
#[derive(Clone)]
pub struct WinTable {
    grid: Vec<f64>,
    arms: Vec<TableArm>,
    /// Every arm's log-CDF summed at each grid point, the finite terms in `log_all` and the
    /// arms whose CDF is 0 there counted in `zeros_all`: a pick among most of the arms takes
    /// away the few that are not candidates instead of adding up the many that are.
    log_all: Vec<f64>,
    zeros_all: Vec<i32>,
    /// Updates since `log_all` was last summed afresh (each one adds rounding error).
    updates: usize,
    /// Each arm's `(rises, k0, full)`, side by side: a pick reads them for every arm.
    spans: Vec<(usize, usize, usize)>,
}

#[derive(Clone)]
struct TableArm {
    law: ScoreLaw,
    laid_out_for: ScoreLaw,
    /// The CDF at `grid[k0..]`; 0 below, 1 above.
    k0: usize,
    cdf: Vec<f64>,
    ln_cdf: Vec<f64>,
    /// Where the CDF leaves 0 and where it reaches 1 (to 1e-12): outside, the sums skip it.
    rises: usize,
    full: usize,
    /// The first grid point where the CDF is above 0 (its log finite).
    positive: usize,
    /// A fixed score (its law has no spread).
    point: bool,
}

/// A CDF within this of 0 or 1 counts as 0 or 1 in [`WinTable`]'s sums.
const NEGLIGIBLE: f64 = 1e-12;

impl TableArm {
    fn new(law: ScoreLaw, laid_out_for: ScoreLaw, grid: &[f64]) -> Self {
        if law.is_point() {
            // A fixed score: its CDF steps to 1 at its grid point (the grid holds it).
            let k0 = grid.partition_point(|&x| x < law.mean()).min(grid.len().saturating_sub(1));
            return Self {
                law,
                laid_out_for,
                k0,
                cdf: vec![1.0],
                ln_cdf: vec![0.0],
                rises: k0 + 1,
                full: k0 + 1,
                positive: k0,
                point: true,
            };
        }
        let (k0, k1, cdf) = cdf_on_grid(&Density::new(law, 1), grid);
        let ln_cdf = cdf.iter().map(|c| c.ln()).collect();
        let rises = k0 + cdf.partition_point(|&c| c <= NEGLIGIBLE);
        let full = k0 + cdf.partition_point(|&c| c < 1.0 - NEGLIGIBLE);
        let positive = k0 + cdf.partition_point(|&c| c <= 0.0);
        Self { law, laid_out_for, k0, cdf, ln_cdf, rises, full: (full + 1).min(k1), positive, point: false }
    }

    /// Adds (`sign` 1) or takes away (-1) this arm's log-CDF over the grid points `lo..hi`
    /// to the sums `log` (its finite values) and `zeros` (where it is 0), which start at
    /// grid point `offset`. Only the points `k0..full` hold anything: elsewhere the CDF is 1
    /// or already counted as surely below a candidate (see `rises`).
    fn accumulate(&self, log: &mut [f64], zeros: &mut [i32], offset: usize, (lo, hi): (usize, usize), sign: i32) {
        let (lo, hi) = (lo.max(self.k0), hi.min(self.full));
        if lo >= hi {
            return;
        }
        let split = self.positive.clamp(lo, hi);
        zeros[lo - offset..split - offset].iter_mut().for_each(|z| *z += sign);
        let factor = f64::from(sign);
        let terms = &self.ln_cdf[split - self.k0..hi - self.k0];
        for (l, &t) in log[split - offset..hi - offset].iter_mut().zip(terms) {
            *l += factor * t;
        }
    }
}

/// Updates after which [`WinTable`] sums its logs afresh.
const RESUM_AFTER: usize = 256;

impl WinTable {
    /// A table of `laws` (one per arm).
    pub fn new(laws: &[ScoreLaw]) -> Self {
        let densities: Vec<Density> = laws.iter().filter(|l| !l.is_point()).map(|&law| Density::new(law, 1)).collect();
        let points = laws.iter().filter(|l| l.is_point()).map(ScoreLaw::mean);
        // Every other point is the grid as laid out; the sums below run on both spacings
        // and extrapolate (Richardson), cancelling the trapezoid's h^2 error.
        let grid = with_midpoints(&build_grid(densities.iter(), points));
        let arms = laws.iter().map(|&law| TableArm::new(law, law, &grid)).collect();
        let mut table = Self { grid, arms, log_all: Vec::new(), zeros_all: Vec::new(), updates: 0, spans: Vec::new() };
        table.sum_all();
        table
    }

    fn sum_all(&mut self) {
        let n = self.grid.len();
        self.log_all = vec![0.0; n];
        self.zeros_all = vec![0; n];
        for arm in &self.arms {
            arm.accumulate(&mut self.log_all, &mut self.zeros_all, 0, (0, n), 1);
        }
        self.updates = 0;
        self.spans = self.arms.iter().map(|a| (a.rises, a.k0, a.full)).collect();
    }

    pub fn law(&self, arm: usize) -> ScoreLaw {
        self.arms[arm].law
    }

    /// Brings `arm` to `law`; false when the grid no longer resolves it (lay out afresh).
    pub fn update(&mut self, arm: usize, law: ScoreLaw) -> bool {
        let entry = &self.arms[arm];
        if entry.law == law {
            return true;
        }
        let (m0, s0) = (entry.laid_out_for.mean(), entry.laid_out_for.std_dev());
        let (m, s) = (law.mean(), law.std_dev());
        let fits = !law.is_point() && s >= 0.7 * s0 && s <= 1.5 * s0 && (m - m0).abs() <= 0.5 * s0;
        if fits {
            let n = self.grid.len();
            let new = TableArm::new(law, entry.laid_out_for, &self.grid);
            let old = std::mem::replace(&mut self.arms[arm], new);
            self.spans[arm] = (self.arms[arm].rises, self.arms[arm].k0, self.arms[arm].full);
            self.updates += 1;
            if self.updates >= RESUM_AFTER {
                self.sum_all();
            } else {
                old.accumulate(&mut self.log_all, &mut self.zeros_all, 0, (0, n), -1);
                self.arms[arm].accumulate(&mut self.log_all, &mut self.zeros_all, 0, (0, n), 1);
            }
        }
        fits
    }

    /// P(arm `candidates[pick]` draws the highest score among `candidates`).
    pub fn win_probability(&self, candidates: &[usize], pick: usize) -> f64 {
        let k = candidates[pick];
        let me = &self.arms[k];
        // Below the highest point where a candidate's CDF rises, someone is surely above.
        let start = candidates.iter().map(|&j| self.spans[j].0.saturating_sub(1)).max().unwrap_or(0);
        if me.point {
            // It wins if every other candidate is below its score; a tie goes to the first.
            let (v, g) = (me.law.mean(), me.k0);
            let tied_before = candidates[..pick].iter().any(|&j| self.arms[j].point && self.arms[j].law.mean() == v);
            if tied_before || start > g {
                return 0.0;
            }
            let log: f64 = candidates
                .iter()
                .filter(|&&j| j != k)
                .map(|&j| {
                    let other = &self.arms[j];
                    if g >= other.k0 && g < other.full { other.ln_cdf[g - other.k0] } else { 0.0 }
                })
                .sum();
            return log.min(0.0).exp();
        }
        let (lo, hi) = (me.k0.max(start), me.full);
        if lo >= hi {
            return 0.0; // another candidate is almost surely above all of this one's draws
        }
        let others = self.others_product(candidates, k, (lo, hi));
        // Trapezoid Stieltjes sums on the fine grid and on its even points (the grid as laid
        // out), then Richardson: (4 fine - coarse) / 3.
        // A fixed score stepping at `lo`: just below it the product is 0, so the first
        // interval adds nothing.
        let step_at_lo = candidates.iter().any(|&j| self.arms[j].point && self.arms[j].k0 == lo);
        let below = if step_at_lo {
            me.cdf[lo - me.k0]
        } else if lo > me.k0 {
            me.cdf[lo - 1 - me.k0]
        } else {
            0.0
        };
        richardson_stieltjes(&me.cdf[lo - me.k0..hi - me.k0], &others, below, lo % 2)
    }

    /// The product of every candidate's CDF but `pick`'s at the grid points `lo..hi`, from
    /// the sum of their logs: over the candidates, or, when most arms are candidates, over
    /// every arm less the arms that are not.
    fn others_product(&self, candidates: &[usize], pick: usize, (lo, hi): (usize, usize)) -> Vec<f64> {
        let mut log = vec![0.0f64; hi - lo];
        let mut zeros = vec![0i32; hi - lo];
        let touches = |j: usize| {
            let (_, k0, full) = self.spans[j];
            k0 < hi && full > lo && k0 < full
        };
        // Arms that change the product in the window: among the candidates, and in all.
        let in_candidates = candidates.iter().filter(|&&j| j != pick && touches(j)).count();
        let in_all = (0..self.arms.len()).filter(|&j| touches(j)).count();
        if in_candidates <= in_all - in_candidates {
            for &j in candidates.iter().filter(|&&j| j != pick && touches(j)) {
                self.arms[j].accumulate(&mut log, &mut zeros, lo, (lo, hi), 1);
            }
        } else {
            log.copy_from_slice(&self.log_all[lo..hi]);
            zeros.copy_from_slice(&self.zeros_all[lo..hi]);
            let mut candidate = vec![false; self.arms.len()];
            candidates.iter().for_each(|&j| candidate[j] = true);
            candidate[pick] = false;
            for j in (0..self.arms.len()).filter(|&j| !candidate[j] && touches(j)) {
                self.arms[j].accumulate(&mut log, &mut zeros, lo, (lo, hi), -1);
            }
        }
        // exp four lanes at a time; below e^-700 the product counts as 0 anyway.
        let (floor, top) = (f64x4::splat(-700.0), f64x4::ZERO);
        let mut lanes = log.chunks_exact_mut(4);
        for lane in &mut lanes {
            let x = f64x4::from([lane[0], lane[1], lane[2], lane[3]]);
            lane.copy_from_slice(&x.min(top).max(floor).exp().to_array());
        }
        for x in lanes.into_remainder() {
            *x = x.clamp(-700.0, 0.0).exp();
        }
        for (o, &z) in log.iter_mut().zip(&zeros) {
            if z > 0 {
                *o = 0.0;
            }
        }
        log
    }
}

#[cfg(test)]
mod tests;
