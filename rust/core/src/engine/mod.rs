//! The engine: one catalog with its policy state, decisions awaiting outcomes, and the
//! single and batch decision paths, which share the same arbitration code.

mod arms;
mod batch;
mod campaign;
mod decide;
mod durable;
mod outcomes;
mod persist;
mod profiles;
mod shared;
mod triggers;

pub use crate::arbitrate::Reason;
pub use batch::{BatchDecision, BatchRequest};
pub use campaign::BudgetPrice;
pub use decide::{ChosenOffer, DecideRequest, Decision};
pub use persist::LoadReport;
pub use profiles::{
    Column, Event, ProfileView, ProfileWrite, RowError, StoredDecideRequest, StoredFeatures, WriteReport,
};
pub use shared::{StoreHealth, spawn_sync};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::arbitrate::ArmView;
use crate::catalog::Catalog;
use crate::contact::{Budget, ContactStore};
pub use crate::contact::{ContactEvent, ContactKind};
use crate::error::{Error, Result};
use crate::limits::Clock;
use crate::store::pending::{PendingBatch, PendingStore};
use crate::store::{Layout, ProfileStore, Profiles, RedisProfiles};

/// Decisions kept awaiting outcomes before the oldest are dropped.
/// About 400 bytes each: 2M is about 800 MB held for outcomes at most.
pub const DEFAULT_MAX_PENDING: usize = 2_000_000;

/// A catalog and the learned state of its placements' policies.
pub struct Loaded {
    pub catalog: Catalog,
    arm_sets: Vec<arms::ArmSet>,
    /// Volume budget per catalog offer.
    pub(crate) budgets: Vec<Option<Budget>>,
    /// Shared names for contact history events.
    pub(crate) offer_names: Vec<Arc<str>>,
    pub(crate) channel_names: Vec<Arc<str>>,
    pub(crate) group_names: Vec<Arc<str>>,
    /// Per placement, per local offer: value x weight, and exclusion group.
    scales: Vec<Vec<f64>>,
    groups: Vec<Vec<Option<usize>>>,
    /// How this catalog lays out stored profiles.
    layout: Arc<Layout>,
}

impl Loaded {
    /// A fresh state; arms whose (placement, offer) ids exist in `previous` with the same
    /// policy keep what they learned there.
    fn new(catalog: Catalog, previous: Option<&Loaded>, profiles: &Profiles) -> Self {
        let layout = profiles.layout_for(&catalog);
        let arm_sets = arms::build(&catalog, previous);
        let per_offer = |f: &dyn Fn(usize) -> f64| -> Vec<Vec<f64>> {
            catalog.placements.iter().map(|p| p.offers.iter().map(|&o| f(o)).collect()).collect()
        };
        let scales = per_offer(&|o| catalog.offers[o].value * catalog.offers[o].weight);
        let groups =
            catalog.placements.iter().map(|p| p.offers.iter().map(|&o| catalog.offers[o].group).collect()).collect();
        let budgets = catalog
            .offers
            .iter()
            .map(|o| {
                let old = previous
                    .and_then(|prev| prev.catalog.offer_index(&o.id))
                    .and_then(|i| previous?.budgets[i].as_ref());
                o.budget.clone().map(|spec| Budget::carried_over(spec, old))
            })
            .collect();
        let names = |items: &mut dyn Iterator<Item = &str>| -> Vec<Arc<str>> { items.map(Arc::from).collect() };
        let offer_names = names(&mut catalog.offers.iter().map(|o| o.id.as_str()));
        let channel_names = names(&mut catalog.channels.iter().map(String::as_str));
        let group_names = names(&mut catalog.groups.iter().map(String::as_str));
        Self { catalog, arm_sets, budgets, offer_names, channel_names, group_names, scales, groups, layout }
    }

    fn placement(&self, id: &str) -> Result<usize> {
        self.catalog.placement_index(id).ok_or_else(|| Error::UnknownPlacement(id.to_owned()))
    }

    /// Runs `f` with an arm set read-locked.
    fn with_view<T>(&self, set: usize, f: impl FnOnce(&ArmView<'_>) -> T) -> T {
        let s = &self.arm_sets[set];
        let arms = s.arms.read().unwrap_or_else(PoisonError::into_inner);
        f(&ArmView {
            model: &arms,
            columns: &s.columns,
            scale: &self.scales[s.placement],
            group: &self.groups[s.placement],
        })
    }

    fn offer_id(&self, placement: usize, local: usize) -> &str {
        &self.catalog.offers[self.catalog.placements[placement].offers[local]].id
    }
}

/// What one arm has learned, for inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmState {
    pub offer_id: String,
    /// The Beta posterior of a `thompson` policy (NaN for other policies).
    pub alpha: f64,
    pub beta: f64,
    /// Mean reward (the posterior mean for Thompson sampling).
    pub mean: f64,
    /// Rewards learned from (discounted when the policy forgets).
    pub pulls: f64,
    /// Posterior sd, UCB bonus, or a linear arm's width at the average context seen.
    pub uncertainty: f64,
}

/// Contact history kept per profile (older events expire with the policy's horizon).
pub const DEFAULT_MAX_CONTACTS_PER_PROFILE: usize = 256;

pub struct Engine {
    loaded: RwLock<Arc<Loaded>>,
    pending: Mutex<PendingStore<Loaded>>,
    contacts: ContactStore,
    /// The customers' profiles: the embedded store, or Redis.
    profiles: Profiles,
    /// Held while a profile write applies and journals (see `write_order`).
    profile_writes: Mutex<()>,
    /// Trigger instances waiting to fire and decisions waiting for their acknowledgement.
    timers: Mutex<crate::triggers::Timers>,
    next_id: AtomicU64,
    seed: u64,
    /// Keep what the policies learn for [`Engine::take_policy_delta`] (servers sharing a model).
    sharing: std::sync::atomic::AtomicBool,
    /// The embedded store's journal and snapshots, when the engine was opened on a directory.
    durable: Option<durable::Durable>,
    /// Seconds after which a decision no longer takes outcomes.
    attribution_window: f64,
    /// Whose time requests run at: the server's (within a skew) or a simulation's.
    clock: Clock,
    /// Contact history, budgets, pending decisions and learning in Redis, shared with other
    /// servers (`None`: all of it here).
    shared: Option<shared::Shared>,
}

/// Decisions take outcomes for a week unless told otherwise.
pub const DEFAULT_ATTRIBUTION_WINDOW: f64 = 7.0 * 86_400.0;

impl Engine {
    pub fn new(catalog: Catalog, seed: u64) -> Self {
        Self::with_max_pending(catalog, seed, DEFAULT_MAX_PENDING)
    }

    pub fn with_max_pending(catalog: Catalog, seed: u64, max_pending: usize) -> Self {
        let profiles = Profiles::Embedded(ProfileStore::new(catalog.customers.capacity));
        Self {
            loaded: RwLock::new(Arc::new(Loaded::new(catalog, None, &profiles))),
            profiles,
            profile_writes: Mutex::new(()),
            timers: Mutex::default(),
            pending: Mutex::new(PendingStore::new(max_pending)),
            contacts: ContactStore::new(DEFAULT_MAX_CONTACTS_PER_PROFILE, crate::limits::MAX_CONTACT_PROFILES),
            next_id: AtomicU64::new(1),
            seed,
            sharing: std::sync::atomic::AtomicBool::new(false),
            durable: None,
            attribution_window: DEFAULT_ATTRIBUTION_WINDOW,
            clock: Clock::default(),
            shared: None,
        }
    }

    /// Keeps profiles in Redis (`redis://host:port[/db]`) or a Redis Cluster
    /// (`redis+cluster://host:port,...`), under keys starting with `prefix`, shared by every
    /// engine pointed at it. Call before the engine takes traffic.
    pub fn use_redis_profiles(&mut self, url: &str, prefix: &str) -> Result<()> {
        let redis = RedisProfiles::connect(url, prefix)?;
        self.set_profiles(Profiles::Redis { redis: Box::new(redis), layouts: ProfileStore::new(1) })
    }

    fn set_profiles(&mut self, profiles: Profiles) -> Result<()> {
        self.profiles = profiles;
        let loaded = self.loaded.get_mut().unwrap_or_else(PoisonError::into_inner);
        let layout = self.profiles.layout_for(&loaded.catalog);
        match Arc::get_mut(loaded) {
            Some(only) => only.layout = layout,
            None => return Err(Error::InvalidInput("choose the profile store before the engine is shared".to_owned())),
        }
        Ok(())
    }

    /// The catalog and policy state decisions are made against now.
    pub fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.loaded.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Swaps in a new catalog atomically. Learned state carries over for every (placement,
    /// offer) pair whose ids and placement policy are unchanged; decisions in flight finish
    /// on the catalog they started with, and their outcomes still count.
    ///
    /// With a state directory a snapshot follows, so no journal spans two catalogs: a replay
    /// always runs against the catalog its records were written under.
    pub fn replace_catalog(&self, catalog: Catalog) -> Result<()> {
        {
            let mut current = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
            self.profiles.resize(catalog.customers.capacity);
            let next = Loaded::new(catalog, Some(&current), &self.profiles);
            if self.sharing.load(Ordering::Relaxed) {
                next.share_with(&current.take_learned());
            }
            *current = Arc::new(next);
        }
        self.snapshot()
    }

    pub fn pending_decisions(&self) -> usize {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Reserves `n` consecutive decision ids.
    fn allocate_ids(&self, n: usize) -> u64 {
        self.next_id.fetch_add(n as u64, Ordering::Relaxed)
    }

    /// Each decision draws from its own stream, so results do not depend on thread count.
    fn rng_for(&self, decision_id: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(self.seed ^ decision_id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// A profile's own stream within a campaign's `stream`: the same draws however the
    /// campaign's rows are split between engines of one seed.
    fn rng_for_profile(&self, stream: u64, profile_id: &str) -> Xoshiro256PlusPlus {
        let key = xxhash_rust::xxh3::xxh3_64_with_seed(profile_id.as_bytes(), stream);
        Xoshiro256PlusPlus::seed_from_u64(self.seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Sets whose time requests run at (the wall clock by default).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// This engine with a simulated clock: requests say what time it is (tests, simulations).
    pub fn simulated(mut self) -> Self {
        self.clock = Clock::Simulated;
        self
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Sets how long after a decision its outcomes still count (seconds).
    pub fn set_attribution_window(&mut self, seconds: f64) {
        self.attribution_window = seconds;
    }

    /// Keeps decisions for their outcomes, journaled first when the engine has a store.
    /// Decisions older than the attribution window are let go.
    fn remember(&self, first_id: u64, batch: PendingBatch<Loaded>) -> Result<()> {
        self.journal(|| crate::store::durable::Record::Decided(durable::pending_record(first_id, &batch)))?;
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let cutoff = batch.time() - self.attribution_window;
        if pending.batches().next().is_some_and(|(_, oldest)| oldest.time() < cutoff) {
            pending.expire_before(cutoff);
        }
        pending.insert(first_id, batch);
        Ok(())
    }

    /// A profile's stored contact history, oldest first.
    pub fn contact_history(&self, profile: &str) -> Vec<ContactEvent> {
        self.contacts.history(profile).events.into_iter().collect()
    }

    /// A profile's contact history where the engine keeps it: here, or in the shared store.
    pub fn stored_history(&self, profile: &str) -> Result<Vec<ContactEvent>> {
        match &self.shared {
            Some(shared) => self.shared_history(shared, profile),
            None => Ok(self.contact_history(profile)),
        }
    }

    /// Records contacts that happened elsewhere (other systems, a data platform).
    pub fn record_contact(&self, profile: &str, event: ContactEvent) -> Result<()> {
        crate::limits::check_profile_id(profile)?;
        self.clock.check_not_future(event.time)?;
        if let Some(shared) = &self.shared {
            return self.record_shared_contact(shared, profile, event);
        }
        let _gate = self.begin_change()?;
        let horizon = self.current().catalog.contact.horizon();
        self.contacts.record(profile, event.clone(), horizon);
        self.journal(|| crate::store::durable::Record::Contact { profile: profile.to_owned(), event })
    }

    /// (used, allowed) of an offer's volume budget at `now`, if it has one.
    pub fn budget_usage(&self, offer: &str, now: f64) -> Result<Option<(u64, u64)>> {
        let loaded = self.current();
        let o = loaded.catalog.offer_index(offer).ok_or_else(|| Error::UnknownOffer(offer.to_owned()))?;
        let Some(budget) = loaded.budgets[o].as_ref() else { return Ok(None) };
        match &self.shared {
            Some(shared) => Ok(Some((self.shared_budget_used(shared, offer, budget, now)?, budget.allowed(now)))),
            None => Ok(Some(budget.usage(now))),
        }
    }

    /// Posterior of every offer in a placement.
    pub fn policy_state(&self, placement: &str) -> Result<Vec<ArmState>> {
        let loaded = self.current();
        let p = loaded.placement(placement)?;
        let model = loaded.arm_sets[p].arms.read().unwrap_or_else(PoisonError::into_inner);
        let beta_prior = match model.config.kind {
            crate::policy::Kind::Thompson { alpha, beta } => Some((alpha, beta)),
            _ => None,
        };
        Ok((0..model.len())
            .map(|local| {
                let (pulls, mean, uncertainty) = model.summary(local);
                let counts = &model.arms()[local].counts;
                let (alpha, beta) =
                    beta_prior.map_or((f64::NAN, f64::NAN), |(a, b)| (a + counts.sum, b + counts.n - counts.sum));
                ArmState { offer_id: loaded.offer_id(p, local).to_owned(), alpha, beta, mean, pulls, uncertainty }
            })
            .collect())
    }
}

#[cfg(test)]
mod campaign_tests;
#[cfg(test)]
mod contact_tests;
#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod experiment_tests;
#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod shared_trigger_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trigger_tests;
