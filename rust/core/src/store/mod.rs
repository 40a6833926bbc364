//! Everything that is state: the customers' profiles (in memory, or in Redis / Redis
//! Cluster), the decisions awaiting outcomes (`pending`), the contact history (`history`),
//! and the journal and snapshots that make the embedded store durable (`durable`). Budget
//! counters live beside their pacing rule in `contact::budget`, policy deltas beside the
//! models in `policy::delta`; `shared` keeps a server's contact history, budgets, pending
//! decisions and learning log in Redis with every other server's.

pub mod durable;
pub mod file;
pub mod history;
pub mod pending;
pub mod profiles;
pub mod redis;
pub mod shared;

use std::sync::Arc;

pub use profiles::{Layout, ProfileStore, StoredProfile, Value};
pub use redis::RedisProfiles;

use crate::catalog::Catalog;
use crate::error::Result;

/// Profile writes sent to Redis in one pipeline.
const WRITE_PIPELINE: usize = 1_024;

/// Where profiles live: one process's memory, or a Redis every server shares.
pub enum Profiles {
    Embedded(ProfileStore),
    /// `layouts` keeps only the layouts (the profiles are in Redis).
    Redis {
        redis: Box<RedisProfiles>,
        layouts: ProfileStore,
    },
}

impl Profiles {
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Embedded(_))
    }

    fn local(&self) -> &ProfileStore {
        match self {
            Self::Embedded(store) | Self::Redis { layouts: store, .. } => store,
        }
    }

    /// The layout of `catalog`'s profiles (Redis learns it with the first write in it).
    pub fn layout_for(&self, catalog: &Catalog) -> Arc<Layout> {
        self.local().layout_for(catalog)
    }

    pub fn resize(&self, capacity: usize) {
        if let Self::Embedded(store) = self {
            store.resize(capacity);
        }
    }

    /// Reads profile `id` in `layout` (one not written for `idle_ttl` is gone). Reads do not
    /// extend a profile's life, on either backend.
    pub fn read<T>(
        &self,
        id: &str,
        layout: &Layout,
        now: f64,
        idle_ttl: f64,
        f: impl FnOnce(&StoredProfile) -> T,
    ) -> Result<Option<T>> {
        match self {
            Self::Embedded(store) => Ok(store.read(id, layout, now, idle_ttl, f)),
            Self::Redis { redis, .. } => redis.read(id, layout, f),
        }
    }

    /// Changes profile `id` (created when `create`); `f` may run more than once on a shared
    /// store, each time on the freshest value.
    pub fn update<T>(
        &self,
        id: &str,
        layout: &Layout,
        now: f64,
        idle_ttl: f64,
        create: bool,
        f: impl FnMut(&mut StoredProfile) -> T,
    ) -> Result<Option<T>> {
        match self {
            Self::Embedded(store) => Ok(store.with(id, layout, now, idle_ttl, create, f)),
            Self::Redis { redis, .. } => redis.update(id, layout, now, idle_ttl, create, f),
        }
    }

    /// [`Self::update`] for many rows, each created when absent, in row order (one round
    /// trip for all of them on Redis). `f(row, profile)`; `touch(row)` is the row's time.
    pub fn update_many<T>(
        &self,
        ids: &[&str],
        layout: &Layout,
        touch: impl Fn(usize) -> f64,
        idle_ttl: f64,
        mut f: impl FnMut(usize, &mut StoredProfile) -> T,
    ) -> Result<Vec<T>> {
        match self {
            Self::Embedded(store) => Ok(ids
                .iter()
                .enumerate()
                .map(|(row, id)| store.with(id, layout, touch(row), idle_ttl, true, |p| f(row, p)).expect("created"))
                .collect()),
            Self::Redis { redis, .. } => {
                // A pipeline of a bounded size at a time, in row order.
                let mut out = Vec::with_capacity(ids.len());
                for start in (0..ids.len()).step_by(WRITE_PIPELINE) {
                    let rows = &ids[start..(start + WRITE_PIPELINE).min(ids.len())];
                    out.extend(redis.update_many(
                        rows,
                        layout,
                        |r| touch(start + r),
                        idle_ttl,
                        |r, p| f(start + r, p),
                    )?);
                }
                Ok(out)
            }
        }
    }

    pub fn remove(&self, id: &str) -> Result<bool> {
        match self {
            Self::Embedded(store) => Ok(store.remove(id)),
            Self::Redis { redis, .. } => redis.remove(id),
        }
    }

    /// Profiles held here (`None` for Redis, which many servers share).
    pub fn held(&self) -> Option<usize> {
        match self {
            Self::Embedded(store) => Some(store.len()),
            Self::Redis { .. } => None,
        }
    }

    /// The embedded store, for snapshots (`None` on Redis, which keeps its own state).
    pub fn embedded(&self) -> Option<&ProfileStore> {
        match self {
            Self::Embedded(store) => Some(store),
            Self::Redis { .. } => None,
        }
    }
}
