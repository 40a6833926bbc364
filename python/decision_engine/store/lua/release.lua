-- Withdraws a decision that was not shown: its contacts leave the profile's history, its
-- budget units go back, and it takes no outcome.
-- KEYS[1]: the pending decision.
-- ARGV: key prefix, releasing server, forward_unknown ('1': replayed, pass a release Redis
--       lost on to the deciding server), deciding server, decision id, history_ttl
-- Returns {'ok', owner}, {'unknown', ''} or {'reported', ''} (it has an outcome: it was shown).
local p = redis.call('HGETALL', KEYS[1])
if #p == 0 then
  if ARGV[3] == '1' and ARGV[4] ~= ARGV[2] then
    redis.call('RPUSH', ARGV[1] .. ':inbox:' .. ARGV[4], cjson.encode({op = 'release', id = ARGV[5]}))
    redis.call('EXPIRE', ARGV[1] .. ':inbox:' .. ARGV[4], 7 * 24 * 3600)
    return {'ok', ARGV[4]}
  end
  return {'unknown', ''}
end
local d = {}
for i = 1, #p, 2 do
  d[p[i]] = p[i + 1]
  if string.sub(p[i], 1, 2) == 'r:' then
    return {'reported', ''}
  end
end
local prefix = ARGV[1]
local members = cjson.decode(d.members)
if #members > 0 and redis.call('ZREM', prefix .. ':h:' .. d.profile, unpack(members)) > 0 then
  -- the history changed (a late release may find it expired: then there is nothing to bump)
  local vkey = prefix .. ':v:' .. d.profile
  redis.call('INCR', vkey)
  redis.call('EXPIRE', vkey, ARGV[6])
end
for _, key in ipairs(cjson.decode(d.budgets)) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
redis.call('DEL', KEYS[1])
if d.owner ~= ARGV[2] then
  local inbox = prefix .. ':inbox:' .. d.owner
  redis.call('RPUSH', inbox, cjson.encode({op = 'release', id = d.id}))
  redis.call('EXPIRE', inbox, 7 * 24 * 3600)
end
return {'ok', d.owner}
