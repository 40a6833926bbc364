//! Budget-aware allocation for batch campaigns: give each profile up to `slots` offers so
//! that the total score is as high as possible while no offer exceeds its capacity.
//!
//! Greedy by score lets the first strong offer eat its budget on profiles that had nearly
//! as good alternatives. We price offers instead (Lagrangian duals): each round, every
//! offer's price is set to the market-clearing value at which only `capacity` profiles still
//! prefer it over their best alternative, damped; profiles then take offers by score minus
//! price. A final greedy pass over price-adjusted scores makes the result exactly feasible.

use rayon::prelude::*;

/// One profile's candidates: (offer, score), score > 0.
pub type Candidates = Vec<(u32, f64)>;

const ROUNDS: usize = 30;
const DAMPING: f64 = 0.5;

/// Prices per offer after [`ROUNDS`] rounds of market clearing.
pub fn prices(rows: &[Candidates], capacity: &[u64], slots: usize) -> Vec<f64> {
    let mut price = vec![0.0; capacity.len()];
    for round in 0..=ROUNDS {
        // Damped rounds settle the prices; the last one clears each market exactly.
        let damping = if round == ROUNDS { 1.0 } else { DAMPING };
        // For every (profile, offer) pair: the price below which the profile takes the offer.
        let mut margins: Vec<Vec<f64>> = vec![Vec::new(); capacity.len()];
        let per_row: Vec<Vec<(u32, f64)>> = rows.par_iter().map(|row| row_margins(row, &price, slots)).collect();
        for row in per_row {
            for (offer, margin) in row {
                margins[offer as usize].push(margin);
            }
        }
        for (j, m) in margins.iter_mut().enumerate() {
            let cap = capacity[j] as usize;
            let clearing = if m.len() > cap {
                // The (cap + 1)-th largest margin: above it at most `cap` profiles want the offer.
                let (_, nth, _) = m.select_nth_unstable_by(cap, |a, b| b.total_cmp(a));
                // Just above the marginal profile's margin, so it takes its alternative.
                let marginal = nth.max(0.0);
                marginal + 1e-9 * (1.0 + marginal)
            } else {
                0.0
            };
            price[j] += damping * (clearing - price[j]);
        }
    }
    price
}

/// For each candidate offer: score minus the `slots`-th best price-adjusted alternative (or 0).
fn row_margins(row: &Candidates, price: &[f64], slots: usize) -> Vec<(u32, f64)> {
    let mut adjusted: Vec<f64> = row.iter().map(|&(j, s)| s - price[j as usize]).collect();
    adjusted.sort_unstable_by(|a, b| b.total_cmp(a));
    row.iter()
        .map(|&(j, s)| {
            let own = s - price[j as usize];
            // Best alternatives without this offer: drop one copy of its own adjusted value.
            let mut skipped = false;
            let alternative = adjusted
                .iter()
                .filter(|&&v| {
                    if !skipped && v == own {
                        skipped = true;
                        false
                    } else {
                        true
                    }
                })
                .nth(slots - 1)
                .copied()
                .unwrap_or(0.0)
                .max(0.0);
            (j, s - alternative)
        })
        .filter(|&(_, m)| m > 0.0)
        .collect()
}

/// Exclusion groups of offers: at most `limit` offers of one group per profile.
pub struct Groups<'a> {
    pub of: &'a [Option<usize>],
    pub limit: usize,
}

impl Groups<'_> {
    pub const NONE: Groups<'static> = Groups { of: &[], limit: usize::MAX };

    fn allows(&self, row: &[u32], offer: u32) -> bool {
        match self.of.get(offer as usize).copied().flatten() {
            Some(g) => row.iter().filter(|&&j| self.of[j as usize] == Some(g)).count() < self.limit,
            None => true,
        }
    }
}

/// Assigns offers: by price-adjusted score, best pairs first, within capacities, slots and
/// group limits. Returns, per row, the chosen offers in slot order (by raw score).
pub fn assign(
    rows: &[Candidates],
    capacity: &[u64],
    slots: usize,
    price: &[f64],
    groups: &Groups<'_>,
) -> Vec<Vec<u32>> {
    let mut pairs: Vec<(f64, u32, u32)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().map(move |&(j, s)| (s - price[j as usize], i as u32, j)))
        .collect();
    pairs.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut left: Vec<u64> = capacity.to_vec();
    let mut chosen: Vec<Vec<u32>> = vec![Vec::new(); rows.len()];
    for (_, i, j) in pairs {
        let row = &mut chosen[i as usize];
        if row.len() < slots && left[j as usize] > 0 && groups.allows(row, j) {
            left[j as usize] -= 1;
            row.push(j);
        }
    }
    for (row, candidates) in chosen.iter_mut().zip(rows) {
        let score = |j: &u32| candidates.iter().find(|(k, _)| k == j).map_or(0.0, |c| c.1);
        row.sort_by(|a, b| score(b).total_cmp(&score(a)));
    }
    chosen
}

/// The plain baseline: best raw score first.
pub fn greedy(rows: &[Candidates], capacity: &[u64], slots: usize, groups: &Groups<'_>) -> Vec<Vec<u32>> {
    assign(rows, capacity, slots, &vec![0.0; capacity.len()], groups)
}

/// Prices, then assignment.
pub fn allocate(rows: &[Candidates], capacity: &[u64], slots: usize, groups: &Groups<'_>) -> Vec<Vec<u32>> {
    assign(rows, capacity, slots, &prices(rows, capacity, slots), groups)
}

#[cfg(test)]
fn total(rows: &[Candidates], chosen: &[Vec<u32>]) -> f64 {
    rows.iter()
        .zip(chosen)
        .map(|(row, picks)| picks.iter().map(|j| row.iter().find(|(k, _)| k == j).map_or(0.0, |c| c.1)).sum::<f64>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_steer_profiles_to_their_alternatives() {
        // Two profiles, offer 0 has room for one. Profile 0 has a good alternative, 1 has none:
        // greedy gives offer 0 to profile 0 (score 10 > 9) and leaves profile 1 empty.
        let rows = vec![vec![(0, 10.0), (1, 8.0)], vec![(0, 9.0)]];
        let capacity = [1, 5];
        assert_eq!(total(&rows, &greedy(&rows, &capacity, 1, &Groups::NONE)), 10.0);
        let chosen = allocate(&rows, &capacity, 1, &Groups::NONE);
        assert_eq!(chosen, vec![vec![1], vec![0]]);
        assert_eq!(total(&rows, &chosen), 17.0);
    }

    #[test]
    fn capacities_and_slots_always_hold() {
        let rows: Vec<Candidates> =
            (0..500).map(|i| (0..6).map(|j| (j, f64::from((i * 7 + j * 13) % 17 + 1))).collect()).collect();
        let capacity = [10, 50, 0, 100, 3, 1000];
        let chosen = allocate(&rows, &capacity, 2, &Groups::NONE);
        let mut used = [0u64; 6];
        for row in &chosen {
            assert!(row.len() <= 2);
            let mut unique = row.clone();
            unique.dedup();
            assert_eq!(unique.len(), row.len());
            row.iter().for_each(|&j| used[j as usize] += 1);
        }
        assert!(used.iter().zip(capacity).all(|(u, c)| *u <= c), "{used:?}");
        assert!(total(&rows, &chosen) >= total(&rows, &greedy(&rows, &capacity, 2, &Groups::NONE)));
    }
}
