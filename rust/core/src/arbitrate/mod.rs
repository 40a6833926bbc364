//! Arbitration inside one placement, the whole pipeline DESIGN names: eligibility gating
//! (`gate`), then the placement's offers checked and its slots chosen (`placement`), with
//! `Reason` saying why an offer was left out. Here: the policy scores each eligible arm (its
//! estimate or sample x value x weight), the slots fill one at a time by the policy's rule (best score,
//! epsilon-greedy, softmax, or a fresh Thompson draw per slot) with at most the allowed
//! offers per exclusion group, and each pick gets the probability the policy had of making
//! it, given the picks of the slots above it (the probability of the first k picks is the
//! product of theirs).

mod gate;
mod placement;
mod reason;

pub(crate) use gate::gate;
pub(crate) use placement::{Profile, Slotting};
pub use reason::Reason;

use rand::{Rng, RngExt};

use crate::policy::{MIN_PROPENSITY, Model, Picker, ScoreLaw};

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
    /// The law each eligible offer's score was drawn from, for sampled policies.
    laws: Vec<ScoreLaw>,
    taken: Vec<bool>,
    /// The laws and arm indices of the candidates of one slot.
    candidate_laws: Vec<ScoreLaw>,
    candidate_arms: Vec<usize>,
    candidates: Vec<usize>,
    /// The candidates' choice probabilities under a point-score picker.
    pmf: Vec<f64>,
    context: Vec<f32>,
    encoded: Vec<f32>,
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
            laws: Vec::new(),
            taken: Vec::new(),
            candidate_laws: Vec::new(),
            candidate_arms: Vec::new(),
            candidates: Vec::new(),
            pmf: Vec::new(),
            context: Vec::new(),
            encoded: Vec::new(),
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
    // The context, its coordinates and their products live in the workspace, reused across a batch.
    let mut context = std::mem::take(&mut ws.context);
    let (mut encoded, mut lifted) = (std::mem::take(&mut ws.encoded), std::mem::take(&mut ws.lifted));
    context.clear();
    context.extend(view.columns.iter().map(|&c| features[c]));
    if !context.is_empty() {
        view.model.encode(&context, &mut encoded);
        view.model.prepare(&encoded, &mut lifted);
    }
    choose_with(view, eligible, slots, propensities, rng, ws, |scores, laws, rng| {
        let linear = |i| view.model.linear_moments(i, &encoded, &lifted);
        view.model.score_with(eligible, view.scale, linear, rng, scores, laws)
    });
    (ws.context, ws.encoded, ws.lifted) = (context, encoded, lifted);
}

/// [`choose`] with the scoring step given: `score` fills the eligible offers' scores (and
/// the laws of sampled scores) and says how to pick from them. A sampled policy draws again
/// for every slot after the first, so each slot is a Thompson pick among the offers left.
pub fn choose_with<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    eligible: &[usize],
    slots: usize,
    propensities: bool,
    rng: &mut R,
    ws: &mut Workspace,
    mut score: impl FnMut(&mut Vec<f64>, &mut Vec<ScoreLaw>, &mut R) -> Picker,
) {
    let picker = score(&mut ws.scores, &mut ws.laws, rng);
    let unconstrained = ws.group_room.is_empty() && ws.page_groups.is_empty() && ws.group_limit >= 1;
    if slots == 1 && picker == Picker::Greedy && unconstrained {
        best_of_all(eligible, ws, rng);
        return;
    }
    let redraw = |ws: &mut Workspace, rng: &mut R| {
        if picker == Picker::Sampled {
            score(&mut ws.scores, &mut ws.laws, rng);
        }
    };
    let (model, scale) = (view.model, view.scale);
    fill_slots(view, eligible, slots, ws, rng, redraw, |ws, b, rng| {
        pick_at_slot(model, eligible, scale, ws, picker, b, propensities, rng)
    });
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
    fill_slots(view, eligible, slots, ws, rng, |_, _| {}, |ws, best, _| (ws.candidates[best], 1.0));
}

/// A campaign under budgets, given their prices (the duals of `allocate::prices`, by local
/// offer): the offers of highest expected value minus price, no sampling. An offer priced
/// above its value to this profile is not worth its budget here and is left out. Each pick's
/// score is its expected value: `mean(i)` (the posterior mean) x value x weight.
///
/// Values are compared as [`priced_value`] sees them, with the profile's own tie-break
/// (`row_key`), as the prices were cleared.
#[expect(clippy::too_many_arguments, reason = "the pick's inputs, each used once")]
pub fn choose_by_price<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    eligible: &mut Vec<usize>,
    slots: usize,
    prices: &[f64],
    row_key: u64,
    mean: &dyn Fn(usize) -> f64,
    rng: &mut R,
    ws: &mut Workspace,
) {
    let expected = |i: usize| mean(i) * view.scale[i];
    let priced = |i: usize| priced_value(expected(i), row_key, i) - prices[i];
    eligible.retain(|&i| prices[i] <= 0.0 || priced(i) > 0.0);
    ws.scores.clear();
    ws.scores.extend(eligible.iter().map(|&i| priced(i)));
    fill_slots(view, eligible, slots, ws, rng, |_, _| {}, |ws, best, _| (ws.candidates[best], 1.0));
    for pick in &mut ws.picks {
        pick.score = expected(pick.local);
    }
}

/// An expected value as budget prices are cleared and paid: raised by at most 0.1%, by a
/// fraction fixed per (profile, offer). Context-free policies value an offer alike for every
/// profile that may see it, so without it a budget's clearing price leaves every such
/// profile exactly indifferent and none would take the offer; with it, the share of them
/// above the price is the share the budget has room for, in every partition alike.
pub fn priced_value(expected: f64, row_key: u64, local: usize) -> f64 {
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&(local as u64).to_le_bytes(), row_key);
    expected * (1.0 + 1e-3 * (hash >> 11) as f64 / (1u64 << 53) as f64)
}

/// The key of a profile's tie-breaks: its id when it has one, else its feature values.
pub fn row_key(profile_id: Option<&str>, features: &[f32]) -> u64 {
    match profile_id {
        Some(id) => xxhash_rust::xxh3::xxh3_64(id.as_bytes()),
        None => features.iter().fold(0x51_7c_c1_b7_27_22_0a_95, |h, x| {
            xxhash_rust::xxh3::xxh3_64_with_seed(&x.to_bits().to_le_bytes(), h)
        }),
    }
}

/// Fills the slots one at a time: `redraw` runs before every slot after the first; `pick`
/// gets the available candidates (in `ws.candidates`) and the position of the best-scored
/// one, and returns the eligible position it picks with that pick's probability.
fn fill_slots<R: Rng + ?Sized>(
    view: &ArmView<'_>,
    eligible: &[usize],
    slots: usize,
    ws: &mut Workspace,
    rng: &mut R,
    mut redraw: impl FnMut(&mut Workspace, &mut R),
    mut pick: impl FnMut(&mut Workspace, usize, &mut R) -> (usize, f64),
) {
    ws.picks.clear();
    ws.taken.clear();
    ws.taken.resize(eligible.len(), false);
    ws.candidates.reserve(eligible.len());
    for slot in 0..slots {
        if slot > 0 {
            redraw(ws, rng);
        }
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
/// with the highest score, and the probability the policy had of making it. Point-score
/// pickers draw from the same pmf that reports the probability ([`point_pmf`]).
#[expect(clippy::too_many_arguments, reason = "one slot's pick needs the policy, the offers and the buffers")]
fn pick_at_slot<R: Rng + ?Sized>(
    model: &Model,
    eligible: &[usize],
    scale: &[f64],
    ws: &mut Workspace,
    picker: Picker,
    best: usize,
    propensities: bool,
    rng: &mut R,
) -> (usize, f64) {
    if picker == Picker::Sampled {
        let p = if propensities { sampled_win_probability(model, eligible, scale, ws, best) } else { f64::NAN };
        return (ws.candidates[best], p);
    }
    let mut pmf = std::mem::take(&mut ws.pmf);
    point_pmf(ws.candidates.iter().map(|&k| ws.scores[k]), picker, &mut pmf);
    let chosen = sample_pmf(&pmf, rng);
    let picked = (ws.candidates[chosen], pmf[chosen]);
    ws.pmf = pmf;
    picked
}

/// scores -> pmf for the point-score pickers, in Vowpal Wabbit's `explore.h` shape: greedy
/// (ties share), epsilon-greedy (epsilon spread evenly, the rest on the best), softmax
/// (exp(score / temperature)). The one place these rules are written: the pick samples from
/// it and off-policy evaluation reads it.
pub fn point_pmf(scores: impl Iterator<Item = f64> + Clone, picker: Picker, out: &mut Vec<f64>) {
    out.clear();
    let top = scores.clone().fold(f64::NEG_INFINITY, f64::max);
    let n = scores.clone().count() as f64;
    let ties = scores.clone().filter(|&s| s == top).count() as f64;
    match picker {
        // A sampled policy's pmf comes from its laws (`win_probabilities`); its mode is the best.
        Picker::Greedy | Picker::Sampled => out.extend(scores.map(|s| if s == top { 1.0 / ties } else { 0.0 })),
        Picker::EpsilonGreedy(epsilon) => {
            out.extend(scores.map(|s| epsilon / n + if s == top { (1.0 - epsilon) / ties } else { 0.0 }));
        }
        Picker::Softmax(temperature) => {
            out.extend(scores.map(|s| ((s - top) / temperature).exp()));
            let total: f64 = out.iter().sum();
            out.iter_mut().for_each(|p| *p /= total);
        }
    }
}

/// An index drawn with the probabilities `pmf` (one uniform draw, by inverse CDF).
fn sample_pmf<R: Rng + ?Sized>(pmf: &[f64], rng: &mut R) -> usize {
    let mut target = rng.random::<f64>() * pmf.iter().sum::<f64>();
    let last = pmf.iter().rposition(|&p| p > 0.0).unwrap_or(pmf.len() - 1);
    for (k, &p) in pmf.iter().enumerate().take(last) {
        target -= p;
        if target < 0.0 && p > 0.0 {
            return k;
        }
    }
    last
}

/// The chance that candidate `position`'s sampled score beats every other candidate's.
fn sampled_win_probability(
    model: &Model,
    eligible: &[usize],
    scale: &[f64],
    ws: &mut Workspace,
    position: usize,
) -> f64 {
    ws.candidate_laws.clear();
    ws.candidate_laws.extend(ws.candidates.iter().map(|&c| ws.laws[c]));
    ws.candidate_arms.clear();
    ws.candidate_arms.extend(ws.candidates.iter().map(|&c| eligible[c]));
    model.win_probability(&ws.candidate_arms, &ws.candidate_laws, position, scale).max(MIN_PROPENSITY)
}

/// The first slot's choice probability of every offer of `eligible` (arm indices, no
/// exclusion groups) at per-arm `scale`, for off-policy evaluation: what [`choose`] would
/// pick, in distribution, by the same computation as the propensity it reports.
pub fn first_slot_probabilities(
    model: &Model,
    (eligible, scale): (&[usize], &[f64]),
    scores: &[f64],
    laws: &[ScoreLaw],
    picker: Picker,
    out: &mut [f64],
) {
    let n = scores.len();
    if n == 0 {
        return;
    }
    match picker {
        Picker::Sampled => {
            for (k, p) in out[..n].iter_mut().enumerate() {
                *p = model.win_probability(eligible, laws, k, scale);
            }
            // The integration's error (about 1e-6) left in the total, so the pmf sums to 1.
            let total: f64 = out[..n].iter().sum();
            out[..n].iter_mut().for_each(|p| *p /= total);
        }
        Picker::Greedy | Picker::EpsilonGreedy(_) | Picker::Softmax(_) => {
            let mut pmf = Vec::with_capacity(n);
            point_pmf(scores.iter().copied(), picker, &mut pmf);
            out[..n].copy_from_slice(&pmf);
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

    #[test]
    fn one_pmf_serves_the_pick_and_its_probability() {
        let scores = [0.3, 0.5, 0.5, 0.1];
        let mut pmf = Vec::new();
        point_pmf(scores.iter().copied(), Picker::Greedy, &mut pmf);
        assert_eq!(pmf, [0.0, 0.5, 0.5, 0.0]);
        point_pmf(scores.iter().copied(), Picker::EpsilonGreedy(0.2), &mut pmf);
        assert_eq!(pmf, [0.05, 0.45, 0.45, 0.05]);
        point_pmf(scores.iter().copied(), Picker::Softmax(0.1), &mut pmf);
        assert!((pmf.iter().sum::<f64>() - 1.0).abs() < 1e-12 && pmf[1] == pmf[2] && pmf[0] > pmf[3]);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let mut seen = [0u32; 4];
        for _ in 0..40_000 {
            seen[sample_pmf(&pmf, &mut rng)] += 1;
        }
        for (k, &n) in seen.iter().enumerate() {
            assert!((f64::from(n) / 40_000.0 - pmf[k]).abs() < 0.01, "{seen:?} {pmf:?}");
        }
        assert_eq!(sample_pmf(&[0.0, 1.0, 0.0], &mut rng), 1, "a zero is never drawn");
    }

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
            let picker = model.score(&eligible, view.scale, &[], &mut rng, &mut b.scores, &mut b.laws);
            fill_slots(
                &view,
                &eligible,
                1,
                &mut b,
                &mut rng,
                |_, _| {},
                |ws, k, rng| pick_at_slot(&model, &eligible, view.scale, ws, picker, k, true, rng),
            );
            assert_eq!(a.picks, b.picks, "seed {seed}");
            assert!((a.picks[0].propensity - 0.25).abs() < 1e-12, "4 untried arms tie");
        }
    }
}
