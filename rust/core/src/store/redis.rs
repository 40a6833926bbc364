//! Profiles in Redis or Redis Cluster, so many servers share one customer plane.
//!
//! One key per profile, `{prefix}:{<id>}:p`, hash-tagged by id so everything of one profile
//! lives in one slot; its value is the layout's fingerprint and the profile, postcard-encoded.
//! A write reads the profile, changes it in Rust (the same arithmetic as the embedded store)
//! and sets it back in a compare-and-set Lua script, retried when another server wrote in
//! between: no update is lost, and a repeated event id is still applied once. Every write
//! sets the key's lifetime to the catalog's idle ttl. Layouts live under
//! `{prefix}:layout:<fingerprint>`, one per distinct schema, so a server reads a profile
//! another server wrote under a catalog it has not seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use redis::ConnectionLike;

use super::profiles::{Layout, StoredProfile, migrate};
use crate::error::{Error, Result};

/// Writes retried this often when other servers keep writing the same profile.
pub(crate) const MAX_CAS_ATTEMPTS: usize = 64;
/// Idle connections kept for reuse.
const POOL: usize = 32;
/// A Redis that does not answer within this is an error, never a hang (profiles alone; a
/// server sharing all its state sets its own, shorter, timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets a key to a new value only if it still holds the value read (empty: absent).
pub(crate) const CAS: &str = r"
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

enum Target {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

enum Connection {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Connection {
    fn get(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Self::Single(c) => c,
            Self::Cluster(c) => &mut **c,
        }
    }
}

fn storage(what: &str, e: &redis::RedisError) -> Error {
    Error::Storage(format!("redis: {what}: {e}"))
}

/// Whether an error means Redis is away (no answer, a failover, loading, memory full) rather
/// than that it refused the command: only the first degrades a server that shares its state.
pub(crate) fn unavailable(e: &redis::RedisError) -> bool {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return true;
    }
    matches!(e.code(), Some("BUSY" | "LOADING" | "MASTERDOWN" | "READONLY" | "OOM" | "TRYAGAIN" | "CLUSTERDOWN"))
}

/// One Redis or Redis Cluster, with a pool of connections every thread borrows from.
pub(crate) struct Connector {
    target: Target,
    pool: Mutex<Vec<Connection>>,
    timeout: Duration,
}

/// A failed Redis call: whether Redis was away, and the error as the engine reports it.
#[derive(Debug)]
pub struct Failure {
    pub unavailable: bool,
    pub error: Error,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        f.error
    }
}

impl Connector {
    /// `url`: `redis://host:port[/db]` for one server, or `redis+cluster://h1:p1,h2:p2,...`
    /// for a cluster (any of its nodes; the rest are discovered).
    pub fn connect(url: &str, timeout: Duration) -> Result<Self> {
        let target = match url.strip_prefix("redis+cluster://") {
            Some(nodes) => {
                let nodes: Vec<String> = nodes.split(',').map(|n| format!("redis://{}", n.trim())).collect();
                let client = redis::cluster::ClusterClient::builder(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()
                    .map_err(|e| storage("cluster client", &e))?;
                Target::Cluster(client)
            }
            None => Target::Single(
                redis::Client::open(url).map_err(|e| Error::InvalidInput(format!("redis URL '{url}': {e}")))?,
            ),
        };
        let connector = Self { target, pool: Mutex::new(Vec::new()), timeout };
        connector.run(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(connector)
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    fn connection(&self) -> std::result::Result<Connection, Failure> {
        if let Some(c) = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Ok(c);
        }
        let timeout = self.timeout;
        let connected = match &self.target {
            Target::Single(client) => client.get_connection_with_timeout(timeout).and_then(|c| {
                c.set_read_timeout(Some(timeout))?;
                c.set_write_timeout(Some(timeout))?;
                Ok(Connection::Single(c))
            }),
            Target::Cluster(client) => client.get_connection().map(|c| Connection::Cluster(Box::new(c))),
        };
        connected.map_err(|e| Failure { unavailable: true, error: storage("connect", &e) })
    }

    /// Runs `f` on a pooled connection; a connection that failed is not reused.
    pub fn attempt<T>(
        &self,
        f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> std::result::Result<T, Failure> {
        let mut connection = self.connection()?;
        match f(connection.get()) {
            Ok(value) => {
                let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < POOL {
                    pool.push(connection);
                }
                Ok(value)
            }
            Err(e) => Err(Failure { unavailable: unavailable(&e), error: storage("command", &e) }),
        }
    }

    pub fn run<T>(&self, f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>) -> Result<T> {
        self.attempt(f).map_err(Error::from)
    }

    /// Commands sent together: one pipeline on a single Redis; on a cluster, whose pipelines
    /// cannot run scripts, one after another on one connection. Replies in order.
    pub fn batch(&self, commands: &[redis::Cmd]) -> std::result::Result<Vec<redis::Value>, Failure> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        self.attempt(|c| {
            if self.is_cluster() {
                commands.iter().map(|cmd| cmd.query(c)).collect()
            } else {
                let mut pipe = redis::pipe();
                for cmd in commands {
                    pipe.add_command(cmd.clone());
                }
                pipe.query(c)
            }
        })
    }
}

pub struct RedisProfiles {
    redis: Arc<Connector>,
    prefix: String,
    cas: redis::Script,
    /// Layouts by fingerprint, and the local generation each was given.
    fingerprints: RwLock<HashMap<u64, Arc<Layout>>>,
    generations: RwLock<HashMap<u32, u64>>,
}

impl RedisProfiles {
    /// Profiles under `prefix` on `redis`.
    pub(crate) fn new(redis: Arc<Connector>, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            cas: redis::Script::new(CAS),
            fingerprints: RwLock::new(HashMap::new()),
            generations: RwLock::new(HashMap::new()),
        }
    }

    /// See [`Connector::connect`] for the URL.
    pub fn connect(url: &str, prefix: &str) -> Result<Self> {
        Ok(Self::new(Arc::new(Connector::connect(url, DEFAULT_TIMEOUT)?), prefix))
    }

    fn run<T>(&self, f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>) -> Result<T> {
        self.redis.run(f)
    }

    fn key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:p", self.prefix)
    }

    fn layout_key(&self, fingerprint: u64) -> String {
        format!("{}:layout:{fingerprint:016x}", self.prefix)
    }

    /// Makes `layout` known in Redis (once) and locally.
    pub fn register(&self, layout: &Layout) -> Result<()> {
        let fingerprint = layout.fingerprint();
        if self.generations.read().unwrap_or_else(PoisonError::into_inner).contains_key(&layout.generation) {
            return Ok(());
        }
        let bytes = postcard::to_stdvec(layout).expect("layouts serialize");
        let key = self.layout_key(fingerprint);
        self.run(|c| redis::cmd("SET").arg(&key).arg(bytes).arg("NX").query::<Option<String>>(c))?;
        self.fingerprints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fingerprint, Arc::new(layout.clone_parts()));
        self.generations.write().unwrap_or_else(PoisonError::into_inner).insert(layout.generation, fingerprint);
        Ok(())
    }

    /// The layout a stored profile was written in, fetched from Redis the first time.
    fn layout_of(&self, fingerprint: u64) -> Result<Arc<Layout>> {
        if let Some(l) = self.fingerprints.read().unwrap_or_else(PoisonError::into_inner).get(&fingerprint) {
            return Ok(Arc::clone(l));
        }
        let key = self.layout_key(fingerprint);
        let bytes: Option<Vec<u8>> = self.run(|c| redis::cmd("GET").arg(&key).query(c))?;
        let bytes =
            bytes.ok_or_else(|| Error::Storage(format!("redis: layout {key} of a stored profile is missing")))?;
        let layout: Layout =
            postcard::from_bytes(&bytes).map_err(|e| Error::Storage(format!("redis: layout {key} is damaged: {e}")))?;
        let layout = Arc::new(layout);
        self.fingerprints.write().unwrap_or_else(PoisonError::into_inner).insert(fingerprint, Arc::clone(&layout));
        Ok(layout)
    }

    fn decode(&self, bytes: &[u8], to: &Layout) -> Result<StoredProfile> {
        let (fingerprint, mut profile): (u64, StoredProfile) = postcard::from_bytes(bytes)
            .map_err(|e| Error::Storage(format!("redis: a stored profile is damaged: {e}")))?;
        if fingerprint == to.fingerprint() {
            profile.set_layout(to.generation);
        } else {
            let from = self.layout_of(fingerprint)?;
            profile.set_layout(from.generation);
            migrate(&mut profile, &from, to);
        }
        Ok(profile)
    }

    fn get(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(id);
        self.run(|c| redis::cmd("GET").arg(&key).query(c))
    }

    /// Reads a profile in `layout`.
    pub fn read<T>(&self, id: &str, layout: &Layout, f: impl FnOnce(&StoredProfile) -> T) -> Result<Option<T>> {
        match self.get(id)? {
            Some(bytes) => Ok(Some(f(&self.decode(&bytes, layout)?))),
            None => Ok(None),
        }
    }

    /// Changes a profile (created when `create`) and writes it back atomically, retrying
    /// `f` on the fresh value when another server wrote in between.
    pub fn update<T>(
        &self,
        id: &str,
        layout: &Layout,
        now: f64,
        idle_ttl: f64,
        create: bool,
        mut f: impl FnMut(&mut StoredProfile) -> T,
    ) -> Result<Option<T>> {
        self.register(layout)?;
        let key = self.key(id);
        let ttl_ms = (idle_ttl * 1_000.0).clamp(1.0, 9.0e15) as u64;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.get(id)?;
            let mut profile = match &current {
                Some(bytes) => self.decode(bytes, layout)?,
                None if create => StoredProfile::new(layout, now),
                None => return Ok(None),
            };
            profile.touched = profile.touched.max(now);
            let result = f(&mut profile);
            let bytes = postcard::to_stdvec(&(layout.fingerprint(), &profile)).expect("profiles serialize");
            let expected = current.unwrap_or_default();
            let written: i64 = self.run(|c| self.cas.key(&key).arg(expected).arg(bytes).arg(ttl_ms).invoke(c))?;
            if written == 1 {
                return Ok(Some(result));
            }
        }
        Err(Error::Storage(format!(
            "redis: profile '{id}' kept changing under {MAX_CAS_ATTEMPTS} attempts to write it"
        )))
    }

    /// [`Self::update`] for many rows at once (each created when absent): one pipelined read,
    /// the changes (the rows of one profile applied in row order to one value), one pipelined
    /// compare-and-set per profile. A profile another server wrote in between is changed
    /// again from its fresh value. `f(row, profile)`; `touch(row)` is the row's write time.
    pub fn update_many<T>(
        &self,
        ids: &[&str],
        layout: &Layout,
        touch: impl Fn(usize) -> f64,
        idle_ttl: f64,
        mut f: impl FnMut(usize, &mut StoredProfile) -> T,
    ) -> Result<Vec<T>> {
        self.register(layout)?;
        let ttl_ms = (idle_ttl * 1_000.0).clamp(1.0, 9.0e15) as u64;
        let mut out: Vec<Option<T>> = ids.iter().map(|_| None).collect();
        // Rows by profile, profiles in the order they first appear.
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut position: HashMap<&str, usize> = HashMap::new();
        for (row, &id) in ids.iter().enumerate() {
            let at = *position.entry(id).or_insert_with(|| {
                groups.push((id, Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push(row);
        }
        let mut todo: Vec<usize> = (0..groups.len()).collect();
        for _ in 0..MAX_CAS_ATTEMPTS {
            if todo.is_empty() {
                break;
            }
            let reads: Vec<redis::Cmd> = todo
                .iter()
                .map(|&g| {
                    let mut cmd = redis::cmd("GET");
                    cmd.arg(self.key(groups[g].0));
                    cmd
                })
                .collect();
            let current: Vec<Option<Vec<u8>>> = self
                .redis
                .batch(&reads)?
                .into_iter()
                .map(redis::from_redis_value)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::Storage(format!("redis: unexpected reply to a profile read: {e}")))?;
            let mut writes = Vec::with_capacity(todo.len());
            for (&g, read) in todo.iter().zip(&current) {
                let (id, rows) = &groups[g];
                let mut profile = match read {
                    Some(bytes) => self.decode(bytes, layout)?,
                    None => StoredProfile::new(layout, touch(rows[0])),
                };
                for &row in rows {
                    profile.touched = profile.touched.max(touch(row));
                    out[row] = Some(f(row, &mut profile));
                }
                let bytes = postcard::to_stdvec(&(layout.fingerprint(), &profile)).expect("profiles serialize");
                // EVAL, not EVALSHA: Redis caches the script by its text, and a pipeline then
                // never meets a script Redis lost in a restart.
                let mut cas = redis::cmd("EVAL");
                cas.arg(CAS).arg(1).arg(self.key(id)).arg(read.as_deref().unwrap_or_default()).arg(bytes).arg(ttl_ms);
                writes.push(cas);
            }
            let written = self.redis.batch(&writes)?;
            todo = todo
                .into_iter()
                .zip(written)
                .filter(|(_, w)| !matches!(w, redis::Value::Int(1)))
                .map(|(g, _)| g)
                .collect();
        }
        if let Some(&g) = todo.first() {
            return Err(Error::Storage(format!(
                "redis: profile '{}' kept changing under {MAX_CAS_ATTEMPTS} attempts to write it",
                groups[g].0
            )));
        }
        Ok(out.into_iter().map(|r| r.expect("every row written")).collect())
    }

    pub fn remove(&self, id: &str) -> Result<bool> {
        let key = self.key(id);
        let removed: i64 = self.run(|c| redis::cmd("DEL").arg(&key).query(c))?;
        Ok(removed > 0)
    }
}
