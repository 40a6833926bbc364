//! The embedded profile store: one record per customer, in memory, sharded, bounded by a
//! capacity (least recently used go first) and an idle lifetime. Journaling and snapshots
//! are the engine's (`engine/durable.rs`); this room holds the state and its arithmetic.
//!
//! A profile keeps its feature values in the layout of the catalog it was written under.
//! A reload with another schema does not rewrite the store: a profile moves to the new
//! layout (by feature and channel name) the next time it is read or written.

use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::customer::{Aggregate, Computed, CustomerRules};
use crate::limits::{EVENT_IDS_PER_PROFILE, MAX_PURCHASES_PER_PROFILE, WINDOW_BUCKETS};
use crate::schema::{Feature, FeatureKind, NamedValue};

const SHARDS: usize = 64;

/// A value given by name: a feature's in a write, or an event's property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Number(f64),
    Flag(bool),
    Text(String),
}

impl Value {
    /// A feature's value from its encoding in the vector (the inverse of
    /// `Schema::encode_value`).
    pub fn decoded(feature: &Feature, v: f32) -> Self {
        match &feature.kind {
            FeatureKind::Float | FeatureKind::Int => Self::Number(f64::from(v)),
            FeatureKind::Bool => Self::Flag(v != 0.0),
            FeatureKind::Category(values) => Self::Text(values[v as usize].clone()),
        }
    }

    pub fn named(&self) -> NamedValue<'_> {
        match self {
            Self::Number(n) => NamedValue::Number(*n),
            Self::Flag(b) => NamedValue::Flag(*b),
            Self::Text(t) => NamedValue::Category(t),
        }
    }
}

/// The feature schema, channels and computed attributes profiles are laid out by.
#[derive(Debug, Serialize, Deserialize)]
pub struct Layout {
    pub generation: u32,
    features: Vec<Feature>,
    channels: Vec<String>,
    computed: Vec<Computed>,
    /// A hash of the three above: the same on every server for the same schema.
    #[serde(skip)]
    fingerprint: u64,
}

impl Layout {
    fn new(generation: u32, features: Vec<Feature>, channels: Vec<String>, computed: Vec<Computed>) -> Self {
        let parts = postcard::to_stdvec(&(&features, &channels, &computed)).expect("layouts serialize");
        let fingerprint = xxhash_rust::xxh3::xxh3_64(&parts);
        Self { generation, features, channels, computed, fingerprint }
    }

    fn of(catalog: &Catalog, generation: u32) -> Self {
        Self::new(
            generation,
            catalog.schema.features().to_vec(),
            catalog.channels.clone(),
            catalog.customers.computed.clone(),
        )
    }

    /// The same on every server for the same features, channels and computed attributes
    /// (a deserialized layout recomputes it).
    pub fn fingerprint(&self) -> u64 {
        if self.fingerprint != 0 {
            return self.fingerprint;
        }
        let parts = postcard::to_stdvec(&(&self.features, &self.channels, &self.computed)).expect("layouts serialize");
        xxhash_rust::xxh3::xxh3_64(&parts)
    }

    fn same_parts(&self, features: &[Feature], channels: &[String], computed: &[Computed]) -> bool {
        self.features == features && self.channels == channels && self.computed == computed
    }

    /// A copy of this layout (a snapshot's, adopted on restore).
    pub fn clone_parts(&self) -> Self {
        Self::new(self.generation, self.features.clone(), self.channels.clone(), self.computed.clone())
    }
}

/// One time bucket of a windowed attribute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub index: i64,
    pub sum: f64,
    pub count: u32,
}

/// What a computed attribute keeps from the events it has seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Aggregated {
    /// Count and sum per time bucket, oldest first, at most one window's worth.
    Buckets(Vec<Bucket>),
    /// The latest event: its time and (for `last`) the value read.
    Latest { time: f64, value: f32 },
}

impl Aggregated {
    /// Adds one event's value at `time`.
    pub(crate) fn add(state: &mut Option<Self>, spec: &Computed, time: f64, value: f32) {
        match spec.aggregate {
            Aggregate::Count | Aggregate::Sum => {
                let width = spec.bucket_width();
                let index = (time / width).floor() as i64;
                let Self::Buckets(buckets) = state.get_or_insert_with(|| Self::Buckets(Vec::new())) else {
                    return;
                };
                let newest = buckets.last().map_or(index, |b| b.index.max(index));
                // Buckets wholly outside the window that ends at the newest event are let go;
                // an event that old changes nothing any window from now on would count.
                let oldest_kept = newest.saturating_sub(WINDOW_BUCKETS as i64);
                if index < oldest_kept {
                    return;
                }
                match buckets.binary_search_by_key(&index, |b| b.index) {
                    Ok(at) => {
                        buckets[at].count = buckets[at].count.saturating_add(1);
                        buckets[at].sum += f64::from(value);
                    }
                    Err(at) => buckets.insert(at, Bucket { index, sum: f64::from(value), count: 1 }),
                }
                buckets.retain(|b| b.index >= oldest_kept);
            }
            Aggregate::Last | Aggregate::TimeSince => match state {
                Some(Self::Latest { time: latest, .. }) if *latest > time => {}
                _ => *state = Some(Self::Latest { time, value }),
            },
        }
    }

    /// The attribute's value at `now`; `None` when it has nothing to say (use the default).
    pub(crate) fn value(state: Option<&Self>, spec: &Computed, now: f64) -> Option<f32> {
        match (spec.aggregate, state) {
            (Aggregate::Count | Aggregate::Sum, None) => Some(0.0),
            (Aggregate::Count | Aggregate::Sum, Some(Self::Buckets(buckets))) => {
                let width = spec.bucket_width();
                let from = now - spec.window;
                let (mut count, mut sum) = (0u64, 0.0f64);
                for b in buckets {
                    let start = b.index as f64 * width;
                    // A bucket counts while any of it lies inside (now - window, now].
                    if start + width > from && start <= now {
                        count += u64::from(b.count);
                        sum += b.sum;
                    }
                }
                Some(if spec.aggregate == Aggregate::Count { count as f32 } else { sum as f32 })
            }
            (Aggregate::Last, Some(Self::Latest { value, .. })) => Some(*value),
            (Aggregate::TimeSince, Some(Self::Latest { time, .. })) => Some(((now - time).max(0.0) / spec.unit) as f32),
            _ => None,
        }
    }
}

/// One customer as the store holds them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredProfile {
    layout: u32,
    /// Feature values in the layout's order; NaN where the profile has none.
    pub(crate) values: Box<[f32]>,
    /// Bit `c`: consented to the layout's channel `c`.
    pub(crate) consents: u64,
    /// Latest time the profile was written (idle lifetime).
    pub(crate) touched: f64,
    pub(crate) purchases: Vec<Box<str>>,
    /// (computed attribute index in the layout, what it kept); attributes without events
    /// are absent.
    pub(crate) aggregates: Vec<(u16, Option<Aggregated>)>,
    /// Hashes of the latest event ids, a ring of at most [`EVENT_IDS_PER_PROFILE`].
    seen: Vec<u64>,
    seen_next: u16,
}

impl StoredProfile {
    pub(crate) fn new(layout: &Layout, touched: f64) -> Self {
        Self {
            layout: layout.generation,
            values: vec![f32::NAN; layout.features.len()].into_boxed_slice(),
            consents: 0,
            touched,
            purchases: Vec::new(),
            aggregates: Vec::new(),
            seen: Vec::new(),
            seen_next: 0,
        }
    }

    pub(crate) fn set_layout(&mut self, generation: u32) {
        self.layout = generation;
    }

    /// Remembers an event id; false when it was seen before (apply it once).
    pub(crate) fn first_sight(&mut self, event_id: &str) -> bool {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        event_id.hash(&mut hasher);
        let hash = hasher.finish();
        if self.seen.contains(&hash) {
            return false;
        }
        if self.seen.len() < EVENT_IDS_PER_PROFILE {
            self.seen.push(hash);
        } else {
            self.seen[usize::from(self.seen_next)] = hash;
            self.seen_next = ((usize::from(self.seen_next) + 1) % EVENT_IDS_PER_PROFILE) as u16;
        }
        true
    }

    pub(crate) fn add_purchase(&mut self, product: &str) {
        if self.purchases.iter().any(|p| &**p == product) {
            return;
        }
        if self.purchases.len() >= MAX_PURCHASES_PER_PROFILE {
            self.purchases.remove(0);
        }
        self.purchases.push(product.into());
    }

    pub(crate) fn aggregate_mut(&mut self, computed: usize) -> &mut Option<Aggregated> {
        let key = computed as u16;
        let at = match self.aggregates.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                self.aggregates.push((key, None));
                self.aggregates.len() - 1
            }
        };
        &mut self.aggregates[at].1
    }

    /// The full feature vector at `now`: stored values, computed attributes, then the
    /// declared defaults where the profile has neither. NaN stays where nothing applies.
    pub(crate) fn vector(&self, rules: &CustomerRules, now: f64) -> Vec<f32> {
        let mut row = self.values.to_vec();
        for (i, spec) in rules.computed.iter().enumerate() {
            let state = self.aggregates.iter().find(|(k, _)| usize::from(*k) == i).and_then(|(_, s)| s.as_ref());
            row[spec.feature] = Aggregated::value(state, spec, now).unwrap_or(f32::NAN);
        }
        for (value, default) in row.iter_mut().zip(&rules.defaults) {
            if value.is_nan() {
                *value = *default;
            }
        }
        row
    }
}

/// Moves a profile from the layout it was written in to `to`, by feature and channel name.
pub(crate) fn migrate(profile: &mut StoredProfile, from: &Layout, to: &Layout) {
    let mut values = vec![f32::NAN; to.features.len()];
    for (i, feature) in to.features.iter().enumerate() {
        let Some(old) = from.features.iter().position(|f| f.name == feature.name) else { continue };
        let value = profile.values[old];
        values[i] = match (&from.features[old].kind, &feature.kind) {
            (FeatureKind::Category(before), FeatureKind::Category(after)) => before
                .get(value as usize)
                .and_then(|name| after.iter().position(|v| v == name))
                .map_or(f32::NAN, |code| code as f32),
            (a, b) if a == b => value,
            (FeatureKind::Int, FeatureKind::Float) => value,
            _ => f32::NAN,
        };
    }
    let mut consents = 0u64;
    for (c, channel) in from.channels.iter().enumerate() {
        if profile.consents & (1 << c) != 0
            && let Some(now) = to.channels.iter().position(|n| n == channel)
        {
            consents |= 1 << now;
        }
    }
    let aggregates = std::mem::take(&mut profile.aggregates)
        .into_iter()
        .filter_map(|(k, state)| {
            let old = &from.computed[usize::from(k)];
            let name = &from.features[old.feature].name;
            to.computed
                .iter()
                .position(|c| {
                    to.features[c.feature].name == *name
                        && (c.event.as_str(), c.aggregate, &c.property, c.window.to_bits())
                            == (old.event.as_str(), old.aggregate, &old.property, old.window.to_bits())
                })
                .map(|now| (now as u16, state))
        })
        .collect();
    profile.values = values.into_boxed_slice();
    profile.consents = consents;
    profile.aggregates = aggregates;
    profile.layout = to.generation;
}

/// One shard of the store: profiles by id, least recently used last.
type Shard = Mutex<LruCache<Box<str>, StoredProfile>>;

pub struct ProfileStore {
    shards: Box<[Shard]>,
    /// Every layout profiles may still be in, by generation.
    layouts: RwLock<Vec<Arc<Layout>>>,
}

impl ProfileStore {
    pub fn new(capacity: usize) -> Self {
        let per_shard = NonZeroUsize::new(capacity.div_ceil(SHARDS)).unwrap_or(NonZeroUsize::MIN);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(LruCache::new(per_shard))).collect(),
            layouts: RwLock::new(Vec::new()),
        }
    }

    /// The layout of `catalog`'s profiles: the newest one when the schema is unchanged.
    pub fn layout_for(&self, catalog: &Catalog) -> Arc<Layout> {
        let mut layouts = self.layouts.write().unwrap_or_else(PoisonError::into_inner);
        let (features, channels, computed) =
            (catalog.schema.features(), &catalog.channels, &catalog.customers.computed);
        if let Some(same) = layouts.iter().find(|l| l.same_parts(features, channels, computed)) {
            return Arc::clone(same);
        }
        let layout = Arc::new(Layout::of(catalog, layouts.len() as u32));
        layouts.push(Arc::clone(&layout));
        layout
    }

    /// Holds at most `capacity` profiles from now on (the least recently used go first).
    pub fn resize(&self, capacity: usize) {
        let per_shard = NonZeroUsize::new(capacity.div_ceil(SHARDS)).unwrap_or(NonZeroUsize::MIN);
        for shard in &self.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).resize(per_shard);
        }
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, LruCache<Box<str>, StoredProfile>> {
        let index = (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % SHARDS as u64) as usize;
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The layout of generation `g`. Taken without any shard held by the caller's peers in
    /// the other order: shard locks come first, then this read, never the reverse.
    fn layout(&self, g: u32) -> Arc<Layout> {
        Arc::clone(&self.layouts.read().unwrap_or_else(PoisonError::into_inner)[g as usize])
    }

    /// Changes the profile `id` in `layout`, creating it when `create` (else `None` when
    /// absent), and marks it used at `now`. A profile not written for `idle_ttl` counts as
    /// absent and is let go.
    pub fn with<T>(
        &self,
        id: &str,
        layout: &Layout,
        now: f64,
        idle_ttl: f64,
        create: bool,
        f: impl FnOnce(&mut StoredProfile) -> T,
    ) -> Option<T> {
        let mut shard = self.shard(id);
        if shard.peek(id).is_some_and(|p| now - p.touched > idle_ttl) {
            shard.pop(id);
        }
        let profile = match shard.get_mut(id) {
            Some(p) => p,
            None if create => {
                shard.push(id.into(), StoredProfile::new(layout, now));
                shard.get_mut(id).expect("just pushed")
            }
            None => return None,
        };
        if profile.layout != layout.generation {
            migrate(profile, &self.layout(profile.layout), layout);
        }
        profile.touched = profile.touched.max(now);
        Some(f(profile))
    }

    /// Reads the profile `id` in `layout`. A read neither extends a profile's life nor its
    /// recency: both follow writes only, which the journal replays exactly.
    pub fn read<T>(
        &self,
        id: &str,
        layout: &Layout,
        now: f64,
        idle_ttl: f64,
        f: impl FnOnce(&StoredProfile) -> T,
    ) -> Option<T> {
        let mut shard = self.shard(id);
        let profile = shard.peek_mut(id).filter(|p| now - p.touched <= idle_ttl)?;
        if profile.layout != layout.generation {
            migrate(profile, &self.layout(profile.layout), layout);
        }
        Some(f(profile))
    }

    pub fn remove(&self, id: &str) -> bool {
        self.shard(id).pop(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every profile, moved to `layout`, for a snapshot.
    pub fn export(&self, layout: &Layout) -> Vec<(String, StoredProfile)> {
        // A copy, so no shard is locked while the layouts are (see `layout`).
        let layouts: Vec<Arc<Layout>> = self.layouts.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            // Least recently used first, so a restore rebuilds the same recency order.
            for (id, profile) in shard.iter().rev() {
                let mut profile = profile.clone();
                if profile.layout != layout.generation {
                    let from = Arc::clone(&layouts[profile.layout as usize]);
                    migrate(&mut profile, &from, layout);
                }
                all.push((id.to_string(), profile));
            }
        }
        all
    }

    /// Takes in the layout a snapshot's profiles were written in; they move to the current
    /// layout as they are read. Returns the generation to restore them with.
    pub fn adopt_layout(&self, layout: Layout) -> u32 {
        let mut layouts = self.layouts.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(same) = layouts.iter().find(|l| l.same_parts(&layout.features, &layout.channels, &layout.computed))
        {
            return same.generation;
        }
        let generation = layouts.len() as u32;
        layouts.push(Arc::new(Layout::new(generation, layout.features, layout.channels, layout.computed)));
        generation
    }

    /// Puts back a profile from a snapshot, in layout `generation`.
    pub fn restore(&self, id: &str, mut profile: StoredProfile, generation: u32) {
        profile.layout = generation;
        self.shard(id).push(id.into(), profile);
    }
}
