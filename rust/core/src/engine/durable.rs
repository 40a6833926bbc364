//! The engine on the embedded store: every state change is journaled before it is
//! acknowledged, snapshots bound the journal, and `open` rebuilds the state from both.
//!
//! A change and its journal record happen under the read side of `gate`; a snapshot takes
//! the write side, so it sees every change with its record either before it or after it,
//! never half of one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use super::{Engine, Loaded};
use crate::catalog::Catalog;
use crate::contact::Counts;
use crate::error::Result;
use crate::store::durable::{
    DurableOptions, Journal, PendingRecord, Record, RecoveryReport, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, Snapshot,
    encode, journal_path, read_and_repair, read_snapshot, remove_old_journals, write_snapshot,
};
use crate::store::pending::{NO_OFFER, PendingBatch};

pub(super) struct Durable {
    options: DurableOptions,
    journal: RwLock<Journal>,
    gate: RwLock<()>,
    generation: AtomicU64,
    since_snapshot: AtomicU64,
}

impl Engine {
    /// An engine whose state lives in `options.dir`: recovered from the snapshot and journal
    /// found there, and journaled from now on.
    pub fn open(
        catalog: Catalog,
        seed: u64,
        max_pending: usize,
        options: DurableOptions,
    ) -> Result<(Self, RecoveryReport)> {
        let dir = &options.dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::error::Error::InvalidInput(format!("create {}: {e}", dir.display())))?;
        let mut engine = Self::with_max_pending(catalog, seed, max_pending);
        let mut report = RecoveryReport::default();
        if let Some(snapshot) = read_snapshot(dir)? {
            engine.restore_snapshot(&snapshot)?;
            report.snapshot_loaded = true;
            report.generation = snapshot.generation;
        }
        let path = journal_path(dir, report.generation);
        let read = read_and_repair(&path)?;
        report.discarded_bytes = read.discarded;
        report.warning = read.warning.map(|w| format!("{}: {w}; the records before it were recovered", path.display()));
        for payload in &read.records {
            let applied = postcard::from_bytes::<Record>(payload).is_ok_and(|record| engine.replay(record));
            if applied { report.replayed += 1 } else { report.skipped += 1 }
        }
        remove_old_journals(dir, report.generation);
        let journal = Journal::open(&path, options.fsync)?;
        engine.durable = Some(Durable {
            journal: RwLock::new(journal),
            gate: RwLock::new(()),
            generation: AtomicU64::new(report.generation),
            since_snapshot: AtomicU64::new(read.records.len() as u64),
            options,
        });
        Ok((engine, report))
    }

    /// Taken before changing state: writes a snapshot first if one is due, then holds the
    /// gate while the change is made and journaled (`None` without a store).
    pub(super) fn begin_change(&self) -> Result<Option<RwLockReadGuard<'_, ()>>> {
        self.snapshot_if_due()?;
        Ok(self.durable.as_ref().map(|d| d.gate.read().unwrap_or_else(PoisonError::into_inner)))
    }

    /// Appends a record of a change just made (call with the gate held).
    pub(super) fn journal(&self, record: impl FnOnce() -> Record) -> Result<()> {
        let Some(durable) = &self.durable else { return Ok(()) };
        durable.journal.read().unwrap_or_else(PoisonError::into_inner).append(&encode(&record()))?;
        durable.since_snapshot.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes a snapshot when enough records have piled up since the last one.
    fn snapshot_if_due(&self) -> Result<()> {
        let due = |d: &Durable| d.since_snapshot.load(Ordering::Relaxed) >= d.options.snapshot_every;
        match &self.durable {
            Some(d) if due(d) => {
                let _exclusive = d.gate.write().unwrap_or_else(PoisonError::into_inner);
                // Another thread may have taken it while this one waited.
                if due(d) { self.write_snapshot(d) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// Writes a snapshot of the whole state and starts a fresh journal.
    pub fn snapshot(&self) -> Result<()> {
        let Some(durable) = &self.durable else { return Ok(()) };
        let _exclusive = durable.gate.write().unwrap_or_else(PoisonError::into_inner);
        self.write_snapshot(durable)
    }

    /// [`Self::snapshot`] with the gate held exclusively.
    fn write_snapshot(&self, durable: &Durable) -> Result<()> {
        let generation = durable.generation.load(Ordering::Relaxed) + 1;
        let loaded = self.current();
        let pending = {
            let store = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            store.batches().map(|(first_id, batch)| pending_record(first_id, batch)).collect()
        };
        let budgets = loaded
            .catalog
            .offers
            .iter()
            .zip(&loaded.budgets)
            .filter_map(|(o, b)| b.as_ref().map(|b| (o.id.clone(), b.counter())))
            .map(|(id, (window, used))| (id, window, used))
            .collect();
        let snapshot = Snapshot {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            generation,
            next_id: self.next_id.load(Ordering::Relaxed),
            policy_state: self.save_policy_state(),
            pending,
            contacts: self.contacts.export(),
            budgets,
            profile_layout: Some(loaded.layout.clone_parts()),
            profiles: self.profiles.embedded().map(|s| s.export(&loaded.layout)).unwrap_or_default(),
            triggers: self.timers.lock().unwrap_or_else(PoisonError::into_inner).export(),
        };
        let dir = &durable.options.dir;
        write_snapshot(dir, &snapshot)?;
        let journal = Journal::open(&journal_path(dir, generation), durable.options.fsync)?;
        *durable.journal.write().unwrap_or_else(PoisonError::into_inner) = journal;
        durable.generation.store(generation, Ordering::Relaxed);
        durable.since_snapshot.store(0, Ordering::Relaxed);
        remove_old_journals(dir, generation);
        Ok(())
    }

    fn restore_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        self.load_policy_state(&snapshot.policy_state)?;
        for record in &snapshot.pending {
            self.restore_pending(record, false);
        }
        for (profile, events) in &snapshot.contacts {
            self.contacts.restore(profile.clone(), events.clone());
        }
        let loaded = self.current();
        for (offer, window, used) in &snapshot.budgets {
            if let Some(budget) = loaded.catalog.offer_index(offer).and_then(|o| loaded.budgets[o].as_ref()) {
                budget.restore((*window, *used));
            }
        }
        self.next_id.fetch_max(snapshot.next_id, Ordering::Relaxed);
        self.timers.lock().unwrap_or_else(PoisonError::into_inner).restore(snapshot.triggers.clone());
        if let (Some(layout), Some(store)) = (&snapshot.profile_layout, self.profiles.embedded()) {
            let generation = store.adopt_layout(layout.clone_parts());
            for (id, profile) in &snapshot.profiles {
                store.restore(id, profile.clone(), generation);
            }
        }
        Ok(())
    }

    /// Applies one journal record; false when it no longer applies.
    fn replay(&self, record: Record) -> bool {
        match record {
            Record::Decided(pending) => self.restore_pending(&pending, true),
            Record::Outcome { decision_id, offer, reward, dismissed } => {
                self.report_outcome(decision_id, offer.as_deref(), reward, dismissed).is_ok()
            }
            Record::Released { decision_id } => self.release(decision_id).is_ok(),
            Record::Contact { profile, event } => self.record_contact(&profile, event).is_ok(),
            profiles @ (Record::Profiles { .. } | Record::Events { .. } | Record::ProfileDeleted(_)) => {
                self.replay_profiles(profiles)
            }
            triggers @ (Record::TriggerEnded { .. }
            | Record::TriggerRescheduled { .. }
            | Record::DeliveryAcked(_)
            | Record::DeliveryReleased { .. }) => self.replay_trigger(triggers),
        }
    }

    /// Puts decisions back among the pending ones; with `reserve`, also their contacts and
    /// budget units (a snapshot restores those on its own).
    fn restore_pending(&self, record: &PendingRecord, reserve: bool) -> bool {
        let loaded = self.current();
        self.next_id.fetch_max(record.first_id + (record.shown.len() / record.slots.max(1)) as u64, Ordering::Relaxed);
        let Some(p) = loaded.catalog.placement_index(&record.placement) else { return false };
        let placement = &loaded.catalog.placements[p];
        if placement.slots != record.slots {
            return false;
        }
        let local_of = |i: u32| -> u32 {
            let Some(id) = record.offer_ids.get(i as usize) else { return NO_OFFER };
            placement.offers.iter().position(|&o| loaded.catalog.offers[o].id == *id).map_or(NO_OFFER, |l| l as u32)
        };
        let shown: Vec<u32> =
            record.shown.iter().map(|&i| if i == NO_OFFER { NO_OFFER } else { local_of(i) }).collect();
        let policy = serde_json::from_str(&record.policy).ok();
        let set = policy.and_then(|policy| loaded.set_named(&record.placement, &record.variant, &policy)).unwrap_or(p);
        let width = loaded.arm_sets[set].columns.len();
        let (contexts, width) = if width == record.width { (record.contexts.clone(), width) } else { (Vec::new(), 0) };
        let profiles: Vec<Arc<str>> = record.profiles.iter().map(|id| Arc::from(id.as_str())).collect();
        let reported = if record.reported.is_empty() { vec![false; shown.len()] } else { record.reported.clone() };
        if reserve {
            self.reserve_restored(&loaded, p, record, &shown);
        }
        let batch = PendingBatch::new(Arc::clone(&loaded), p, record.slots, shown)
            .with_arm_set(set)
            .with_context(profiles, record.time)
            .with_contexts(contexts, width)
            .with_reported(reported);
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(record.first_id, batch);
        true
    }

    /// The contacts and budget units restored decisions had reserved.
    fn reserve_restored(&self, loaded: &Loaded, p: usize, record: &PendingRecord, shown: &[u32]) {
        let placement = &loaded.catalog.placements[p];
        let horizon = loaded.catalog.contact.horizon();
        for (row, offers) in shown.chunks(record.slots).enumerate() {
            for &local in offers.iter().filter(|&&l| l != NO_OFFER) {
                let offer = placement.offers[local as usize];
                if let Some(budget) = &loaded.budgets[offer]
                    && budget.spec.counts == Counts::Impressions
                {
                    budget.add(record.time);
                }
                let Some(profile) = record.profiles.get(row) else { continue };
                let event = crate::contact::shown(
                    record.time,
                    &loaded.offer_names[offer],
                    &loaded.channel_names[placement.channel],
                    loaded.catalog.offers[offer].group.map(|g| &loaded.group_names[g]),
                    record.first_id + row as u64,
                );
                self.contacts.record(profile, event, horizon);
            }
        }
    }
}

/// A pending batch as a record, keyed by ids.
pub(super) fn pending_record(first_id: u64, batch: &PendingBatch<Loaded>) -> PendingRecord {
    let state = &batch.state;
    let catalog = &state.catalog;
    let placement = &catalog.placements[batch.placement];
    let set = &state.arm_sets[batch.arm_set];
    let (contexts, width) = batch.contexts();
    // Only the offers shown, so a single decision's record names one or two offers, not
    // the placement's hundred.
    let mut offer_ids: Vec<String> = Vec::new();
    let mut table: Vec<u32> = vec![NO_OFFER; placement.offers.len()];
    let shown = batch
        .offers
        .iter()
        .map(|&local| {
            if local == NO_OFFER {
                return NO_OFFER;
            }
            let entry = &mut table[local as usize];
            if *entry == NO_OFFER {
                *entry = offer_ids.len() as u32;
                offer_ids.push(catalog.offers[placement.offers[local as usize]].id.clone());
            }
            *entry
        })
        .collect();
    PendingRecord {
        first_id,
        placement: placement.id.clone(),
        variant: state.set_key(batch.arm_set).1,
        policy: set.policy_json.clone(),
        offer_ids,
        slots: batch.slots,
        shown,
        reported: if batch.reported().iter().any(|&r| r) { batch.reported().to_vec() } else { Vec::new() },
        profiles: batch.profiles().iter().map(|p| p.to_string()).collect(),
        time: batch.time(),
        contexts: contexts.to_vec(),
        width,
    }
}
