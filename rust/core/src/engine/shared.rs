//! An engine whose state lives in Redis or Redis Cluster with every other server's
//! (`store::shared`): contact history, budgets, pending decisions and the learning log.
//!
//! A decision with a profile takes two round trips: it reads the profile's history and the
//! budgets its placements' offers use, decides here with them, then commits (the history
//! replaced only if no other decision changed it meanwhile, the budget units taken only if
//! they still fit, the pending records written). A refusal decides again from a fresh read,
//! so caps and budgets hold exactly across servers. Nothing is reserved locally: a server
//! that dies holds nothing the others need.
//!
//! An outcome is settled by one script that also appends it to the learning stream, so it
//! is acknowledged only once it is where every server learns from; every server, the
//! reporting one included, learns it from there ([`Engine::sync_shared`]), in stream order.
//!
//! While Redis is away decisions go on: offers under fail-closed caps and every budgeted
//! offer are left out (a budget is never granted twice), and the contacts and pending
//! records wait in a bounded buffer, replayed in order once Redis answers. Outcomes and
//! releases are refused (a storage error: report again later), never half-recorded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::decide::Reserve;
use super::{BatchDecision, BatchRequest, DecideRequest, Decision, Engine, Loaded};
use crate::contact::{ContactEvent, ContactKind, Counts, History};
use crate::error::{Error, Result};
use crate::limits;
use crate::store::redis::{Connector, Failure, MAX_CAS_ATTEMPTS};
use crate::store::shared::{
    Commit, Committed, Learned, PendingRecord, Release, SERVER_SHIFT, SHARDS, SNAPSHOT_EVERY, Settle, SharedRedis,
};
use crate::store::{ProfileStore, Profiles, RedisProfiles};

/// Decisions made while Redis is away, kept for the replay (the oldest go first).
pub const MAX_REPLAY: usize = 100_000;
/// Decisions per request when other servers keep changing the profile.
const MAX_ATTEMPTS: usize = 8;
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// Between two renewals of the server number's lease.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Between two rounds of the background work (learning, replay, probes).
pub const SYNC_EVERY: Duration = Duration::from_millis(10);

/// What a decision made while Redis was away still has to write there.
#[derive(Clone)]
struct Replay {
    profile: Option<String>,
    contacts: Vec<ContactEvent>,
    pending: Vec<PendingRecord>,
}

struct Cursor {
    /// The last entry learned, per learning shard.
    positions: Vec<String>,
    since_snapshot: u64,
    last_snapshot: Instant,
}

pub(crate) struct Shared {
    pub(super) redis: SharedRedis,
    server: u64,
    healthy: AtomicBool,
    replay: Mutex<VecDeque<Replay>>,
    dropped: AtomicU64,
    learning: Mutex<Cursor>,
    learned: AtomicU64,
    snapshots: AtomicU64,
    lost_cooldowns: AtomicU64,
    next_probe: Mutex<Instant>,
    last_renewal: Mutex<Instant>,
    stopped: AtomicBool,
}

/// How the shared store is doing, for health checks and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreHealth {
    pub healthy: bool,
    /// This server's number: the top bits of the decision ids it hands out.
    pub server: u64,
    /// Decisions made while Redis was away, waiting to be written there.
    pub buffered: usize,
    /// Of those, dropped by the buffer's bound in a long outage.
    pub dropped: u64,
    /// Outcomes learned from the shared stream (every server's, this one's included).
    pub learned: u64,
    pub snapshots: u64,
    /// Cooldown contacts of settled outcomes that Redis lost between two steps.
    pub lost_cooldowns: u64,
}

impl Shared {
    pub(super) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Redis is away (or `f` is a refusal, which does not degrade): the error to report.
    pub(super) fn failed(&self, f: Failure) -> Error {
        if f.unavailable {
            self.healthy.store(false, Ordering::Release);
        }
        f.error
    }

    fn buffer(&self, replay: Replay) {
        let mut buffered = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
        if buffered.len() >= MAX_REPLAY {
            buffered.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        buffered.push_back(replay);
    }
}

fn unavailable_now(what: &str) -> Error {
    Error::Storage(format!("redis is unavailable: the {what} was not recorded; report it again later"))
}

fn decode_history(bytes: Option<&[u8]>) -> Result<Vec<ContactEvent>> {
    match bytes {
        None | Some([]) => Ok(Vec::new()),
        Some(b) => {
            postcard::from_bytes(b).map_err(|e| Error::Storage(format!("redis: a contact history is damaged: {e}")))
        }
    }
}

impl Loaded {
    /// The record of a decision for the shared store (budget keys filled in by the caller).
    pub(super) fn pending_record(
        &self,
        (p, set, variant): (usize, usize, Option<(usize, usize)>),
        decision_id: u64,
        picks: &[crate::arbitrate::Pick],
        profile: Option<&str>,
        time: f64,
        context: Vec<f32>,
    ) -> PendingRecord {
        let catalog = &self.catalog;
        let placement = &catalog.placements[p];
        let offers: Vec<usize> = picks.iter().map(|pick| placement.offers[pick.local]).collect();
        PendingRecord {
            decision_id,
            placement: placement.id.clone(),
            variant: variant
                .map(|(e, g)| (catalog.experiments[e].id.clone(), catalog.experiments[e].groups[g].name.clone())),
            offers: offers.iter().map(|&o| catalog.offers[o].id.clone()).collect(),
            groups: offers.iter().map(|&o| catalog.offers[o].group.map(|g| catalog.groups[g].clone())).collect(),
            channel: catalog.channels[placement.channel].clone(),
            profile: profile.map(str::to_owned),
            time,
            context,
            impressions: Vec::new(),
            conversions: Vec::new(),
            reward_range: self.arm_sets[set].policy.reward_range(),
        }
    }

    /// The arm set a shared record was decided with, in this catalog, and the offer's local
    /// index; `None` when the placement, group or offer is gone.
    fn arm_of(&self, record: &PendingRecord, offer: &str) -> Option<(usize, usize)> {
        let catalog = &self.catalog;
        let p = catalog.placement_index(&record.placement)?;
        let variant = match &record.variant {
            None => None,
            Some((experiment, group)) => {
                let e = catalog.experiments.iter().position(|x| x.id == *experiment)?;
                Some((e, catalog.experiments[e].groups.iter().position(|g| g.name == *group)?))
            }
        };
        let set = self.arm_set(p, variant);
        if self.arm_sets[set].variant != variant {
            return None;
        }
        let local = catalog.placements[p].offers.iter().position(|&o| catalog.offers[o].id == offer)?;
        Some((set, local))
    }
}

/// How long a budget counter of `offer` lives: two of its windows (a day when the offer is gone).
fn budget_ttl(loaded: &Loaded, offer: &str) -> f64 {
    let budget = loaded.catalog.offer_index(offer).and_then(|o| loaded.budgets[o].as_ref());
    2.0 * budget.map_or(86_400.0, |b| b.spec.window)
}

/// The shown contacts a shared record reserves.
fn shown_contacts(record: &PendingRecord) -> Vec<ContactEvent> {
    record
        .offers
        .iter()
        .zip(&record.groups)
        .map(|(offer, group)| ContactEvent {
            time: record.time,
            offer: offer.as_str().into(),
            channel: record.channel.as_str().into(),
            group: group.as_deref().map(Into::into),
            kind: ContactKind::Shown,
            decision_id: record.decision_id,
        })
        .collect()
}

/// The trigger instance a decision fires, and its delivery (postcard) from the decisions made.
pub(super) type FiringOf<'a> = dyn Fn(&[Decision]) -> (u64, Vec<u8>) + 'a;

impl Engine {
    /// Keeps the whole state in Redis (`redis://host:port[/db]`) or a Redis Cluster
    /// (`redis+cluster://host:port,...`) under keys starting with `prefix`, shared with
    /// every engine pointed at it: profiles, contact history, budgets, decisions awaiting
    /// outcomes and what the policies learn. A call slower than `timeout` counts as Redis
    /// being away. Call before the engine takes traffic, then run [`Engine::sync_shared`]
    /// often (see [`spawn_sync`]).
    pub fn use_redis_store(&mut self, url: &str, prefix: &str, timeout: Duration) -> Result<()> {
        let connector = Arc::new(Connector::connect(url, timeout)?);
        self.set_profiles(Profiles::Redis {
            redis: Box::new(RedisProfiles::new(Arc::clone(&connector), prefix)),
            layouts: ProfileStore::new(1),
        })?;
        let redis = SharedRedis::new(connector, prefix);
        let server = redis.claim_server()?;
        *self.next_id.get_mut() = (server << SERVER_SHIFT) + 1;
        let mut positions = vec!["0-0".to_owned(); SHARDS as usize];
        if let Some((saved, state)) = redis.get_snapshot()?
            && saved.len() == positions.len()
        {
            self.load_policy_state(&state)?;
            positions = saved;
        }
        self.shared = Some(Shared {
            redis,
            server,
            healthy: AtomicBool::new(true),
            replay: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            learning: Mutex::new(Cursor { positions, since_snapshot: 0, last_snapshot: Instant::now() }),
            learned: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            lost_cooldowns: AtomicU64::new(0),
            next_probe: Mutex::new(Instant::now()),
            last_renewal: Mutex::new(Instant::now()),
            stopped: AtomicBool::new(false),
        });
        // Learn what the others learned since the snapshot before the first decision.
        self.sync_shared()?;
        Ok(())
    }

    pub fn store_health(&self) -> Option<StoreHealth> {
        let shared = self.shared.as_ref()?;
        Some(StoreHealth {
            healthy: shared.healthy(),
            server: shared.server,
            buffered: shared.replay.lock().unwrap_or_else(PoisonError::into_inner).len(),
            dropped: shared.dropped.load(Ordering::Relaxed),
            learned: shared.learned.load(Ordering::Relaxed),
            snapshots: shared.snapshots.load(Ordering::Relaxed),
            lost_cooldowns: shared.lost_cooldowns.load(Ordering::Relaxed),
        })
    }

    /// Stops the background work after a last snapshot of what this server learned, and
    /// gives the server number back.
    pub fn close_shared(&self) -> Result<()> {
        let Some(shared) = &self.shared else { return Ok(()) };
        if shared.stopped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if shared.healthy() {
            shared.redis.release_server(shared.server).map_err(|f| shared.failed(f))?;
        }
        let mut cursor = shared.learning.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.healthy() && cursor.since_snapshot > 0 {
            shared.redis.put_snapshot(&cursor.positions, &self.save_policy_state()).map_err(|f| shared.failed(f))?;
            cursor.since_snapshot = 0;
        }
        Ok(())
    }

    pub(super) fn decide_shared(&self, shared: &Shared, request: &DecideRequest<'_>) -> Result<Vec<Decision>> {
        Ok(self.decide_shared_with(shared, request, None)?.unwrap_or_default())
    }

    /// A decision on the shared store; with `fires` (the trigger instance it fires and the
    /// delivery of the decisions made), committed only while that instance waits, and ending
    /// it in the same step: `None` when it ended meanwhile, and nothing was decided.
    pub(super) fn decide_shared_with(
        &self,
        shared: &Shared,
        request: &DecideRequest<'_>,
        fires: Option<&FiringOf<'_>>,
    ) -> Result<Option<Vec<Decision>>> {
        let loaded = self.current();
        let catalog = &loaded.catalog;
        self.clock.check(request.now)?;
        if let Some(id) = request.profile_id {
            limits::check_profile_id(id)?;
        }
        let placements: Vec<usize> = request.placements.iter().map(|id| loaded.placement(id)).collect::<Result<_>>()?;
        let now = request.now;
        let horizon = catalog.contact.horizon();
        let mut budgeted: Vec<usize> = Vec::new();
        for &p in &placements {
            for &o in &catalog.placements[p].offers {
                if loaded.budgets[o].is_some() && !budgeted.contains(&o) {
                    budgeted.push(o);
                }
            }
        }
        // Without Redis: decided here, unless it fires a trigger instance, which waits for Redis
        // (its firing could not be committed with it).
        let degraded = || match fires {
            Some(_) => Err(Error::Storage(
                "redis is unavailable: the trigger instance waits there, fired once its lease runs out".to_owned(),
            )),
            None => self.decide_degraded(shared, &loaded, &placements, &budgeted, request).map(Some),
        };
        if !shared.healthy() {
            return degraded();
        }
        let key_of = |o: usize| {
            let budget = loaded.budgets[o].as_ref().expect("budgeted offers have a budget");
            shared.redis.budget_key(&catalog.offers[o].id, budget.window_of(now))
        };
        let keys: Vec<String> = budgeted.iter().map(|&o| key_of(o)).collect();
        let with_history = request.profile_id.filter(|_| horizon > 0.0);
        let mut spent: Vec<&str> = Vec::new();
        for attempt in 0..MAX_ATTEMPTS {
            let (read, used) = match shared.redis.read(with_history, &keys) {
                Ok(r) => r,
                Err(f) if f.unavailable => {
                    shared.failed(f);
                    return degraded();
                }
                Err(f) => return Err(f.error),
            };
            let mut history = History { events: decode_history(read.as_deref())?.into() };
            let used: Vec<(usize, u64)> = budgeted.iter().copied().zip(used).collect();
            let exclude: Vec<&str> = request.exclude.iter().copied().chain(spent.iter().copied()).collect();
            let mut records = Vec::new();
            let decisions = self.decide_page_with(
                &DecideRequest { exclude: &exclude, ..*request },
                Reserve::Shared { history: with_history.map(|_| &mut history), used: &used, records: &mut records },
            )?;
            if records.is_empty() {
                return Ok(Some(decisions));
            }
            let mut takes: Vec<(String, u64, f64, u64)> = Vec::new();
            let mut taken_offers: Vec<usize> = Vec::new();
            for record in &mut records {
                for offer in &record.offers {
                    let Some(o) = catalog.offer_index(offer) else { continue };
                    let Some(budget) = &loaded.budgets[o] else { continue };
                    let key = key_of(o);
                    match budget.spec.counts {
                        Counts::Conversions => record.conversions.push((offer.clone(), key)),
                        Counts::Impressions => {
                            record.impressions.push((offer.clone(), key.clone()));
                            takes.push((key, budget.allowed(now), 2.0 * budget.spec.window, 1));
                            taken_offers.push(o);
                        }
                    }
                }
            }
            match shared.redis.take_budgets(&takes) {
                Ok(None) => {}
                Ok(Some(refused)) => {
                    // Spent by another decision since the read: decide again without it.
                    spent.push(catalog.offers[taken_offers[refused]].id.as_str());
                    continue;
                }
                Err(f) if f.unavailable => {
                    shared.failed(f);
                    return degraded();
                }
                Err(f) => return Err(f.error),
            }
            let commit = Commit {
                profile: request.profile_id.map(str::to_owned),
                read,
                history: with_history.map(|_| history.events.into_iter().collect()),
                pending: records,
                fires: fires.map(|f| f(&decisions)),
            };
            let give_back = || {
                let back: Vec<(String, i64, f64)> = takes.iter().map(|(k, _, ttl, _)| (k.clone(), -1, *ttl)).collect();
                shared.redis.add_budgets(&back)
            };
            match shared.redis.commit(&commit, horizon, self.attribution_window, now) {
                Ok(Committed::Yes) => return Ok(Some(decisions)),
                Ok(Committed::Ended) => {
                    give_back().map_err(|f| shared.failed(f))?;
                    return Ok(None);
                }
                Ok(Committed::Changed) => {
                    give_back().map_err(|f| shared.failed(f))?;
                    if attempt > 0 {
                        std::thread::sleep(Duration::from_micros(200 * attempt as u64));
                    }
                }
                Err(f) if f.unavailable => {
                    // The commit may have run in part: the units taken stay taken (a budget is
                    // never granted twice), and the decision is made again without Redis.
                    shared.failed(f);
                    return degraded();
                }
                Err(f) => {
                    let _ = give_back();
                    return Err(f.error);
                }
            }
        }
        // The profile kept changing under every attempt: decide nothing.
        let everything: Vec<&str> = placements
            .iter()
            .flat_map(|&p| &catalog.placements[p].offers)
            .map(|&o| catalog.offers[o].id.as_str())
            .collect();
        let mut records = Vec::new();
        self.decide_page_with(
            &DecideRequest { exclude: &everything, ..*request },
            Reserve::Shared { history: None, used: &[], records: &mut records },
        )
        .map(Some)
    }

    /// A batch decided here, its impressions budgets taken from Redis first: as many units
    /// as fit (at most one per row) become the batch's quota, and what it did not use goes
    /// back. Without Redis its budgeted offers get no unit.
    pub(super) fn decide_batch_shared(&self, shared: &Shared, request: &BatchRequest<'_>) -> Result<BatchDecision> {
        let loaded = self.current();
        let catalog = &loaded.catalog;
        let offers = catalog.offers.len();
        let (Some(p), true) = (
            catalog.placement_index(request.placement),
            request.quota.is_none_or(|q| q.len() == offers) && self.clock.check(request.now).is_ok(),
        ) else {
            return self.decide_batch_here(request); // which says what is wrong
        };
        let rows = (request.features.len() / catalog.schema.len().max(1)) as u64;
        let now = request.now;
        let mut quota: Vec<u64> = request.quota.map_or_else(|| vec![u64::MAX; offers], <[u64]>::to_vec);
        let mut granted: Vec<(usize, String, f64, u64)> = Vec::new();
        for &o in &catalog.placements[p].offers {
            let Some(budget) = loaded.budgets[o].as_ref().filter(|b| b.spec.counts == Counts::Impressions) else {
                continue;
            };
            let key = shared.redis.budget_key(&catalog.offers[o].id, budget.window_of(now));
            let ttl = 2.0 * budget.spec.window;
            let want = quota[o].min(rows);
            let got = if shared.healthy() {
                shared.redis.take_up_to(&key, budget.allowed(now), ttl, want).unwrap_or_else(|f| {
                    shared.failed(f);
                    0
                })
            } else {
                0
            };
            quota[o] = got;
            granted.push((o, key, ttl, got));
        }
        let decided = self.decide_batch_here(&BatchRequest { quota: Some(&quota), ..*request });
        let back: Vec<(String, i64, f64)> = granted
            .into_iter()
            .filter_map(|(o, key, ttl, got)| {
                let used = decided.as_ref().map_or(0, |d| d.offers.iter().filter(|&&x| x == o as i32).count() as u64);
                (got > used).then(|| (key, -((got - used) as i64), ttl))
            })
            .collect();
        if !back.is_empty() {
            // Kept taken when Redis is away: a budget is never granted twice.
            let _ = shared.redis.add_budgets(&back).map_err(|f| shared.failed(f));
        }
        decided
    }

    /// Decides without Redis: no shared history, no fail-closed offer and no budgeted offer;
    /// what the decisions must write waits for the replay.
    fn decide_degraded(
        &self,
        shared: &Shared,
        loaded: &Loaded,
        placements: &[usize],
        budgeted: &[usize],
        request: &DecideRequest<'_>,
    ) -> Result<Vec<Decision>> {
        let catalog = &loaded.catalog;
        let closed = placements.iter().flat_map(|&p| catalog.closed_without_store(p)).chain(budgeted.iter().copied());
        let exclude: Vec<&str> =
            request.exclude.iter().copied().chain(closed.map(|o| catalog.offers[o].id.as_str())).collect();
        // The contacts this server made while Redis is away count, as Redis would have them.
        let mut history: Vec<ContactEvent> = request.history.to_vec();
        if let Some(profile) = request.profile_id {
            let buffered = shared.replay.lock().unwrap_or_else(PoisonError::into_inner);
            let mine = buffered.iter().filter(|r| r.profile.as_deref() == Some(profile));
            history.extend(mine.flat_map(|r| r.contacts.iter().cloned()));
        }
        let mut records = Vec::new();
        let decisions = self.decide_page_with(
            &DecideRequest { exclude: &exclude, history: &history, ..*request },
            Reserve::Shared { history: None, used: &[], records: &mut records },
        )?;
        if !records.is_empty() {
            let horizon = catalog.contact.horizon();
            let contacts = match request.profile_id {
                Some(_) if horizon > 0.0 => records.iter().flat_map(shown_contacts).collect(),
                _ => Vec::new(),
            };
            shared.buffer(Replay { profile: request.profile_id.map(str::to_owned), contacts, pending: records });
        }
        Ok(decisions)
    }

    pub(super) fn report_shared(
        &self,
        shared: &Shared,
        decision_id: u64,
        offer_id: Option<&str>,
        reward: f64,
        dismissed: bool,
    ) -> Result<()> {
        if !shared.healthy() {
            return Err(unavailable_now("outcome"));
        }
        let settled =
            shared.redis.settle(decision_id, offer_id, reward, shared.server).map_err(|f| shared.failed(f))?;
        let loaded = self.current();
        let (offer, record) = match settled {
            Settle::Settled { offer, record } => (offer, record),
            Settle::Unknown => return self.report_batch_shared(shared, decision_id, offer_id, reward, dismissed),
            Settle::NoOffer => return Err(Error::InvalidInput(format!("decision {decision_id} showed no offer"))),
            Settle::Ambiguous(offers) => {
                return Err(Error::InvalidInput(format!(
                    "decision {decision_id} showed {} offers ({offers}); say which one the outcome is for",
                    offers.split(", ").count()
                )));
            }
            Settle::NotShown(offer) if loaded.catalog.offer_index(&offer).is_none() => {
                return Err(Error::UnknownOffer(offer));
            }
            Settle::NotShown(offer) => {
                return Err(Error::InvalidInput(format!("offer '{offer}' was not shown in decision {decision_id}")));
            }
            Settle::OutOfRange(placement) => {
                let whose = format!("for placement '{placement}' ");
                let refusal = loaded
                    .placement(&placement)
                    .ok()
                    .and_then(|p| loaded.arm_sets[p].policy.check_reward(reward, &whose).err());
                return Err(Error::InvalidInput(
                    refusal.unwrap_or_else(|| format!("reward {reward} is out of the range of {whose}policy")),
                ));
            }
            Settle::Already(offer) => return Err(Error::AlreadyReported { decision_id, offer }),
            Settle::Closed => return Err(Error::AlreadySettled(decision_id)),
        };
        // Settled and in the learning stream: acknowledged. What follows completes it; a
        // Redis lost in between costs the cooldown contact, not the outcome.
        let kind =
            if reward > 0.0 { Some(ContactKind::Converted) } else { dismissed.then_some(ContactKind::Dismissed) };
        if let (Some(kind), Some(profile)) = (kind, &record.profile) {
            let at = record.offers.iter().position(|o| *o == offer).unwrap_or(0);
            let event = ContactEvent {
                time: record.time,
                offer: offer.as_str().into(),
                channel: record.channel.as_str().into(),
                group: record.groups.get(at).cloned().flatten().map(Into::into),
                kind,
                decision_id: 0,
            };
            self.record_cooldown(shared, profile, event);
        }
        if reward > 0.0
            && let Some((_, key)) = record.conversions.iter().find(|(o, _)| *o == offer)
        {
            shared.redis.add_budgets(&[(key.clone(), 1, budget_ttl(&loaded, &offer))]).map_err(|f| shared.failed(f))?;
        }
        Ok(())
    }

    /// An outcome of a batch decision this server holds (batches keep their decisions in the
    /// engine): settled here, learned by every server through the stream.
    fn report_batch_shared(
        &self,
        shared: &Shared,
        decision_id: u64,
        offer_id: Option<&str>,
        reward: f64,
        dismissed: bool,
    ) -> Result<()> {
        let (settled, cooldown) = self.settle_local(decision_id, offer_id, reward, dismissed)?;
        let state = &settled.state;
        let placement = &state.catalog.placements[settled.placement];
        let set = &state.arm_sets[settled.arm_set];
        let offer = state.offer_id(settled.placement, settled.local).to_owned();
        let record = PendingRecord {
            decision_id,
            placement: placement.id.clone(),
            variant: set.variant.map(|(e, g)| {
                let experiment = &state.catalog.experiments[e];
                (experiment.id.clone(), experiment.groups[g].name.clone())
            }),
            offers: vec![offer.clone()],
            groups: vec![None],
            channel: state.catalog.channels[placement.channel].clone(),
            profile: settled.profile.as_deref().map(str::to_owned),
            time: settled.decided_at,
            context: settled.context.clone(),
            impressions: Vec::new(),
            conversions: Vec::new(),
            reward_range: set.policy.reward_range(),
        };
        shared.redis.publish(&Learned { record, offer, reward }, shared.server).map_err(|f| shared.failed(f))?;
        if let Some((profile, event)) = cooldown {
            self.record_cooldown(shared, &profile, event);
        }
        Ok(())
    }

    pub(super) fn release_shared(&self, shared: &Shared, decision_id: u64) -> Result<()> {
        if !shared.healthy() {
            return Err(unavailable_now("release"));
        }
        match shared.redis.release(decision_id).map_err(|f| shared.failed(f))? {
            Release::Released(record) => {
                if let Some(profile) = &record.profile {
                    let horizon = self.current().catalog.contact.horizon();
                    self.change_history(shared, profile, horizon, |events| {
                        let before = events.len();
                        events.retain(|e| !(e.kind == ContactKind::Shown && e.decision_id == decision_id));
                        events.len() != before
                    })?;
                }
                let loaded = self.current();
                let back: Vec<(String, i64, f64)> =
                    record.impressions.iter().map(|(o, k)| (k.clone(), -1, budget_ttl(&loaded, o))).collect();
                shared.redis.add_budgets(&back).map_err(|f| shared.failed(f))
            }
            Release::Reported => {
                Err(Error::InvalidInput(format!("decision {decision_id} already has an outcome; it was shown")))
            }
            Release::Closed => Err(Error::AlreadySettled(decision_id)),
            Release::Unknown => {
                let _gate = self.begin_change()?;
                self.give_back(decision_id)
            }
        }
    }

    /// Changes a profile's shared history (`f` says whether it changed anything), retried on
    /// the fresh value while other servers write it.
    fn change_history(
        &self,
        shared: &Shared,
        profile: &str,
        horizon: f64,
        mut f: impl FnMut(&mut Vec<ContactEvent>) -> bool,
    ) -> Result<()> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let read = shared.redis.get_history(profile).map_err(|f| shared.failed(f))?;
            let mut events = decode_history(read.as_deref())?;
            if !f(&mut events) {
                return Ok(());
            }
            let newest = events.iter().map(|e| e.time).fold(f64::NEG_INFINITY, f64::max);
            events.retain(|e| e.time >= newest - horizon);
            events.sort_by(|a, b| a.time.total_cmp(&b.time));
            if shared.redis.set_history(profile, read.as_deref(), &events, horizon).map_err(|f| shared.failed(f))? {
                return Ok(());
            }
        }
        Err(Error::Storage(format!(
            "redis: the history of '{profile}' kept changing under {MAX_CAS_ATTEMPTS} attempts"
        )))
    }

    /// A profile's contact history as Redis holds it.
    pub(super) fn shared_history(&self, shared: &Shared, profile: &str) -> Result<Vec<ContactEvent>> {
        decode_history(shared.redis.get_history(profile).map_err(|f| shared.failed(f))?.as_deref())
    }

    /// Records a contact from elsewhere in the shared history.
    pub(super) fn record_shared_contact(&self, shared: &Shared, profile: &str, event: ContactEvent) -> Result<()> {
        let horizon = self.current().catalog.contact.horizon();
        self.change_history(shared, profile, horizon, |events| {
            events.push(event.clone());
            true
        })
    }

    /// The cooldown contact of a settled outcome: the outcome stands if Redis loses it, so a
    /// failure is counted, not reported.
    fn record_cooldown(&self, shared: &Shared, profile: &str, event: ContactEvent) {
        if self.record_shared_contact(shared, profile, event).is_err() {
            shared.lost_cooldowns.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Units of `offer`'s budget used in the window of `now`, as Redis counts them.
    pub(super) fn shared_budget_used(
        &self,
        shared: &Shared,
        offer: &str,
        budget: &crate::contact::Budget,
        now: f64,
    ) -> Result<u64> {
        let key = shared.redis.budget_key(offer, budget.window_of(now));
        let (_, used) = shared.redis.read(None, &[key]).map_err(|f| shared.failed(f))?;
        Ok(used.first().copied().unwrap_or(0))
    }

    pub(super) fn erase_shared(&self, profile: &str) -> Result<bool> {
        match &self.shared {
            Some(shared) => shared.redis.erase(profile),
            None => Ok(false),
        }
    }

    /// One round of the background work: while Redis is away, probe it and, once it
    /// answers, replay what waited; learn every outcome the stream has since the last round
    /// (every server's), and snapshot the policies now and then. Returns the outcomes learned.
    pub fn sync_shared(&self) -> Result<usize> {
        let Some(shared) = &self.shared else { return Ok(0) };
        if !shared.healthy() {
            {
                let mut next = shared.next_probe.lock().unwrap_or_else(PoisonError::into_inner);
                if Instant::now() < *next {
                    return Ok(0);
                }
                *next = Instant::now() + PROBE_EVERY;
            }
            if shared.redis.ping().is_err() || !self.replay_buffered(shared) {
                return Ok(0);
            }
            shared.healthy.store(true, Ordering::Release);
        }
        // Buffered by a request that still saw Redis away.
        if !self.replay_buffered(shared) {
            return Ok(0);
        }
        {
            let mut last = shared.last_renewal.lock().unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() >= RENEW_EVERY {
                shared.redis.renew_server(shared.server).map_err(|f| shared.failed(f))?;
                *last = Instant::now();
            }
        }
        let mut cursor = shared.learning.lock().unwrap_or_else(PoisonError::into_inner);
        let mut learned = 0;
        loop {
            let batch = shared.redis.read_learned(&mut cursor.positions).map_err(|f| shared.failed(f))?;
            if batch.is_empty() {
                break;
            }
            learned += batch.len();
            for l in &batch {
                self.apply_learned(l);
            }
        }
        shared.learned.fetch_add(learned as u64, Ordering::Relaxed);
        cursor.since_snapshot += learned as u64;
        if cursor.since_snapshot > 0 && cursor.last_snapshot.elapsed().as_secs_f64() >= SNAPSHOT_EVERY {
            shared.redis.put_snapshot(&cursor.positions, &self.save_policy_state()).map_err(|f| shared.failed(f))?;
            cursor.since_snapshot = 0;
            cursor.last_snapshot = Instant::now();
            shared.snapshots.fetch_add(1, Ordering::Relaxed);
        }
        Ok(learned)
    }

    /// Writes what decisions made without Redis reserved, in order; false when Redis went
    /// away again (the rest waits).
    fn replay_buffered(&self, shared: &Shared) -> bool {
        loop {
            let Some(next) = shared.replay.lock().unwrap_or_else(PoisonError::into_inner).front().cloned() else {
                return true;
            };
            let loaded = self.current();
            let horizon = loaded.catalog.contact.horizon();
            let now = next.pending.first().map_or(0.0, |r| r.time);
            let commit = Commit {
                profile: next.profile.clone(),
                read: None,
                history: None,
                pending: next.pending.clone(),
                fires: None,
            };
            let written =
                shared.redis.commit(&commit, horizon, self.attribution_window, now).map_err(|f| shared.failed(f));
            let merged = written.and_then(|_| match (&next.profile, next.contacts.is_empty()) {
                (Some(profile), false) => self.change_history(shared, profile, horizon, |events| {
                    let before = events.len();
                    for c in &next.contacts {
                        if !events
                            .iter()
                            .any(|e| e.decision_id == c.decision_id && e.offer == c.offer && e.kind == c.kind)
                        {
                            events.push(c.clone());
                        }
                    }
                    events.len() != before
                }),
                _ => Ok(()),
            });
            if merged.is_err() && !shared.healthy() {
                return false;
            }
            // Written, or refused for good (it would fail on every try): next.
            shared.replay.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
        }
    }

    /// Teaches the current catalog's policy one outcome from the stream.
    fn apply_learned(&self, learned: &Learned) {
        let loaded = self.current();
        let Some((set, local)) = loaded.arm_of(&learned.record, &learned.offer) else { return };
        let arm_set = &loaded.arm_sets[set];
        if arm_set.policy.check_reward(learned.reward, "").is_err() {
            return;
        }
        let mut model = arm_set.arms.write().unwrap_or_else(PoisonError::into_inner);
        if model.dim != learned.record.context.len() {
            return;
        }
        model.observe(local, &learned.record.context, learned.reward);
        model.settle();
    }

    fn shared_stopped(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| s.stopped.load(Ordering::Acquire))
    }
}

/// Runs [`Engine::sync_shared`] every [`SYNC_EVERY`] on a thread of its own, until the engine
/// is dropped or [`Engine::close_shared`] is called. `None` for an engine without a shared store.
pub fn spawn_sync(engine: &Arc<Engine>) -> Option<std::thread::JoinHandle<()>> {
    engine.shared.as_ref()?;
    let weak: Weak<Engine> = Arc::downgrade(engine);
    std::thread::Builder::new()
        .name("decision-engine-redis-sync".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(SYNC_EVERY);
                let Some(engine) = weak.upgrade() else { return };
                if engine.shared_stopped() {
                    return;
                }
                // A failure degrades the store (the next round probes); nothing else to do here.
                let _ = engine.sync_shared();
            }
        })
        .ok()
}
