-- Commits the decisions of one request, made from a snapshot of the profile's history.
-- KEYS: version, history, budget_1..budget_nb, pending_1..pending_np
-- ARGV: expected version ('' skips the check; 'force' replays a decision made while Redis
--       was away: nothing is checked and a decision already there is not counted twice),
--       trim_below, history_ttl, pending_ttl, nb, np,
--       allowed_1..allowed_nb, budget_ttl_1..budget_ttl_nb,
--       events (JSON array of [score, member]), pending_1..pending_np (JSON [field, value, ...])
-- Returns {'ok', version}, {'conflict', version} or {'budget', index of the spent budget}.
local vkey, hkey = KEYS[1], KEYS[2]
local expected = ARGV[1]
local nb, np = tonumber(ARGV[5]), tonumber(ARGV[6])
local allowed, ttls = 6, 6 + nb
if expected == 'force' then
  if np > 0 and redis.call('EXISTS', KEYS[2 + nb + 1]) == 1 then
    return {'ok', redis.call('GET', vkey) or '0'}
  end
else
  if expected ~= '' then
    local current = redis.call('GET', vkey) or '0'
    if current ~= expected then
      return {'conflict', current}
    end
  end
  -- a key may come more than once (one offer on several placements of a page): each unit
  -- this commit takes counts against the allowance
  local taking = {}
  for i = 1, nb do
    local key = KEYS[2 + i]
    taking[key] = (taking[key] or 0) + 1
    local used = tonumber(redis.call('GET', key) or '0')
    if used + taking[key] > tonumber(ARGV[allowed + i]) then
      return {'budget', tostring(i)}
    end
  end
end
for i = 1, nb do
  redis.call('INCR', KEYS[2 + i])
  redis.call('EXPIRE', KEYS[2 + i], ARGV[ttls + i])
end
local events = cjson.decode(ARGV[7 + 2 * nb])
if #events > 0 then
  for _, event in ipairs(events) do
    redis.call('ZADD', hkey, event[1], event[2])
  end
  redis.call('ZREMRANGEBYSCORE', hkey, '-inf', '(' .. ARGV[2])
  redis.call('EXPIRE', hkey, ARGV[3])
  redis.call('INCR', vkey)
  redis.call('EXPIRE', vkey, ARGV[3])
end
for i = 1, np do
  local key = KEYS[2 + nb + i]
  redis.call('HSET', key, unpack(cjson.decode(ARGV[7 + 2 * nb + i])))
  redis.call('EXPIRE', key, ARGV[4])
end
return {'ok', redis.call('GET', vkey) or '0'}
