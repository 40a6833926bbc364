-- Records an outcome against a pending decision, whichever server made it.
-- KEYS[1]: the pending decision
-- ARGV: key prefix, offer id ('' = the decision's only offer), reward, dismissed ('1'/'0'),
--       reporting server, history_ttl, trim_below offset (seconds of history kept),
--       forward_unknown ('1': a replayed outcome: if Redis lost the decision, pass it on to
--       the deciding server anyway, whose engine still knows it), deciding server, decision id
-- Returns {'ok', owner, offer} or {error, detail}: unknown, no_offer, ambiguous, not_shown, already.
local p = redis.call('HGETALL', KEYS[1])
if #p == 0 then
  if ARGV[8] == '1' and ARGV[9] ~= ARGV[5] then
    local forward = {op = 'outcome', id = ARGV[10], offer = ARGV[2], reward = ARGV[3], dismissed = ARGV[4]}
    redis.call('RPUSH', ARGV[1] .. ':inbox:' .. ARGV[9], cjson.encode(forward))
    redis.call('EXPIRE', ARGV[1] .. ':inbox:' .. ARGV[9], 7 * 24 * 3600)
    return {'ok', ARGV[9], ARGV[2]}
  end
  return {'unknown', ''}
end
local d = {}
for i = 1, #p, 2 do
  d[p[i]] = p[i + 1]
end
local offers = cjson.decode(d.offers)
local offer = ARGV[2]
if offer == '' then
  if #offers == 0 then
    return {'no_offer', ''}
  end
  if #offers > 1 then
    return {'ambiguous', table.concat(offers, ', ')}
  end
  offer = offers[1]
else
  local found = false
  for _, o in ipairs(offers) do
    if o == offer then
      found = true
    end
  end
  if not found then
    return {'not_shown', offer}
  end
end
if redis.call('HSETNX', KEYS[1], 'r:' .. offer, ARGV[3]) == 0 then
  return {'already', offer}
end
local prefix, reward, dismissed = ARGV[1], tonumber(ARGV[3]), ARGV[4] == '1'
if d.profile ~= '' and (reward > 0 or dismissed) then
  -- a cooldown event, stamped with the decision's time as the engine does
  local groups = cjson.decode(d.groups)
  local kind = 'dismissed'
  if reward > 0 then
    kind = 'converted'
  end
  local member = cjson.encode({o = offer, c = d.channel, t = d.time, k = kind, g = groups[offer], d = d.id})
  local hkey, vkey = prefix .. ':h:' .. d.profile, prefix .. ':v:' .. d.profile
  redis.call('ZADD', hkey, d.time, member)
  redis.call('ZREMRANGEBYSCORE', hkey, '-inf', '(' .. (tonumber(d.time) - tonumber(ARGV[7])))
  redis.call('EXPIRE', hkey, ARGV[6])
  redis.call('INCR', vkey)
  redis.call('EXPIRE', vkey, ARGV[6])
end
if reward > 0 then
  local budgets = cjson.decode(d.conversion_budgets)
  local key = budgets[offer]
  if key then
    redis.call('INCR', key)
    redis.call('EXPIRE', key, d.budget_ttl)
  end
end
if d.owner ~= ARGV[5] then
  local inbox = prefix .. ':inbox:' .. d.owner
  redis.call('RPUSH', inbox, cjson.encode({op = 'outcome', id = d.id, offer = offer, reward = ARGV[3], dismissed = ARGV[4]}))
  redis.call('EXPIRE', inbox, 7 * 24 * 3600)
end
return {'ok', d.owner, offer}
