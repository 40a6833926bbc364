//! Arbitration inside one placement: the policy scores each eligible arm (its estimate or
//! sample x value x weight), the slots fill one at a time by the policy's rule (best score,
//! epsilon-greedy, softmax) with at most the allowed offers per exclusion group, and each
//! pick gets the probability the policy had of making it.

use rand::{Rng, RngExt};

use crate::policy::{ArmScore, Model, Picker, lift, win_probability};

/// What arbitration needs to know about each offer of a placement (by local index).
pub struct ArmView<'a> {
    pub model: &'a Model,
    /// The feature columns the model reads, in order (empty: context-free).
    pub columns: &'a [usize],
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
    /// Gaussian summary of each eligible offer's score, for sampled policies.
    moments: Vec<ArmScore>,
    taken: Vec<bool>,
    competitors: Vec<ArmScore>,
    candidates: Vec<usize>,
    context: Vec<f32>,
    lifted: Vec<f32>,
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
            moments: Vec::new(),
            taken: Vec::new(),
            competitors: Vec::new(),
            candidates: Vec::new(),
            context: Vec::new(),
            lifted: Vec::new(),
            picks: Vec::new(),
            group_limit: 1,
            page_groups: Vec::new(),
            group_room: Vec::new(),
        }
    }
}

impl Workspace {
    /// The score of the `k`-th eligible offer, after [`choose`].
    pub fn score_of(&self, k: usize) -> f64 {
        self.scores[k]
    }
}

/// Chooses up to `slots` offers among `eligible` (local indices) into `ws.picks`, given the
/// profile's `features` (a contextual policy reads its columns). Without `propensities` the
/// propensities of sampled policies are NaN and their cost is saved.
pub fn choose<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    features: &[f32],
    eligible: &[usize],
    slots: usize,
    propensities: bool,
    rng: &mut R,
    ws: &mut Workspace,
) {
    // The context and its lifted products live in the workspace, reused across a batch.
    let (mut context, mut lifted) = (std::mem::take(&mut ws.context), std::mem::take(&mut ws.lifted));
    context.clear();
    context.extend(view.columns.iter().map(|&c| features[c]));
    if !context.is_empty() {
        lift(&context, &mut lifted);
    }
    choose_with(view, eligible, slots, propensities, rng, ws, |scores, moments, rng| {
        let linear = |i| view.model.linear_moments(i, &context, &lifted);
        view.model.score_with(eligible, view.scale, linear, rng, scores, moments)
    });
    (ws.context, ws.lifted) = (context, lifted);
}

/// [`choose`] with the scoring step given: `score` fills the eligible offers' scores (and
/// Gaussian moments, for sampled policies) and says how to pick from them.
pub fn choose_with<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    eligible: &[usize],
    slots: usize,
    propensities: bool,
    rng: &mut R,
    ws: &mut Workspace,
    score: impl FnOnce(&mut Vec<f64>, &mut Vec<ArmScore>, &mut R) -> Picker,
) {
    let picker = score(&mut ws.scores, &mut ws.moments, rng);
    let unconstrained = ws.group_room.is_empty() && ws.page_groups.is_empty() && ws.group_limit >= 1;
    if slots == 1 && picker == Picker::Greedy && unconstrained {
        best_of_all(eligible, ws, rng);
        return;
    }
    fill_slots(view, eligible, slots, ws, rng, |ws, b, rng| pick_at_slot(ws, picker, b, propensities, rng));
}

/// One slot, every eligible offer available, the best score wins: what [`fill_slots`] with
/// the greedy rule does then (same ties, same draws), in one pass.
fn best_of_all<R: Rng + ?Sized>(eligible: &[usize], ws: &mut Workspace, rng: &mut R) {
    ws.picks.clear();
    let Some(top) = ws.scores.iter().copied().reduce(f64::max) else { return };
    let ties = ws.scores.iter().filter(|&&s| s == top).count();
    let nth = if ties > 1 { rng.random_range(0..ties) } else { 0 };
    let k = ws.scores.iter().enumerate().filter(|&(_, &s)| s == top).nth(nth).map_or(0, |(k, _)| k);
    ws.picks.push(Pick { local: eligible[k], score: ws.scores[k], propensity: 1.0 / ties as f64 });
}

/// The non-personalized default (a holdout's treatment): the eligible offers of highest
/// value x weight, deterministically, so each pick's propensity is 1.
pub fn choose_by_value<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    eligible: &[usize],
    slots: usize,
    rng: &mut R,
    ws: &mut Workspace,
) {
    ws.scores.clear();
    ws.scores.extend(eligible.iter().map(|&i| view.scale[i]));
    fill_slots(view, eligible, slots, ws, rng, |ws, best, _| (ws.candidates[best], 1.0));
}

/// Fills the slots one at a time: `pick` gets the available candidates (in
/// `ws.candidates`) and the position of the best-scored one, and returns the eligible
/// position it picks with that pick's probability.
fn fill_slots<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    eligible: &[usize],
    slots: usize,
    ws: &mut Workspace,
    rng: &mut R,
    pick: impl Fn(&mut Workspace, usize, &mut R) -> (usize, f64),
) {
    ws.picks.clear();
    ws.taken.clear();
    ws.taken.resize(eligible.len(), false);
    ws.candidates.reserve(eligible.len());
    for _ in 0..slots {
        ws.candidates.clear();
        let mut best: Option<usize> = None;
        for k in 0..eligible.len() {
            if available(view, eligible, ws, k) {
                if best.is_none_or(|b| ws.scores[k] > ws.scores[ws.candidates[b]]) {
                    best = Some(ws.candidates.len());
                }
                ws.candidates.push(k);
            }
        }
        let Some(best) = best else { break };
        let (k, propensity) = pick(ws, best, rng);
        ws.taken[k] = true;
        ws.picks.push(Pick { local: eligible[k], score: ws.scores[k], propensity });
    }
}

/// One slot's pick among `ws.candidates` (positions in `eligible`), `best` the candidate
/// with the highest score, and the probability the policy had of making it.
fn pick_at_slot<R: Rng + ?Sized>(
    ws: &mut Workspace,
    picker: Picker,
    best: usize,
    propensities: bool,
    rng: &mut R,
) -> (usize, f64) {
    let n = ws.candidates.len();
    match picker {
        Picker::Sampled => {
            let k = ws.candidates[best];
            let p = if propensities { sampled_win_probability(ws, k) } else { f64::NAN };
            (k, p)
        }
        Picker::Greedy => {
            let (k, ties) = break_ties(ws, best, rng);
            (k, 1.0 / ties as f64)
        }
        Picker::EpsilonGreedy(epsilon) => {
            let (greedy, ties) = break_ties(ws, best, rng);
            let k = if rng.random::<f64>() < epsilon { ws.candidates[rng.random_range(0..n)] } else { greedy };
            let top = ws.scores[ws.candidates[best]];
            let is_top = ws.scores[k] == top;
            let p = epsilon / n as f64 + if is_top { (1.0 - epsilon) / ties as f64 } else { 0.0 };
            (k, p)
        }
        Picker::Softmax(temperature) => {
            let top = ws.scores[ws.candidates[best]];
            let weight = |s: f64| ((s - top) / temperature).exp();
            let total: f64 = ws.candidates.iter().map(|&k| weight(ws.scores[k])).sum();
            let mut target = rng.random::<f64>() * total;
            let mut chosen = ws.candidates[n - 1];
            for &k in &ws.candidates {
                target -= weight(ws.scores[k]);
                if target <= 0.0 {
                    chosen = k;
                    break;
                }
            }
            (chosen, weight(ws.scores[chosen]) / total)
        }
    }
}

/// A uniformly random candidate among those tied with the best score, and how many tie.
fn break_ties<R: Rng + ?Sized>(ws: &Workspace, best: usize, rng: &mut R) -> (usize, usize) {
    let top = ws.scores[ws.candidates[best]];
    let ties = ws.candidates.iter().filter(|&&k| ws.scores[k] == top).count();
    if ties == 1 {
        return (ws.candidates[best], 1);
    }
    let nth = rng.random_range(0..ties);
    let k = ws.candidates.iter().copied().filter(|&k| ws.scores[k] == top).nth(nth).expect("nth < ties");
    (k, ties)
}

/// The chance that eligible offer `k`'s sampled score beats every other candidate's.
fn sampled_win_probability(ws: &mut Workspace, k: usize) -> f64 {
    let mut competitors = std::mem::take(&mut ws.competitors);
    competitors.clear();
    competitors.extend(ws.candidates.iter().filter(|&&c| c != k).map(|&c| ws.moments[c]));
    let p = win_probability(ws.moments[k], &competitors);
    ws.competitors = competitors;
    p
}

/// The first slot's choice probability of every eligible offer (no exclusion groups), for
/// off-policy evaluation: what [`choose`] would pick, in distribution.
pub fn first_slot_probabilities(scores: &[f64], moments: &[ArmScore], picker: Picker, out: &mut [f64]) {
    let n = scores.len();
    if n == 0 {
        return;
    }
    let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ties = scores.iter().filter(|&&s| s == top).count() as f64;
    match picker {
        Picker::Sampled => {
            let mut others = Vec::with_capacity(n);
            for k in 0..n {
                others.clear();
                others.extend((0..n).filter(|&j| j != k).map(|j| moments[j]));
                out[k] = win_probability(moments[k], &others);
            }
            let total: f64 = out[..n].iter().sum();
            out[..n].iter_mut().for_each(|p| *p /= total);
        }
        Picker::Greedy => {
            for k in 0..n {
                out[k] = if scores[k] == top { 1.0 / ties } else { 0.0 };
            }
        }
        Picker::EpsilonGreedy(epsilon) => {
            for k in 0..n {
                out[k] = epsilon / n as f64 + if scores[k] == top { (1.0 - epsilon) / ties } else { 0.0 };
            }
        }
        Picker::Softmax(temperature) => {
            let total: f64 = scores.iter().map(|&s| ((s - top) / temperature).exp()).sum();
            for k in 0..n {
                out[k] = ((scores[k] - top) / temperature).exp() / total;
            }
        }
    }
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
    use crate::policy::{Arm, Counts, PolicyConfig};
    use rand::SeedableRng;

    /// Thompson arms with Beta(a, b) posteriors (a Beta(1, 1) prior plus the counts).
    fn model(posteriors: &[(f64, f64)]) -> Model {
        let arms = posteriors
            .iter()
            .map(|&(a, b)| Arm { counts: Counts { n: a + b - 2.0, sum: a - 1.0, ..Counts::default() }, linear: None })
            .collect();
        Model::from_arms(PolicyConfig::default(), arms, 0)
    }

    #[test]
    fn fills_slots_best_first_one_per_group() {
        let model = model(&[(900.0, 100.0), (800.0, 200.0), (500.0, 500.0), (100.0, 900.0)]);
        let view = ArmView { model: &model, columns: &[], scale: &[1.0; 4], group: &[Some(0), Some(0), None, None] };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let mut ws = Workspace::default();
        choose(&view, &[], &[0, 1, 2, 3], 3, true, &mut rng, &mut ws);
        let picked: Vec<usize> = ws.picks.iter().map(|p| p.local).collect();
        assert_eq!(picked, [0, 2, 3], "offer 1 shares offer 0's group");
        assert!(ws.picks[0].propensity > 0.99 && ws.picks[2].propensity > 0.99);
    }

    #[test]
    fn value_and_weight_scale_the_score() {
        let model = model(&[(100.0, 900.0), (300.0, 700.0)]);
        let view = ArmView { model: &model, columns: &[], scale: &[10.0, 1.0], group: &[None, None] };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(2);
        let mut ws = Workspace::default();
        choose(&view, &[], &[0, 1], 1, true, &mut rng, &mut ws);
        assert_eq!(ws.picks[0].local, 0, "0.1 x 10 beats 0.3 x 1");
    }

    #[test]
    fn propensity_matches_choice_frequency() {
        let model = model(&[(12.0, 88.0), (10.0, 90.0), (8.0, 92.0)]);
        let view = ArmView { model: &model, columns: &[], scale: &[1.0; 3], group: &[None; 3] };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let mut ws = Workspace::default();
        let mut wins = [0usize; 3];
        let mut claimed = [0.0f64; 3];
        let draws = 20_000;
        for _ in 0..draws {
            choose(&view, &[], &[0, 1, 2], 1, true, &mut rng, &mut ws);
            wins[ws.picks[0].local] += 1;
            claimed[ws.picks[0].local] = ws.picks[0].propensity;
        }
        for i in 0..3 {
            let observed = wins[i] as f64 / f64::from(draws);
            assert!((observed - claimed[i]).abs() < 0.03, "arm {i}: observed {observed}, propensity {}", claimed[i]);
        }
    }

    #[test]
    fn the_one_pass_greedy_pick_matches_the_slot_filling_one() {
        // UCB1 with untried arms: exact ties, broken at random.
        let config: PolicyConfig = serde_json::from_str(r#"{"type": "ucb1"}"#).unwrap();
        let mut model = Model::new(config, 6, 0);
        model.observe(1, &[], 1.0);
        let view = ArmView { model: &model, columns: &[], scale: &[1.0; 6], group: &[None; 6] };
        let eligible = [0, 1, 2, 4, 5];
        for seed in 0..50 {
            let (mut a, mut b) = (Workspace::default(), Workspace::default());
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            choose(&view, &[], &eligible, 1, true, &mut rng, &mut a);
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let picker = model.score(&eligible, view.scale, &[], &mut rng, &mut b.scores, &mut b.moments);
            fill_slots(&view, &eligible, 1, &mut b, &mut rng, |ws, k, rng| pick_at_slot(ws, picker, k, true, rng));
            assert_eq!(a.picks, b.picks, "seed {seed}");
            assert!((a.picks[0].propensity - 0.25).abs() < 1e-12, "4 untried arms tie");
        }
    }
}
