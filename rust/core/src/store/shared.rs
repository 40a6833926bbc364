//! The state servers share through Redis or Redis Cluster: contact history, volume budgets,
//! decisions awaiting outcomes, and the log every server learns from.
//!
//! Keys (all under the deployment's prefix; the part in braces picks the cluster slot):
//! - `{prefix}:{<profile>}:h`: the profile's contact history (postcard), in its profile's
//!   slot, replaced by compare-and-set so two servers deciding for one customer never both
//!   pass a cap; it lives as long as the contact policy's horizon.
//! - `{prefix}:{<profile>}:ds`: the profile's pending decision keys, by time (for erasure).
//! - `{prefix}:{b:<offer>}:<window>`: units of an offer's budget used in one window; two
//!   windows' lifetime.
//! - `{prefix}:{L<s>}:d:<id>`: a decision awaiting outcomes, in learning shard `s = id %
//!   SHARDS`: the offers shown (`offers`, one per line), the placement (`p`), its policy's
//!   reward range (`lo`, `hi`), offers still unsettled (`n`) and each outcome
//!   (`r:<offer>`); its record (postcard) is `{prefix}:{L<s>}:r:<id>`. Both live for the
//!   attribution window; once every offer is settled (or the decision released) the record
//!   goes and only what refuses a repeat stays.
//! - `{prefix}:{L<s>}:learn`: the stream of settled outcomes, appended by the very script
//!   that settles them: an acknowledged outcome is in Redis, and every server learns it
//!   once, in stream order. Trimmed to about [`LEARN_STREAM_LENGTH`] entries per shard.
//! - `{prefix}:policy`: the latest policy snapshot with the stream positions it includes,
//!   where a starting server begins.
//! - `{prefix}:server:<n>`: the lease of a live server's number (the top bits of its ids).
//!
//! A decision with nothing shown writes nothing.

use std::sync::Arc;

use redis::{ConnectionLike, Script, Value};
use serde::{Deserialize, Serialize};

use super::redis::{Connector, Failure};
use crate::contact::ContactEvent;
use crate::error::Error;

mod triggers;

pub use triggers::{CLAIM_LEASE, Claimed, Found, NOTES_TTL};

/// Learning shards: pending decisions and the learning stream are split this many ways so a
/// cluster spreads them; every server reads every shard.
pub const SHARDS: u64 = 16;
/// Entries kept per learning shard (approximately). A server restarts from the policy
/// snapshot, which every server refreshes each [`SNAPSHOT_EVERY`] seconds, so the streams
/// need only cover the time since.
pub const LEARN_STREAM_LENGTH: usize = 20_000;
/// Seconds between policy snapshots of a server that learned something.
pub const SNAPSHOT_EVERY: f64 = 1.0;
/// Entries read per shard and round.
const READ_COUNT: usize = 1_024;
/// Seconds a server number stays leased without a renewal (renewed every few seconds).
pub const SERVER_LEASE: u64 = 120;
/// Bits of a decision id below the server number.
pub const SERVER_SHIFT: u32 = 40;

type Outcome<T> = std::result::Result<T, Failure>;

fn refused(what: &str) -> Failure {
    Failure { unavailable: false, error: Error::Storage(format!("redis: {what}")) }
}

/// What a decision awaiting outcomes keeps in Redis: enough for any server to settle it,
/// learn from it and give its contacts and budget units back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRecord {
    pub decision_id: u64,
    pub placement: String,
    /// The experiment group whose policy decided: (experiment, group).
    pub variant: Option<(String, String)>,
    /// In slot order, with each offer's exclusion group.
    pub offers: Vec<String>,
    pub groups: Vec<Option<String>>,
    pub channel: String,
    pub profile: Option<String>,
    pub time: f64,
    /// The features a contextual policy read, to learn in the same context.
    pub context: Vec<f32>,
    /// (offer, key) of each impressions budget the decision took one unit from.
    pub impressions: Vec<(String, String)>,
    /// (offer, key) of each conversions budget the decision's offers count against.
    pub conversions: Vec<(String, String)>,
    /// The policy's reward range, checked when an outcome is settled.
    pub reward_range: (f64, f64),
}

/// An outcome as the learning stream carries it.
#[derive(Debug, Clone)]
pub struct Learned {
    pub record: PendingRecord,
    pub offer: String,
    pub reward: f64,
}

/// What settling an outcome found.
pub enum Settle {
    Settled {
        offer: String,
        record: Box<PendingRecord>,
    },
    Unknown,
    NoOffer,
    Ambiguous(String),
    NotShown(String),
    /// The reward is out of the policy's range: the placement.
    OutOfRange(String),
    Already(String),
    /// Released: it takes no outcome.
    Closed,
}

pub enum Release {
    Released(Box<PendingRecord>),
    Unknown,
    Reported,
    Closed,
}

/// One decision's commit: its record (or none when nothing was shown).
pub struct Commit {
    pub profile: Option<String>,
    /// The history as read (`None`: absent) and as it is to be written.
    pub read: Option<Vec<u8>>,
    pub history: Option<Vec<ContactEvent>>,
    pub pending: Vec<PendingRecord>,
    /// The trigger instance the decision fires and its delivery: committed only while the
    /// instance is still waiting, and ending it.
    pub fires: Option<(u64, Vec<u8>)>,
}

/// What a commit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Yes,
    /// Another decision changed the profile's history since the read: decide again.
    Changed,
    /// The trigger instance it fires has ended meanwhile (fired elsewhere, or cancelled).
    Ended,
}

const HISTORY_COMMIT: &str = r"
-- KEYS: history, decision index, trigger state. ARGV: expected ('' absent, '*' unchecked and
-- unchanged), new history, history ttl ms, index ttl ms, oldest time kept in the index, now,
-- the trigger instance the decision fires ('' none), its delivery, pending keys to index...
-- 1 committed, 0 the history changed meanwhile, -1 the instance has ended meanwhile.
local instance = ARGV[7]
if instance ~= '' and redis.call('HEXISTS', KEYS[3], 'i:' .. instance) == 0 then
  return -1
end
if ARGV[1] ~= '*' then
  local current = redis.call('GET', KEYS[1])
  if not ((current == false and ARGV[1] == '') or current == ARGV[1]) then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
if instance ~= '' then
  -- the firing is committed with the decision; the delivery is queued next
  redis.call('HDEL', KEYS[3], 'i:' .. instance, 'k:' .. instance)
  redis.call('HSET', KEYS[3], 'f:' .. instance, ARGV[8])
end
if #ARGV > 8 then
  for i = 9, #ARGV do
    redis.call('ZADD', KEYS[2], ARGV[6], ARGV[i])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
";

const HISTORY_SET: &str = r"
-- KEYS: history. ARGV: expected ('' absent), new ('' deletes), ttl ms.
local current = redis.call('GET', KEYS[1])
if not ((current == false and ARGV[1] == '') or current == ARGV[1]) then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
";

const PENDING_PUT: &str = r"
-- KEYS: pending, its record. ARGV: ttl ms, record, field, value, ... Written once (a replay
-- finds it there). The record is a key of its own: a hash whose values all stay short is
-- kept compact by Redis (a listpack), at half the memory.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

const BUDGET_TAKE: &str = r"
-- KEYS: counter. ARGV: allowed, ttl ms, units. -1 when the units do not fit.
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[3]) > tonumber(ARGV[1]) then
  return -1
end
local n = redis.call('INCRBY', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
";

const BUDGET_TAKE_UP_TO: &str = r"
-- KEYS: counter. ARGV: allowed, ttl ms, most units. Takes what fits, up to the most; the
-- units taken.
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.min(tonumber(ARGV[3]), tonumber(ARGV[1]) - used)
if n <= 0 then
  return 0
end
redis.call('INCRBY', KEYS[1], n)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
";

const BUDGET_ADD: &str = r"
-- KEYS: counter. ARGV: units (negative gives back, never below 0), ttl ms.
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.max(0, used + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], n, 'PX', ARGV[2])
return n
";

const SETTLE: &str = r"
-- KEYS: pending, its record, learning stream. ARGV: offer ('' = the only one), reward, stream length,
-- reporting server.
if redis.call('HEXISTS', KEYS[1], 'x') == 1 then
  return {'closed'}
end
local offers = redis.call('HGET', KEYS[1], 'offers')
if not offers then
  return {'unknown'}
end
local shown = {}
for o in string.gmatch(offers, '[^\n]+') do
  shown[#shown + 1] = o
end
local offer = ARGV[1]
if offer == '' then
  if #shown == 0 then
    return {'no_offer'}
  end
  if #shown > 1 then
    return {'ambiguous', table.concat(shown, ', ')}
  end
  offer = shown[1]
else
  local found = false
  for _, o in ipairs(shown) do
    if o == offer then
      found = true
    end
  end
  if not found then
    return {'not_shown', offer}
  end
end
if redis.call('HEXISTS', KEYS[1], 'r:' .. offer) == 1 then
  return {'already', offer}
end
local reward = tonumber(ARGV[2])
local range = redis.call('HMGET', KEYS[1], 'lo', 'hi', 'p')
if reward < tonumber(range[1]) or reward > tonumber(range[2]) then
  return {'range', range[3]}
end
if redis.call('HSETNX', KEYS[1], 'r:' .. offer, ARGV[2]) == 0 then
  return {'already', offer}
end
local record = redis.call('GET', KEYS[2])
if not record then
  return {'unknown'}
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'd', record, 'o', offer, 'r', ARGV[2], 's', ARGV[4])
if redis.call('HINCRBY', KEYS[1], 'n', -1) <= 0 then
  -- every offer settled: only what refuses a repeat stays
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], 'p', 'lo', 'hi')
end
return {'ok', offer, record}
";

const RELEASE: &str = r"
-- KEYS: pending, its record. Gives the record back and closes the decision (`x`), unless it
-- has an outcome: it then takes none.
local fields = redis.call('HKEYS', KEYS[1])
if #fields == 0 then
  return {'unknown'}
end
for _, f in ipairs(fields) do
  if f == 'x' then
    return {'closed'}
  end
  if string.sub(f, 1, 2) == 'r:' then
    return {'reported'}
  end
end
local record = redis.call('GET', KEYS[2])
if not record then
  return {'unknown'}
end
-- the closed decision keeps the rest of its lifetime
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'x', '1')
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {'ok', record}
";

/// The scripts, by the order `Op::Script` names them.
#[derive(Clone, Copy)]
enum Lua {
    HistoryCommit,
    HistorySet,
    PendingPut,
    BudgetTake,
    BudgetTakeUpTo,
    BudgetAdd,
    Settle,
    Release,
    TriggerStart,
    TriggerCancel,
    TriggerReschedule,
    TriggerClaim,
    TriggerEnd,
    TriggerNote,
    DeliveryPut,
    DeliveryPoll,
    DeliveryTake,
}

const SOURCES: [&str; 17] = [
    HISTORY_COMMIT,
    HISTORY_SET,
    PENDING_PUT,
    BUDGET_TAKE,
    BUDGET_TAKE_UP_TO,
    BUDGET_ADD,
    SETTLE,
    RELEASE,
    triggers::TRIGGER_START,
    triggers::TRIGGER_CANCEL,
    triggers::TRIGGER_RESCHEDULE,
    triggers::TRIGGER_CLAIM,
    triggers::TRIGGER_END,
    triggers::TRIGGER_NOTE,
    triggers::DELIVERY_PUT,
    triggers::DELIVERY_POLL,
    triggers::DELIVERY_TAKE,
];

enum Op {
    Get(String),
    Script(Lua, Vec<String>, Vec<Vec<u8>>),
}

fn ms(seconds: f64) -> Vec<u8> {
    ((seconds * 1_000.0).clamp(1.0, 9.0e15) as u64).to_string().into_bytes()
}

fn text(value: impl ToString) -> Vec<u8> {
    value.to_string().into_bytes()
}

fn strings(value: Value) -> Outcome<Vec<Vec<u8>>> {
    redis::from_redis_value(value).map_err(|e| refused(&format!("unexpected reply: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Outcome<T> {
    postcard::from_bytes(bytes).map_err(|e| refused(&format!("{what} is damaged: {e}")))
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Redis side of a server sharing its state: key names, scripts and the commands.
pub struct SharedRedis {
    redis: Arc<Connector>,
    prefix: String,
    scripts: Vec<Script>,
}

impl SharedRedis {
    pub(crate) fn new(redis: Arc<Connector>, prefix: &str) -> Self {
        Self { redis, prefix: prefix.to_owned(), scripts: SOURCES.iter().map(|s| Script::new(s)).collect() }
    }

    pub fn history_key(&self, profile: &str) -> String {
        format!("{}:{{{profile}}}:h", self.prefix)
    }

    fn index_key(&self, profile: &str) -> String {
        format!("{}:{{{profile}}}:ds", self.prefix)
    }

    pub fn budget_key(&self, offer: &str, window: i64) -> String {
        format!("{}:{{b:{offer}}}:{window}", self.prefix)
    }

    fn shard(decision_id: u64) -> u64 {
        decision_id % SHARDS
    }

    fn pending_key(&self, decision_id: u64) -> String {
        format!("{}:{{L{}}}:d:{decision_id}", self.prefix, Self::shard(decision_id))
    }

    /// The pending decision's record (postcard), beside it in its slot.
    fn record_key(&self, decision_id: u64) -> String {
        format!("{}:{{L{}}}:r:{decision_id}", self.prefix, Self::shard(decision_id))
    }

    fn stream_key(&self, shard: u64) -> String {
        format!("{}:{{L{shard}}}:learn", self.prefix)
    }

    fn snapshot_key(&self) -> String {
        format!("{}:policy", self.prefix)
    }

    /// A number for a new server: a random one no live server holds, leased for
    /// [`SERVER_LEASE`] seconds ([`Self::renew_server`] keeps it). Not a counter: a Redis
    /// restarted empty would hand out a live server's number again.
    pub fn claim_server(&self) -> crate::Result<u64> {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        for attempt in 0..64u64 {
            let draw =
                xxhash_rust::xxh3::xxh3_64_with_seed(&attempt.to_le_bytes(), seed ^ u64::from(std::process::id()));
            let n = draw % ((1 << 23) - 1) + 1;
            let key = self.server_key(n);
            let claimed: Option<String> = self
                .redis
                .run(|c| redis::cmd("SET").arg(&key).arg(1).arg("NX").arg("EX").arg(SERVER_LEASE).query(c))?;
            if claimed.is_some() {
                return Ok(n);
            }
        }
        Err(Error::Storage("redis: found no free server number in 64 draws".to_owned()))
    }

    /// Keeps this server's number leased (also after Redis restarted empty).
    pub fn renew_server(&self, n: u64) -> Outcome<()> {
        let key = self.server_key(n);
        self.redis.attempt(|c| redis::cmd("SET").arg(&key).arg(1).arg("EX").arg(SERVER_LEASE).query::<()>(c))
    }

    /// Gives this server's number back (a server that stops; one that dies lets it expire).
    pub fn release_server(&self, n: u64) -> Outcome<()> {
        let key = self.server_key(n);
        self.redis.attempt(|c| redis::cmd("DEL").arg(&key).query::<i64>(c)).map(drop)
    }

    fn server_key(&self, n: u64) -> String {
        format!("{}:server:{n}", self.prefix)
    }

    pub fn ping(&self) -> Outcome<()> {
        self.redis.attempt(|c| redis::cmd("PING").query::<String>(c)).map(drop)
    }

    fn script_cmd(&self, lua: Lua, keys: &[String], args: &[Vec<u8>]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.scripts[lua as usize].get_hash()).arg(keys.len()).arg(keys).arg(args);
        cmd
    }

    /// Runs the operations, pipelined on a single Redis (scripts loaded again once after
    /// Redis lost them), one after another on a cluster. Replies in order.
    fn exec(&self, ops: &[Op]) -> Outcome<Vec<Value>> {
        if self.redis.is_cluster() {
            return self.redis.attempt(|c: &mut dyn ConnectionLike| {
                ops.iter()
                    .map(|op| match op {
                        Op::Get(key) => redis::cmd("GET").arg(key).query(c),
                        Op::Script(lua, keys, args) => {
                            let script = &self.scripts[*lua as usize];
                            let mut call = script.prepare_invoke();
                            for k in keys {
                                call.key(k);
                            }
                            for a in args {
                                call.arg(a);
                            }
                            call.invoke(c)
                        }
                    })
                    .collect()
            });
        }
        let commands: Vec<redis::Cmd> = ops
            .iter()
            .map(|op| match op {
                Op::Get(key) => {
                    let mut cmd = redis::cmd("GET");
                    cmd.arg(key);
                    cmd
                }
                Op::Script(lua, keys, args) => self.script_cmd(*lua, keys, args),
            })
            .collect();
        match self.redis.batch(&commands) {
            Err(f) if f.error.to_string().to_ascii_lowercase().contains("noscript") => {
                // Redis restarted or was flushed: every script is gone, so none of the batch ran.
                let loads: Vec<redis::Cmd> = SOURCES
                    .iter()
                    .map(|source| {
                        let mut cmd = redis::cmd("SCRIPT");
                        cmd.arg("LOAD").arg(*source);
                        cmd
                    })
                    .collect();
                self.redis.batch(&loads)?;
                self.redis.batch(&commands)
            }
            other => other,
        }
    }

    /// Round trip 1 of a decision: the profile's history (when it has one to read) and the
    /// used units of the given budget keys.
    pub fn read(&self, profile: Option<&str>, budgets: &[String]) -> Outcome<(Option<Vec<u8>>, Vec<u64>)> {
        let mut ops: Vec<Op> = profile.map(|p| Op::Get(self.history_key(p))).into_iter().collect();
        ops.extend(budgets.iter().map(|k| Op::Get(k.clone())));
        let mut replies = self.exec(&ops)?.into_iter();
        let history = match profile {
            Some(_) => redis::from_redis_value::<Option<Vec<u8>>>(replies.next().unwrap_or(Value::Nil))
                .map_err(|e| refused(&format!("history: {e}")))?,
            None => None,
        };
        let used = replies
            .map(|v| redis::from_redis_value::<Option<u64>>(v).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refused(&format!("budget counter: {e}")))?;
        Ok((history, used))
    }

    /// Takes `units` from each budget key (allowed, ttl seconds); on the first that does not
    /// fit, gives back what it took and returns its index.
    pub fn take_budgets(&self, takes: &[(String, u64, f64, u64)]) -> Outcome<Option<usize>> {
        let ops: Vec<Op> = takes
            .iter()
            .map(|(key, allowed, ttl, units)| {
                Op::Script(Lua::BudgetTake, vec![key.clone()], vec![text(allowed), ms(*ttl), text(units)])
            })
            .collect();
        let replies = self.exec(&ops)?;
        let refused_at = replies.iter().position(|v| matches!(v, Value::Int(n) if *n < 0));
        if refused_at.is_some() {
            let back: Vec<(String, i64, f64)> = takes
                .iter()
                .zip(&replies)
                .filter(|(_, v)| matches!(v, Value::Int(n) if *n >= 0))
                .map(|((key, _, ttl, units), _)| (key.clone(), -(*units as i64), *ttl))
                .collect();
            self.add_budgets(&back)?;
        }
        Ok(refused_at)
    }

    /// Takes as many units as fit, up to `most`, from a budget key (allowed, ttl seconds).
    pub fn take_up_to(&self, key: &str, allowed: u64, ttl: f64, most: u64) -> Outcome<u64> {
        let op = Op::Script(Lua::BudgetTakeUpTo, vec![key.to_owned()], vec![text(allowed), ms(ttl), text(most)]);
        let reply = self.exec(&[op])?;
        Ok(match reply.first() {
            Some(Value::Int(n)) => (*n).max(0) as u64,
            _ => 0,
        })
    }

    /// Adds (or, negative, gives back) units: (key, units, ttl seconds).
    pub fn add_budgets(&self, adds: &[(String, i64, f64)]) -> Outcome<()> {
        let ops: Vec<Op> = adds
            .iter()
            .map(|(key, units, ttl)| Op::Script(Lua::BudgetAdd, vec![key.clone()], vec![text(units), ms(*ttl)]))
            .collect();
        self.exec(&ops).map(drop)
    }

    fn pending_put(&self, record: &PendingRecord, ttl: f64) -> Op {
        let bytes = postcard::to_stdvec(record).expect("pending records serialize");
        let (lo, hi) = record.reward_range;
        let mut args = vec![ms(ttl), bytes];
        for (field, value) in [
            ("offers", record.offers.join("\n").into_bytes()),
            ("p", record.placement.clone().into_bytes()),
            ("lo", text(lo)),
            ("hi", text(hi)),
            ("n", text(record.offers.len())),
        ] {
            args.push(field.as_bytes().to_vec());
            args.push(value);
        }
        let keys = vec![self.pending_key(record.decision_id), self.record_key(record.decision_id)];
        Op::Script(Lua::PendingPut, keys, args)
    }

    /// Round trip 2 of a decision: the history replaced if unchanged since it was read
    /// (`history: None` leaves it alone), the decisions recorded and indexed under the profile. False when another
    /// decision changed the history in between (the records are taken back).
    pub fn commit(&self, commit: &Commit, horizon: f64, window: f64, now: f64) -> Outcome<Committed> {
        let mut ops: Vec<Op> = commit.pending.iter().map(|r| self.pending_put(r, window)).collect();
        if let Some(profile) = &commit.profile {
            let expected = match &commit.history {
                None => b"*".to_vec(),
                Some(_) => commit.read.clone().unwrap_or_default(),
            };
            let history = commit.history.as_ref().map(|h| postcard::to_stdvec(h).expect("contacts serialize"));
            let mut args =
                vec![expected, history.unwrap_or_default(), ms(horizon + 60.0), ms(window), text(now - window)];
            args.push(text(now));
            let (instance, delivery) = commit.fires.clone().map_or((Vec::new(), Vec::new()), |(i, d)| (text(i), d));
            args.extend([instance, delivery]);
            args.extend(commit.pending.iter().map(|r| self.pending_key(r.decision_id).into_bytes()));
            let keys = vec![self.history_key(profile), self.index_key(profile), self.trigger_state_key(profile)];
            ops.push(Op::Script(Lua::HistoryCommit, keys, args));
        }
        let replies = self.exec(&ops)?;
        let committed = match (&commit.profile, replies.last()) {
            (None, _) | (_, Some(Value::Int(1))) => Committed::Yes,
            (_, Some(Value::Int(-1))) => Committed::Ended,
            _ => Committed::Changed,
        };
        if committed != Committed::Yes {
            self.forget(&commit.pending)?;
        }
        Ok(committed)
    }

    /// Forgets decisions that were never answered.
    fn forget(&self, records: &[PendingRecord]) -> Outcome<()> {
        let keys: Vec<String> =
            records.iter().flat_map(|r| [self.pending_key(r.decision_id), self.record_key(r.decision_id)]).collect();
        self.redis.attempt(|c| keys.iter().try_for_each(|k| redis::cmd("DEL").arg(k).query::<i64>(c).map(drop)))
    }

    /// Writes a history after reading it (compare-and-set; `None` deletes). False when
    /// another server changed it in between.
    pub fn set_history(
        &self,
        profile: &str,
        read: Option<&[u8]>,
        history: &[ContactEvent],
        horizon: f64,
    ) -> Outcome<bool> {
        let new =
            if history.is_empty() { Vec::new() } else { postcard::to_stdvec(history).expect("contacts serialize") };
        let args = vec![read.unwrap_or_default().to_vec(), new, ms(horizon + 60.0)];
        let reply = self.exec(&[Op::Script(Lua::HistorySet, vec![self.history_key(profile)], args)])?;
        Ok(matches!(reply.first(), Some(Value::Int(1))))
    }

    pub fn get_history(&self, profile: &str) -> Outcome<Option<Vec<u8>>> {
        Ok(self.read(Some(profile), &[])?.0)
    }

    /// Settles an outcome and appends it to the learning stream, atomically.
    pub fn settle(&self, decision_id: u64, offer: Option<&str>, reward: f64, server: u64) -> Outcome<Settle> {
        let keys = vec![
            self.pending_key(decision_id),
            self.record_key(decision_id),
            self.stream_key(Self::shard(decision_id)),
        ];
        let args =
            vec![offer.unwrap_or_default().as_bytes().to_vec(), text(reward), text(LEARN_STREAM_LENGTH), text(server)];
        let reply = self.exec(&[Op::Script(Lua::Settle, keys, args)])?;
        let parts = strings(reply.into_iter().next().unwrap_or(Value::Nil))?;
        let part = |i: usize| parts.get(i).map(|p| utf8(p)).unwrap_or_default();
        Ok(match part(0).as_str() {
            "ok" => Settle::Settled {
                offer: part(1),
                record: Box::new(decode(parts.get(2).map_or(&[][..], Vec::as_slice), "a pending decision")?),
            },
            "unknown" => Settle::Unknown,
            "no_offer" => Settle::NoOffer,
            "ambiguous" => Settle::Ambiguous(part(1)),
            "not_shown" => Settle::NotShown(part(1)),
            "range" => Settle::OutOfRange(part(1)),
            "already" => Settle::Already(part(1)),
            "closed" => Settle::Closed,
            other => return Err(refused(&format!("the settle script answered '{other}'"))),
        })
    }

    pub fn release(&self, decision_id: u64) -> Outcome<Release> {
        let keys = vec![self.pending_key(decision_id), self.record_key(decision_id)];
        let reply = self.exec(&[Op::Script(Lua::Release, keys, Vec::new())])?;
        let parts = strings(reply.into_iter().next().unwrap_or(Value::Nil))?;
        Ok(match parts.first().map(|p| utf8(p)).as_deref() {
            Some("ok") => {
                Release::Released(Box::new(decode(parts.get(1).map_or(&[][..], Vec::as_slice), "a pending decision")?))
            }
            Some("reported") => Release::Reported,
            Some("closed") => Release::Closed,
            _ => Release::Unknown,
        })
    }

    /// Appends an outcome settled elsewhere (a batch decision this server holds) to the
    /// learning stream.
    pub fn publish(&self, learned: &Learned, server: u64) -> Outcome<()> {
        let key = self.stream_key(Self::shard(learned.record.decision_id));
        let record = postcard::to_stdvec(&learned.record).expect("pending records serialize");
        let reward = text(learned.reward);
        self.redis
            .attempt(|c| {
                redis::cmd("XADD")
                    .arg(&key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(LEARN_STREAM_LENGTH)
                    .arg("*")
                    .arg("d")
                    .arg(&record)
                    .arg("o")
                    .arg(&learned.offer)
                    .arg("r")
                    .arg(&reward)
                    .arg("s")
                    .arg(server)
                    .query::<String>(c)
            })
            .map(drop)
    }

    /// Outcomes after `positions` (one stream id per shard), oldest first per shard; moves
    /// the positions past what it returns.
    pub fn read_learned(&self, positions: &mut [String]) -> Outcome<Vec<Learned>> {
        type Entries = Vec<(String, std::collections::HashMap<String, Vec<u8>>)>;
        let streams: Vec<String> = (0..SHARDS).map(|s| self.stream_key(s)).collect();
        let replies: Vec<Option<Vec<(String, Entries)>>> = self.redis.attempt(|c| {
            if self.redis.is_cluster() {
                (0..streams.len())
                    .map(|s| {
                        redis::cmd("XREAD")
                            .arg("COUNT")
                            .arg(READ_COUNT)
                            .arg("STREAMS")
                            .arg(&streams[s])
                            .arg(&positions[s])
                            .query(c)
                    })
                    .collect()
            } else {
                let reply = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(READ_COUNT)
                    .arg("STREAMS")
                    .arg(&streams)
                    .arg(&*positions)
                    .query(c)?;
                Ok(vec![reply])
            }
        })?;
        let mut out = Vec::new();
        for (stream, entries) in replies.into_iter().flatten().flatten() {
            let Some(shard) = streams.iter().position(|s| *s == stream) else { continue };
            for (id, fields) in entries {
                positions[shard] = id;
                let field = |name: &str| fields.get(name).map_or(&[][..], Vec::as_slice);
                let Ok(record) = postcard::from_bytes::<PendingRecord>(field("d")) else { continue };
                let reward = utf8(field("r")).parse::<f64>().unwrap_or(f64::NAN);
                out.push(Learned { record, offer: utf8(field("o")), reward });
            }
        }
        Ok(out)
    }

    pub fn put_snapshot(&self, positions: &[String], state: &str) -> Outcome<()> {
        let bytes = postcard::to_stdvec(&(positions, state)).expect("snapshots serialize");
        let key = self.snapshot_key();
        self.redis.attempt(|c| redis::cmd("SET").arg(&key).arg(&bytes).query::<()>(c))
    }

    pub fn get_snapshot(&self) -> crate::Result<Option<(Vec<String>, String)>> {
        let key = self.snapshot_key();
        let bytes: Option<Vec<u8>> = self.redis.run(|c| redis::cmd("GET").arg(&key).query(c))?;
        bytes.map(|b| decode(&b, "the policy snapshot").map_err(Error::from)).transpose()
    }

    /// Erases a profile's history and every decision of it awaiting outcomes.
    pub fn erase(&self, profile: &str) -> crate::Result<bool> {
        let (history, index) = (self.history_key(profile), self.index_key(profile));
        self.redis.run(|c| {
            let pending: Vec<String> = redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1).query(c)?;
            let records: Vec<String> = pending.iter().map(|k| k.replacen(":d:", ":r:", 1)).collect();
            let mut removed = 0;
            for key in pending.iter().chain(&records).chain([&history, &index]) {
                removed += redis::cmd("DEL").arg(key).query::<i64>(c)?;
            }
            Ok(removed > 0)
        })
    }
}
