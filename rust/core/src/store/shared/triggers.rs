//! Trigger instances and their deliveries in Redis, shared by every server: each timer fires
//! once across all of them and after any of them dies, and a delivery goes out again until a
//! subscriber of any server acknowledges it.
//!
//! Keys (beside those of `store::shared`):
//! - `{prefix}:{<profile>}:t`: the profile's trigger state, in its profile's slot (so a
//!   decision's commit ends the instance that made it, atomically): `i:<id>` an instance
//!   (postcard), `k:<id>` its trigger and key (for cancel-on and `max_live`), `e:<trigger>`
//!   the latest entry time (re-entry), `f:<id>` the delivery of an instance whose decision
//!   is committed but not yet queued, `d:<decision>` the profile's deliveries (for erasure).
//!   It lives until its last timer could fire, plus the re-entry window.
//! - `{prefix}:{<profile>}:tw`: what became of the profile's instances (postcard entries, the
//!   newest [`HISTORY_PER_PROFILE`]), for [`NOTES_TTL`] seconds.
//! - `{prefix}:{T<s>}:due`: instances by fire time, `<id>|<profile>`, shard `s = id % SHARDS`.
//!   A server claims the due ones by moving their score [`CLAIM_LEASE`] seconds ahead in one
//!   script; one that dies lets the lease run out and another fires them.
//! - `{prefix}:trigger-log`: every server's trigger outcomes in order (a stream of profile and
//!   outcome), for a log to read; trimmed to about [`OUTCOME_LOG_LENGTH`] entries.
//! - `{prefix}:{Q}:body`, `:tries`, `:chan`, `:exp` and `:vis:<channel>`: deliveries
//!   (postcard), their delivery counts, channels, expiry times and, per channel, when each
//!   may go out again. One slot, bounded by [`crate::triggers::MAX_DELIVERIES`].

use redis::Value;

use super::{Lua, Op, Outcome, SHARDS, SharedRedis, decode, ms, refused, strings, text, utf8};
use crate::triggers::timers::HISTORY_PER_PROFILE;
use crate::triggers::{Delivery, HistoryEntry, Instance, MAX_DELIVERIES, Started};

/// Seconds a claimed instance is this server's to fire; past it another server fires it.
pub const CLAIM_LEASE: f64 = 30.0;
/// Seconds a profile's trigger outcomes are kept after the newest.
pub const NOTES_TTL: f64 = 30.0 * 86_400.0;
/// Entries of the outcome log every server appends to (approximately; the oldest go).
pub const OUTCOME_LOG_LENGTH: usize = 100_000;

pub(super) const TRIGGER_START: &str = r"
-- KEYS: trigger state. ARGV: id, trigger .. '\0' .. key, trigger, time, re-entry s, max live,
-- instance, ttl ms. 'ok', 'exists', 'reentry' (with the entry time) or 'max_live'.
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'i:' .. id) == 1 then
  return {'exists'}
end
local time = tonumber(ARGV[4])
local entered = redis.call('HGET', KEYS[1], 'e:' .. ARGV[3])
if entered and tonumber(ARGV[5]) > 0 and time < tonumber(entered) + tonumber(ARGV[5]) then
  return {'reentry', entered}
end
local live = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'k:' and fields[i + 1] == ARGV[2] then
    live = live + 1
  end
end
if live >= tonumber(ARGV[6]) then
  return {'max_live'}
end
redis.call('HSET', KEYS[1], 'i:' .. id, ARGV[7], 'k:' .. id, ARGV[2])
if not entered or tonumber(entered) < time then
  redis.call('HSET', KEYS[1], 'e:' .. ARGV[3], ARGV[4])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[8]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
return {'ok'}
";

pub(super) const TRIGGER_CANCEL: &str = r"
-- KEYS: trigger state. ARGV: trigger .. '\0' .. key, 1 to match the key (else any key).
-- The ids and keys of the instances taken out, in pairs.
local out = {}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if string.sub(f, 1, 2) == 'k:' then
    local match
    if ARGV[2] == '1' then
      match = v == ARGV[1]
    else
      match = string.sub(v, 1, #ARGV[1]) == ARGV[1]
    end
    if match then
      local id = string.sub(f, 3)
      redis.call('HDEL', KEYS[1], 'i:' .. id, f)
      out[#out + 1] = id
      out[#out + 1] = string.sub(v, #ARGV[1] + 1)
    end
  end
end
return out
";

pub(super) const TRIGGER_RESCHEDULE: &str = r"
-- KEYS: trigger state. ARGV: id, instance, ttl ms. 1 when the instance still waits (now with
-- its new fire time), 0 when it ended meanwhile.
if redis.call('HEXISTS', KEYS[1], 'i:' .. ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'i:' .. ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
";

pub(super) const TRIGGER_CLAIM: &str = r"
-- KEYS: a due shard. ARGV: now ms, lease end ms, most. The due members, leased to the caller.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
";

pub(super) const TRIGGER_END: &str = r"
-- KEYS: trigger state, outcomes. ARGV: id, outcome (postcard, '' none), outcomes ttl ms, kept,
-- decision delivered ('' none). Ends the instance (or its committed firing) once: 0 when it
-- was already ended.
local id = ARGV[1]
if redis.call('HDEL', KEYS[1], 'i:' .. id, 'k:' .. id, 'f:' .. id) == 0 then
  return 0
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'd:' .. ARGV[5], '1')
end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
";

pub(super) const TRIGGER_NOTE: &str = r"
-- KEYS: outcomes. ARGV: ttl ms, kept, outcome (postcard)...
for i = 3, #ARGV do
  redis.call('RPUSH', KEYS[1], ARGV[i])
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

pub(super) const DELIVERY_PUT: &str = r"
-- KEYS: body, tries, chan, exp, this channel's vis. ARGV: decision id, delivery, channel,
-- visible ms, expires ms, most queued. 1 queued, 0 already queued, -1 the queue is full.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[6]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], 0)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
return 1
";

pub(super) const DELIVERY_POLL: &str = r"
-- KEYS: body, tries, exp, this channel's vis. ARGV: now ms, visible again at ms, most.
-- Delivery, tries, ... of those that may go out now, each in flight until the second time.
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local expires = redis.call('ZSCORE', KEYS[3], id)
  local body = redis.call('HGET', KEYS[1], id)
  if not body then
    redis.call('ZREM', KEYS[4], id)
  elseif expires and tonumber(expires) > tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[4], ARGV[2], id)
    out[#out + 1] = body
    out[#out + 1] = tostring(redis.call('HINCRBY', KEYS[2], id, 1))
  end
end
return out
";

pub(super) const DELIVERY_TAKE: &str = r"
-- KEYS: body, tries, chan, exp. ARGV: key prefix of the channels' vis sets, mode ('ack': the
-- ids follow; 'expired': now ms and most follow). Takes the deliveries out; delivery, tries,
-- ... of those that were there.
local ids
if ARGV[2] == 'ack' then
  ids = {}
  for i = 3, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])
end
local out = {}
for _, id in ipairs(ids) do
  local body = redis.call('HGET', KEYS[1], id)
  if body then
    local channel = redis.call('HGET', KEYS[3], id)
    out[#out + 1] = body
    out[#out + 1] = redis.call('HGET', KEYS[2], id) or '0'
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    if channel then
      -- the channel's set shares the slot ({Q} in every delivery key)
      redis.call('ZREM', ARGV[1] .. channel, id)
    end
  end
end
return out
";

/// A claimed instance: its id and profile (the rest is in the profile's trigger state).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: u64,
    pub profile: String,
}

/// What the profile's trigger state holds of a claimed instance.
pub enum Found {
    /// Waiting to fire.
    Instance(Instance),
    /// Decided and committed by a server that stopped before queueing the delivery.
    Committed(Delivery),
    /// Cancelled or ended meanwhile.
    Gone,
}

fn trigger_key_pair(trigger: &str, key: &str) -> Vec<u8> {
    let mut pair = trigger.as_bytes().to_vec();
    pair.push(0);
    pair.extend_from_slice(key.as_bytes());
    pair
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("trigger records serialize")
}

fn with_tries(parts: Vec<Vec<u8>>) -> Outcome<Vec<Delivery>> {
    parts
        .chunks(2)
        .map(|pair| {
            let mut delivery: Delivery = decode(&pair[0], "a delivery")?;
            delivery.attempt = utf8(pair.get(1).map_or(&[][..], Vec::as_slice)).parse().unwrap_or(0);
            Ok(delivery)
        })
        .collect()
}

impl SharedRedis {
    pub(super) fn trigger_state_key(&self, profile: &str) -> String {
        format!("{}:{{{profile}}}:t", self.prefix)
    }

    fn trigger_notes_key(&self, profile: &str) -> String {
        format!("{}:{{{profile}}}:tw", self.prefix)
    }

    fn due_key(&self, shard: u64) -> String {
        format!("{}:{{T{shard}}}:due", self.prefix)
    }

    fn due_member(id: u64, profile: &str) -> String {
        format!("{id}|{profile}")
    }

    fn delivery_key(&self, part: &str) -> String {
        format!("{}:{{Q}}:{part}", self.prefix)
    }

    fn visible_key(&self, channel: &str) -> String {
        self.delivery_key(&format!("vis:{channel}"))
    }

    fn script(&self, lua: Lua, keys: Vec<String>, args: Vec<Vec<u8>>) -> Outcome<Value> {
        Ok(self.exec(&[Op::Script(lua, keys, args)])?.into_iter().next().unwrap_or(Value::Nil))
    }

    /// Starts an instance entered at `entered` unless the profile's re-entry window or
    /// `max_live` refuses it. It is due first, then recorded: a server that dies between the
    /// two leaves a due member with no instance, which the next claim drops.
    pub fn start_instance(
        &self,
        instance: &Instance,
        entered: f64,
        reentry: f64,
        max_live: usize,
        ttl: f64,
    ) -> Outcome<Started> {
        let due = self.due_key(instance.id % SHARDS);
        let member = Self::due_member(instance.id, &instance.profile);
        let fire_ms = ms(instance.fire_at);
        self.redis.attempt(|c| redis::cmd("ZADD").arg(&due).arg(&fire_ms).arg(&member).query::<i64>(c))?;
        let args = vec![
            text(instance.id),
            trigger_key_pair(&instance.trigger, &instance.key),
            instance.trigger.as_bytes().to_vec(),
            text(entered),
            text(reentry),
            text(max_live),
            encode(instance),
            ms(ttl),
        ];
        let reply = strings(self.script(Lua::TriggerStart, vec![self.trigger_state_key(&instance.profile)], args)?)?;
        let started = match reply.first().map(|r| utf8(r)).as_deref() {
            Some("ok") => return Ok(Started::Started),
            Some("exists") => return Ok(Started::Exists),
            Some("reentry") => Started::Reentry(reply.get(1).and_then(|t| utf8(t).parse().ok()).unwrap_or(entered)),
            Some("max_live") => Started::MaxLive,
            other => return Err(refused(&format!("the start script answered {other:?}"))),
        };
        self.redis.attempt(|c| redis::cmd("ZREM").arg(&due).arg(&member).query::<i64>(c))?;
        Ok(started)
    }

    /// Takes out the profile's instances of `trigger` (with `key`, when given): their ids and
    /// keys.
    pub fn cancel_instances(&self, profile: &str, trigger: &str, key: Option<&str>) -> Outcome<Vec<(u64, String)>> {
        let args = vec![trigger_key_pair(trigger, key.unwrap_or_default()), text(u8::from(key.is_some()))];
        let parts = strings(self.script(Lua::TriggerCancel, vec![self.trigger_state_key(profile)], args)?)?;
        let cancelled: Vec<(u64, String)> =
            parts.chunks(2).filter_map(|pair| Some((utf8(&pair[0]).parse().ok()?, utf8(pair.get(1)?)))).collect();
        self.forget_due(profile, cancelled.iter().map(|(id, _)| *id))?;
        Ok(cancelled)
    }

    fn forget_due(&self, profile: &str, ids: impl Iterator<Item = u64>) -> Outcome<()> {
        let commands: Vec<redis::Cmd> = ids
            .map(|id| {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(self.due_key(id % SHARDS)).arg(Self::due_member(id, profile));
                cmd
            })
            .collect();
        self.redis.batch(&commands).map(drop)
    }

    /// Up to `most` instances due at `now`, across the shards, leased to this server for
    /// [`CLAIM_LEASE`] seconds.
    pub fn claim_due(&self, now: f64, most: usize) -> Outcome<Vec<Claimed>> {
        // Every shard at once (one pipeline), each for its part of `most`.
        let per_shard = text(most.div_ceil(SHARDS as usize).max(1));
        let ops: Vec<Op> = (0..SHARDS)
            .map(|shard| {
                Op::Script(
                    Lua::TriggerClaim,
                    vec![self.due_key(shard)],
                    vec![ms(now), ms(now + CLAIM_LEASE), per_shard.clone()],
                )
            })
            .collect();
        let mut claimed = Vec::new();
        for reply in self.exec(&ops)? {
            for member in strings(reply)? {
                let member = utf8(&member);
                if let Some((id, profile)) = member.split_once('|')
                    && let Ok(id) = id.parse()
                {
                    claimed.push(Claimed { id, profile: profile.to_owned() });
                }
            }
        }
        Ok(claimed)
    }

    /// What the profile's trigger state holds of a claimed instance.
    pub fn find_instance(&self, claimed: &Claimed) -> Outcome<Found> {
        let key = self.trigger_state_key(&claimed.profile);
        let (instance, committed): (Option<Vec<u8>>, Option<Vec<u8>>) = self.redis.attempt(|c| {
            redis::cmd("HMGET").arg(&key).arg(format!("i:{}", claimed.id)).arg(format!("f:{}", claimed.id)).query(c)
        })?;
        Ok(match (committed, instance) {
            (Some(d), _) => Found::Committed(decode(&d, "a committed delivery")?),
            (None, Some(i)) => Found::Instance(decode(&i, "a trigger instance")?),
            (None, None) => Found::Gone,
        })
    }

    /// Fires the instance again at `fire_at` (quiet hours), unless it ended meanwhile.
    pub fn reschedule(&self, instance: &Instance, ttl: f64) -> Outcome<()> {
        let args = vec![text(instance.id), encode(instance), ms(ttl)];
        let kept = self.script(Lua::TriggerReschedule, vec![self.trigger_state_key(&instance.profile)], args)?;
        let (due, member, fire) = (
            self.due_key(instance.id % SHARDS),
            Self::due_member(instance.id, &instance.profile),
            ms(instance.fire_at),
        );
        self.redis.attempt(|c| match kept {
            Value::Int(1) => redis::cmd("ZADD").arg(&due).arg(&fire).arg(&member).query::<i64>(c).map(drop),
            _ => redis::cmd("ZREM").arg(&due).arg(&member).query::<i64>(c).map(drop),
        })
    }

    /// Ends an instance once, noting its outcome (and the decision it delivered, listed for
    /// the profile's erasure): false when it had already ended.
    pub fn end_instance(
        &self,
        instance: u64,
        profile: &str,
        note: Option<(&HistoryEntry, Option<u64>)>,
    ) -> Outcome<bool> {
        let entry = note.map(|(n, _)| n);
        let (note, delivered) = note.map_or((Vec::new(), None), |(n, d)| (encode(n), d));
        let args = vec![
            text(instance),
            note,
            ms(NOTES_TTL),
            text(HISTORY_PER_PROFILE),
            delivered.map(text).unwrap_or_default(),
        ];
        let keys = vec![self.trigger_state_key(profile), self.trigger_notes_key(profile)];
        let ended = matches!(self.script(Lua::TriggerEnd, keys, args)?, Value::Int(1));
        self.forget_due(profile, std::iter::once(instance))?;
        if ended && let Some(entry) = entry {
            self.log_outcomes(profile, std::slice::from_ref(entry))?;
        }
        Ok(ended)
    }

    /// Notes outcomes of instances that did not start, or of deliveries.
    pub fn note(&self, profile: &str, notes: &[HistoryEntry]) -> Outcome<()> {
        if notes.is_empty() {
            return Ok(());
        }
        let mut args = vec![ms(NOTES_TTL), text(HISTORY_PER_PROFILE)];
        args.extend(notes.iter().map(encode));
        self.script(Lua::TriggerNote, vec![self.trigger_notes_key(profile)], args)?;
        self.log_outcomes(profile, notes)
    }

    fn outcome_log_key(&self) -> String {
        format!("{}:trigger-log", self.prefix)
    }

    /// Appends outcomes to the log every server writes (after the profile's own record: a
    /// server that dies in between leaves them out of the log only).
    fn log_outcomes(&self, profile: &str, notes: &[HistoryEntry]) -> Outcome<()> {
        let key = self.outcome_log_key();
        let commands: Vec<redis::Cmd> = notes
            .iter()
            .map(|n| {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&key).arg("MAXLEN").arg("~").arg(OUTCOME_LOG_LENGTH).arg("*");
                cmd.arg("p").arg(profile).arg("e").arg(encode(n));
                cmd
            })
            .collect();
        self.redis.batch(&commands).map(drop)
    }

    /// Up to `most` outcomes of the log after the entry `after` ('' from its start), oldest
    /// first, and the entry to read after next.
    pub fn outcomes_after(&self, after: &str, most: usize) -> Outcome<(Vec<(String, HistoryEntry)>, String)> {
        type Entries = Vec<(String, std::collections::HashMap<String, Vec<u8>>)>;
        let key = self.outcome_log_key();
        let start = if after.is_empty() { "-".to_owned() } else { format!("({after}") };
        let entries: Entries = self
            .redis
            .attempt(|c| redis::cmd("XRANGE").arg(&key).arg(&start).arg("+").arg("COUNT").arg(most).query(c))?;
        let next = entries.last().map_or_else(|| after.to_owned(), |(id, _)| id.clone());
        let outcomes = entries
            .into_iter()
            .filter_map(|(_, fields)| {
                let entry = postcard::from_bytes(fields.get("e")?).ok()?;
                Some((utf8(fields.get("p")?), entry))
            })
            .collect();
        Ok((outcomes, next))
    }

    pub fn notes(&self, profile: &str) -> Outcome<Vec<HistoryEntry>> {
        let key = self.trigger_notes_key(profile);
        let entries: Vec<Vec<u8>> = self.redis.attempt(|c| redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(c))?;
        Ok(entries.iter().filter_map(|e| postcard::from_bytes(e).ok()).collect())
    }

    fn delivery_keys(&self) -> Vec<String> {
        ["body", "tries", "chan", "exp"].iter().map(|part| self.delivery_key(part)).collect()
    }

    /// Queues a delivery (once: a second put of the same decision is a no-op). False when
    /// the queue is full.
    pub fn put_delivery(&self, delivery: &Delivery) -> Outcome<bool> {
        let mut keys = self.delivery_keys();
        keys.push(self.visible_key(&delivery.channel));
        let args = vec![
            text(delivery.decision_id),
            encode(delivery),
            delivery.channel.as_bytes().to_vec(),
            ms(delivery.visible_at),
            ms(delivery.expires_at),
            text(MAX_DELIVERIES),
        ];
        Ok(!matches!(self.script(Lua::DeliveryPut, keys, args)?, Value::Int(-1)))
    }

    /// Up to `most` deliveries of `channel` that may go out at `now`, each in flight for
    /// `visibility` seconds.
    pub fn poll_deliveries(&self, channel: &str, most: usize, visibility: f64, now: f64) -> Outcome<Vec<Delivery>> {
        let keys = vec![
            self.delivery_key("body"),
            self.delivery_key("tries"),
            self.delivery_key("exp"),
            self.visible_key(channel),
        ];
        let args = vec![ms(now), ms(now + visibility), text(most)];
        with_tries(strings(self.script(Lua::DeliveryPoll, keys, args)?)?)
    }

    /// Takes acknowledged deliveries out: those that were waiting.
    pub fn ack_deliveries(&self, decision_ids: &[u64]) -> Outcome<Vec<Delivery>> {
        let mut args = vec![self.visible_key("").into_bytes(), b"ack".to_vec()];
        args.extend(decision_ids.iter().map(|&id| text(id)));
        with_tries(strings(self.script(Lua::DeliveryTake, self.delivery_keys(), args)?)?)
    }

    /// Takes out up to `most` deliveries past their time to live at `now`.
    pub fn take_expired(&self, now: f64, most: usize) -> Outcome<Vec<Delivery>> {
        let args = vec![self.visible_key("").into_bytes(), b"expired".to_vec(), ms(now), text(most)];
        with_tries(strings(self.script(Lua::DeliveryTake, self.delivery_keys(), args)?)?)
    }

    /// Instances waiting (or leased), across the shards, and deliveries queued.
    pub fn trigger_counts(&self) -> Outcome<(usize, usize)> {
        let (dues, exp): (Vec<String>, String) =
            ((0..SHARDS).map(|s| self.due_key(s)).collect(), self.delivery_key("exp"));
        self.redis.attempt(|c| {
            let mut timers = 0;
            for due in &dues {
                timers += redis::cmd("ZCARD").arg(due).query::<usize>(c)?;
            }
            Ok((timers, redis::cmd("ZCARD").arg(&exp).query::<usize>(c)?))
        })
    }

    /// Erases a profile's instances, outcomes and queued deliveries; the deliveries taken
    /// out (to give their reservations back).
    pub fn erase_triggers(&self, profile: &str) -> Outcome<Vec<Delivery>> {
        let key = self.trigger_state_key(profile);
        let fields: Vec<String> = self.redis.attempt(|c| redis::cmd("HKEYS").arg(&key).query(c))?;
        let instances = fields.iter().filter_map(|f| f.strip_prefix("i:")?.parse::<u64>().ok());
        self.forget_due(profile, instances)?;
        let decisions: Vec<u64> = fields.iter().filter_map(|f| f.strip_prefix("d:")?.parse().ok()).collect();
        let taken = if decisions.is_empty() { Vec::new() } else { self.ack_deliveries(&decisions)? };
        let notes = self.trigger_notes_key(profile);
        self.redis.attempt(|c| redis::cmd("DEL").arg(&key).arg(&notes).query::<i64>(c))?;
        Ok(taken)
    }
}
