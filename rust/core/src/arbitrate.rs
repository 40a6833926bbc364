//! Arbitration inside one placement: sample each eligible arm's score (sampled response
//! rate x value x weight), fill the slots best-first with at most one offer per exclusion
//! group, and give each pick the probability the policy had of making it.

use rand::Rng;

use crate::policy::{ArmScore, ThompsonArm, win_probability};

/// What arbitration needs to know about each offer of a placement (by local index).
pub struct ArmView<'a> {
    pub arms: &'a [ThompsonArm],
    /// value x weight.
    pub scale: &'a [f64],
    pub group: &'a [Option<usize>],
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// Index of the offer within its placement.
    pub local: usize,
    pub score: f64,
    pub propensity: f64,
}

/// Reusable buffers, so a batch allocates once per thread rather than once per profile.
pub struct Workspace {
    scores: Vec<f64>,
    taken: Vec<bool>,
    competitors: Vec<ArmScore>,
    pub picks: Vec<Pick>,
    /// At most this many offers of one exclusion group per decision (and page).
    pub group_limit: usize,
    /// Exclusion groups already filled by earlier placements of the same page.
    pub page_groups: Vec<usize>,
    /// (group, offers of it this decision may still add), from the contact policy's group caps.
    pub group_room: Vec<(usize, usize)>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            scores: Vec::new(),
            taken: Vec::new(),
            competitors: Vec::new(),
            picks: Vec::new(),
            group_limit: 1,
            page_groups: Vec::new(),
            group_room: Vec::new(),
        }
    }
}

impl Workspace {
    /// The sampled score of the `k`-th eligible offer, after [`choose`].
    pub fn score_of(&self, k: usize) -> f64 {
        self.scores[k]
    }
}

/// Chooses up to `slots` offers among `eligible` (local indices) into `ws.picks`. Without
/// `propensities` the picks' propensity is NaN and its cost is saved.
pub fn choose<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    eligible: &[usize],
    slots: usize,
    propensities: bool,
    rng: &mut R,
    ws: &mut Workspace,
) {
    ws.scores.clear();
    ws.scores.extend(eligible.iter().map(|&i| view.arms[i].sample(rng) * view.scale[i]));
    fill_slots(view, eligible, slots, ws, |ws, b| {
        if propensities { propensity_at_slot(view, eligible, b, ws) } else { f64::NAN }
    });
}

/// The non-personalized default (a holdout's treatment): the eligible offers of highest
/// value x weight, deterministically, so each pick's propensity is 1.
pub fn choose_by_value(view: &ArmView<'_>, eligible: &[usize], slots: usize, ws: &mut Workspace) {
    ws.scores.clear();
    ws.scores.extend(eligible.iter().map(|&i| view.scale[i]));
    fill_slots(view, eligible, slots, ws, |_, _| 1.0);
}

/// Fills the slots best score first, one exclusion group at a time within its limits.
fn fill_slots(
    view: &ArmView<'_>,
    eligible: &[usize],
    slots: usize,
    ws: &mut Workspace,
    propensity: impl Fn(&mut Workspace, usize) -> f64,
) {
    ws.picks.clear();
    ws.taken.clear();
    ws.taken.resize(eligible.len(), false);
    for _ in 0..slots {
        let mut best: Option<usize> = None;
        for k in 0..eligible.len() {
            if available(view, eligible, ws, k) && best.is_none_or(|b| ws.scores[k] > ws.scores[b]) {
                best = Some(k);
            }
        }
        let Some(b) = best else { break };
        let p = propensity(ws, b);
        ws.taken[b] = true;
        ws.picks.push(Pick { local: eligible[b], score: ws.scores[b], propensity: p });
    }
}

/// The chance that eligible offer `b` wins against what is still available at this slot.
fn propensity_at_slot(view: &ArmView<'_>, eligible: &[usize], b: usize, ws: &mut Workspace) -> f64 {
    let mut competitors = std::mem::take(&mut ws.competitors);
    competitors.clear();
    for k in 0..eligible.len() {
        if k != b && available(view, eligible, ws, k) {
            let i = eligible[k];
            competitors.push(view.arms[i].score(view.scale[i]));
        }
    }
    let local = eligible[b];
    let p = win_probability(view.arms[local].score(view.scale[local]), &competitors);
    ws.competitors = competitors;
    p
}

fn available(view: &ArmView<'_>, eligible: &[usize], ws: &Workspace, k: usize) -> bool {
    if ws.taken[k] {
        return false;
    }
    match view.group[eligible[k]] {
        Some(g) => {
            let on_page = ws.page_groups.iter().filter(|&&x| x == g).count();
            let here = ws.picks.iter().filter(|p| view.group[p.local] == Some(g)).count();
            let room = ws.group_room.iter().filter(|(x, _)| *x == g).map(|(_, r)| *r).min().unwrap_or(usize::MAX);
            on_page + here < ws.group_limit && here < room
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn arms(rates: &[(f64, f64)]) -> Vec<ThompsonArm> {
        rates.iter().map(|&(a, b)| ThompsonArm::new(a, b)).collect()
    }

    #[test]
    fn fills_slots_best_first_one_per_group() {
        let arms = arms(&[(900.0, 100.0), (800.0, 200.0), (500.0, 500.0), (100.0, 900.0)]);
        let view = ArmView { arms: &arms, scale: &[1.0; 4], group: &[Some(0), Some(0), None, None] };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let mut ws = Workspace::default();
        choose(&view, &[0, 1, 2, 3], 3, true, &mut rng, &mut ws);
        let picked: Vec<usize> = ws.picks.iter().map(|p| p.local).collect();
        assert_eq!(picked, [0, 2, 3], "offer 1 shares offer 0's group");
        assert!(ws.picks[0].propensity > 0.99 && ws.picks[2].propensity > 0.99);
    }

    #[test]
    fn value_and_weight_scale_the_score() {
        let arms = arms(&[(100.0, 900.0), (300.0, 700.0)]);
        let view = ArmView { arms: &arms, scale: &[10.0, 1.0], group: &[None, None] };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(2);
        let mut ws = Workspace::default();
        choose(&view, &[0, 1], 1, true, &mut rng, &mut ws);
        assert_eq!(ws.picks[0].local, 0, "0.1 x 10 beats 0.3 x 1");
    }

    #[test]
    fn propensity_matches_choice_frequency() {
        let arms = arms(&[(12.0, 88.0), (10.0, 90.0), (8.0, 92.0)]);
        let view = ArmView { arms: &arms, scale: &[1.0; 3], group: &[None; 3] };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let mut ws = Workspace::default();
        let mut wins = [0usize; 3];
        let mut claimed = [0.0f64; 3];
        let draws = 20_000;
        for _ in 0..draws {
            choose(&view, &[0, 1, 2], 1, true, &mut rng, &mut ws);
            wins[ws.picks[0].local] += 1;
            claimed[ws.picks[0].local] = ws.picks[0].propensity;
        }
        for i in 0..3 {
            let observed = wins[i] as f64 / f64::from(draws);
            assert!((observed - claimed[i]).abs() < 0.03, "arm {i}: observed {observed}, propensity {}", claimed[i]);
        }
    }
}
