//! Decisions awaiting outcomes. A batch of decisions is one record with consecutive ids,
//! so a million-profile campaign costs a few bytes per profile, not a map entry each.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Marks an empty slot in `offers`.
pub const NO_OFFER: u32 = u32::MAX;

pub struct PendingBatch<S> {
    /// What the decisions were made against (catalog and policy state).
    pub state: Arc<S>,
    pub placement: usize,
    /// The policy state the decisions drew from (the placement's, or an experiment variant's).
    pub arm_set: usize,
    pub slots: usize,
    /// `rows x slots` local offer indices, [`NO_OFFER`] where a slot stayed empty.
    pub offers: Vec<u32>,
    reported: Vec<bool>,
    unreported: usize,
    /// Rows with at least one offer still awaiting its outcome.
    open_rows: usize,
    /// Profile id per row (empty when the decisions had none), and decision time.
    profiles: Vec<Arc<str>>,
    time: f64,
    /// For a contextual policy: `rows x width` of the features it read, to learn from the
    /// outcome in the same context.
    contexts: Vec<f32>,
    width: usize,
}

impl<S> PendingBatch<S> {
    pub fn new(state: Arc<S>, placement: usize, slots: usize, offers: Vec<u32>) -> Self {
        let unreported = offers.iter().filter(|&&o| o != NO_OFFER).count();
        let reported = vec![false; offers.len()];
        let open_rows = offers.chunks(slots).filter(|row| row.iter().any(|&o| o != NO_OFFER)).count();
        Self {
            state,
            placement,
            arm_set: placement,
            slots,
            offers,
            reported,
            unreported,
            open_rows,
            profiles: Vec::new(),
            time: f64::NAN,
            contexts: Vec::new(),
            width: 0,
        }
    }

    /// Attaches each row's policy context (`rows x width`, row-major).
    pub fn with_contexts(mut self, contexts: Vec<f32>, width: usize) -> Self {
        debug_assert!(width == 0 || contexts.len() == self.rows() * width);
        self.contexts = contexts;
        self.width = width;
        self
    }

    /// Marks the decisions as drawn from an experiment variant's arm set.
    pub fn with_arm_set(mut self, arm_set: usize) -> Self {
        self.arm_set = arm_set;
        self
    }

    /// Attaches the rows' profile ids (one per row, or none) and the decision time.
    pub fn with_context(mut self, profiles: Vec<Arc<str>>, time: f64) -> Self {
        debug_assert!(profiles.is_empty() || profiles.len() == self.rows());
        self.profiles = profiles;
        self.time = time;
        self
    }

    /// Marks offers already reported (restoring a snapshot): `reported` is `rows x slots`.
    pub fn with_reported(mut self, reported: Vec<bool>) -> Self {
        debug_assert_eq!(reported.len(), self.offers.len());
        let open = |o: u32, r: bool| o != NO_OFFER && !r;
        self.unreported = self.offers.iter().zip(&reported).filter(|&(&o, &r)| open(o, r)).count();
        self.open_rows = self
            .offers
            .chunks(self.slots)
            .zip(reported.chunks(self.slots))
            .filter(|(row, done)| row.iter().zip(done.iter()).any(|(&o, &r)| open(o, r)))
            .count();
        self.reported = reported;
        self
    }

    pub fn rows(&self) -> usize {
        self.offers.len() / self.slots
    }

    pub fn reported(&self) -> &[bool] {
        &self.reported
    }

    pub fn profiles(&self) -> &[Arc<str>] {
        &self.profiles
    }

    pub fn time(&self) -> f64 {
        self.time
    }

    /// Each row's policy context (`rows x width`) and the width.
    pub fn contexts(&self) -> (&[f32], usize) {
        (&self.contexts, self.width)
    }
}

/// Which offer of which decision an outcome is for, once validated.
pub struct Settled<S> {
    pub state: Arc<S>,
    pub placement: usize,
    pub arm_set: usize,
    pub local: usize,
    pub profile: Option<Arc<str>>,
    pub decided_at: f64,
    /// The features the decision's contextual policy read (empty for context-free ones).
    pub context: Vec<f32>,
}

/// A decision withdrawn before it was shown: what it had reserved.
pub struct Released<S> {
    pub state: Arc<S>,
    pub placement: usize,
    pub locals: Vec<usize>,
    pub profile: Option<Arc<str>>,
    pub decided_at: f64,
}

pub struct PendingStore<S> {
    batches: BTreeMap<u64, PendingBatch<S>>,
    /// Batches whose every offer was settled (first id -> rows, decision time), so a retried
    /// outcome is told it was already reported instead of "unknown". Bounded like `batches`.
    settled: BTreeMap<u64, (usize, f64)>,
    settled_rows: usize,
    /// Rows held in memory (bounded by `max_rows`) and rows still awaiting an outcome.
    rows: usize,
    open_rows: usize,
    max_rows: usize,
}

impl<S> PendingStore<S> {
    /// Keeps at most `max_rows` decisions; the oldest batches go first when full.
    pub fn new(max_rows: usize) -> Self {
        Self { batches: BTreeMap::new(), settled: BTreeMap::new(), settled_rows: 0, rows: 0, open_rows: 0, max_rows }
    }

    /// The batches still awaiting outcomes, by first decision id.
    pub fn batches(&self) -> impl Iterator<Item = (u64, &PendingBatch<S>)> {
        self.batches.iter().map(|(&id, batch)| (id, batch))
    }

    /// Drops decisions made before `cutoff` (their attribution window has passed).
    pub fn expire_before(&mut self, cutoff: f64) {
        self.settled.retain(|_, (rows, time)| {
            let keep = *time >= cutoff;
            if !keep {
                self.settled_rows -= *rows;
            }
            keep
        });
        let expired: Vec<u64> = self.batches.iter().filter(|(_, b)| b.time < cutoff).map(|(&id, _)| id).collect();
        for id in expired {
            if let Some(old) = self.batches.remove(&id) {
                self.rows -= old.rows();
                self.open_rows -= old.open_rows;
            }
        }
    }

    pub fn insert(&mut self, first_id: u64, batch: PendingBatch<S>) {
        if batch.unreported == 0 {
            return;
        }
        self.rows += batch.rows();
        self.open_rows += batch.open_rows;
        self.batches.insert(first_id, batch);
        while self.rows > self.max_rows {
            let Some((_, old)) = self.batches.pop_first() else {
                break;
            };
            self.rows -= old.rows();
            self.open_rows -= old.open_rows;
        }
    }

    /// Decisions with at least one offer still awaiting its outcome.
    pub fn len(&self) -> usize {
        self.open_rows
    }

    pub fn is_empty(&self) -> bool {
        self.open_rows == 0
    }

    /// Remembers that every offer of batch `first` was settled, dropping the oldest such
    /// records past `max_rows`.
    fn remember_settled(&mut self, first: u64, rows: usize, time: f64) {
        self.settled.insert(first, (rows, time));
        self.settled_rows += rows;
        while self.settled_rows > self.max_rows {
            let Some((_, (old, _))) = self.settled.pop_first() else { break };
            self.settled_rows -= old;
        }
    }

    /// `UnknownDecision`, or `AlreadySettled` when `id` belongs to a batch settled whole.
    fn not_pending(&self, id: u64) -> Error {
        match self.settled.range(..=id).next_back() {
            Some((&first, &(rows, _))) if id - first < rows as u64 => Error::AlreadySettled(id),
            _ => Error::UnknownDecision(id),
        }
    }

    /// Marks one offer of decision `id` as reported. `pick` chooses among the decision's
    /// local offer indices (`None` when the decision showed a single offer).
    pub fn settle(
        &mut self,
        id: u64,
        pick: impl FnOnce(&S, (usize, usize), &[u32]) -> Result<usize>,
        offer_name: impl Fn(&S, usize, usize) -> String,
    ) -> Result<Settled<S>> {
        let Some((&first, batch)) = self.batches.range_mut(..=id).next_back() else {
            return Err(self.not_pending(id));
        };
        let row = usize::try_from(id - first).unwrap_or(usize::MAX);
        if row >= batch.rows() {
            return Err(self.not_pending(id));
        }
        let slots = batch.slots;
        let shown = &batch.offers[row * slots..(row + 1) * slots];
        let local = pick(&batch.state, (batch.placement, batch.arm_set), shown)?;
        let slot = shown.iter().position(|&o| o as usize == local).expect("pick returns a shown offer");
        if std::mem::replace(&mut batch.reported[row * slots + slot], true) {
            return Err(Error::AlreadyReported {
                decision_id: id,
                offer: offer_name(&batch.state, batch.placement, local),
            });
        }
        batch.unreported -= 1;
        let row_reported = &batch.reported[row * slots..(row + 1) * slots];
        let shown = &batch.offers[row * slots..(row + 1) * slots];
        if shown.iter().zip(row_reported).all(|(&o, &r)| o == NO_OFFER || r) {
            batch.open_rows -= 1;
            self.open_rows -= 1;
        }
        let settled = Settled {
            state: Arc::clone(&batch.state),
            placement: batch.placement,
            arm_set: batch.arm_set,
            local,
            profile: batch.profiles.get(row).cloned(),
            decided_at: batch.time,
            context: batch.contexts.get(row * batch.width..(row + 1) * batch.width).unwrap_or_default().to_vec(),
        };
        if batch.unreported == 0 {
            let (rows, time) = (batch.rows(), batch.time);
            self.batches.remove(&first);
            self.rows -= rows;
            self.remember_settled(first, rows, time);
        }
        Ok(settled)
    }

    /// Erases a profile from the decisions awaiting outcomes (the right to erasure): its
    /// rows take no outcome any more and no longer name it. Returns how many rows it had.
    pub fn forget_profile(&mut self, profile: &str) -> usize {
        let erased: Arc<str> = Arc::from("");
        let mut forgotten = 0;
        let mut emptied = Vec::new();
        for (&first, batch) in &mut self.batches {
            for row in 0..batch.profiles.len() {
                if &*batch.profiles[row] != profile {
                    continue;
                }
                batch.profiles[row] = Arc::clone(&erased);
                forgotten += 1;
                let range = row * batch.slots..(row + 1) * batch.slots;
                let mut open = 0;
                for (offer, reported) in batch.offers[range.clone()].iter().zip(&mut batch.reported[range]) {
                    if *offer != NO_OFFER && !*reported {
                        *reported = true;
                        open += 1;
                    }
                }
                if open > 0 {
                    batch.unreported -= open;
                    batch.open_rows -= 1;
                    self.open_rows -= 1;
                }
            }
            if batch.unreported == 0 {
                emptied.push(first);
            }
        }
        for first in emptied {
            if let Some(batch) = self.batches.remove(&first) {
                self.rows -= batch.rows();
            }
        }
        forgotten
    }

    /// Withdraws a decision whose offers were not shown: none of them may be reported, and
    /// the caller gives back what it reserved. Fails if an outcome was already reported.
    pub fn release(&mut self, id: u64) -> Result<Released<S>> {
        let Some((&first, batch)) = self.batches.range_mut(..=id).next_back() else {
            return Err(self.not_pending(id));
        };
        let row = usize::try_from(id - first).unwrap_or(usize::MAX);
        let slots = batch.slots;
        if row >= batch.rows() {
            return Err(self.not_pending(id));
        }
        let range = row * slots..(row + 1) * slots;
        let shown: Vec<usize> =
            batch.offers[range.clone()].iter().filter(|&&o| o != NO_OFFER).map(|&o| o as usize).collect();
        let reported = batch.offers[range.clone()]
            .iter()
            .zip(&batch.reported[range.clone()])
            .filter(|(o, r)| **o != NO_OFFER && **r)
            .count();
        if shown.is_empty() || reported == shown.len() {
            return Err(Error::UnknownDecision(id));
        }
        if reported > 0 {
            return Err(Error::InvalidInput(format!("decision {id} already has an outcome; it was shown")));
        }
        batch.reported[range].iter_mut().for_each(|r| *r = true);
        batch.unreported -= shown.len();
        batch.open_rows -= 1;
        self.open_rows -= 1;
        let released = Released {
            state: Arc::clone(&batch.state),
            placement: batch.placement,
            locals: shown,
            profile: batch.profiles.get(row).cloned(),
            decided_at: batch.time,
        };
        if batch.unreported == 0 {
            let (rows, time) = (batch.rows(), batch.time);
            self.batches.remove(&first);
            self.rows -= rows;
            self.remember_settled(first, rows, time);
        }
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(offers: Vec<u32>, time: f64) -> PendingBatch<()> {
        PendingBatch::new(Arc::new(()), 0, 1, offers).with_context(Vec::new(), time)
    }

    fn settle(store: &mut PendingStore<()>, id: u64) -> Result<usize> {
        store.settle(id, |_, _, shown| Ok(shown[0] as usize), |_, _, l| format!("offer {l}")).map(|s| s.local)
    }

    #[test]
    fn a_settled_decision_is_already_reported_until_it_expires() {
        let mut store = PendingStore::new(100);
        store.insert(10, batch(vec![3, NO_OFFER, 5], 1_000.0));
        assert_eq!(store.len(), 2);
        assert_eq!(settle(&mut store, 10).unwrap(), 3);
        assert!(matches!(settle(&mut store, 10), Err(Error::AlreadyReported { decision_id: 10, .. })));
        assert!(store.release(12).is_ok());
        assert_eq!(store.len(), 0);
        for id in [10, 12] {
            assert!(matches!(settle(&mut store, id), Err(Error::AlreadySettled(i)) if i == id), "batch gone");
        }
        assert!(matches!(store.release(12), Err(Error::AlreadySettled(12))));
        assert!(matches!(settle(&mut store, 13), Err(Error::UnknownDecision(13))));
        store.expire_before(2_000.0);
        assert!(matches!(settle(&mut store, 10), Err(Error::UnknownDecision(10))), "expired with its window");
    }

    #[test]
    fn pending_and_settled_records_are_bounded() {
        let mut store = PendingStore::new(4);
        for first in 0..10u64 {
            store.insert(first * 2, batch(vec![1, 1], first as f64));
        }
        assert_eq!(store.len(), 4, "the oldest batches went first");
        assert!(matches!(settle(&mut store, 0), Err(Error::UnknownDecision(0))));
        for id in 16..20 {
            settle(&mut store, id).unwrap();
        }
        for first in 20..30u64 {
            store.insert(first * 2, batch(vec![1, 1], 50.0));
            settle(&mut store, first * 2).unwrap();
            settle(&mut store, first * 2 + 1).unwrap();
        }
        assert!(store.settled_rows <= 4 && store.settled.len() <= 2, "{:?}", store.settled);
        assert!(matches!(settle(&mut store, 58), Err(Error::AlreadySettled(58))));
    }
}
