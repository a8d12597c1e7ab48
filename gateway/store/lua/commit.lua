-- Commit one transfer transition atomically: check the idempotency key and the version, write the
-- transfer, append its timeline event, move its count, index it, and queue its outbound messages.
--
-- KEYS: 1 transfer hash, 2 events stream, 3 idempotency key, 4 counts hash, 5 source-region index,
--       6 target-region index, 7 outbox stream, 8 due-step index, 9 audit stream, 10 audit counter (one slot)
-- ARGV: 1 expected version ("0": must not exist), 2 new version, 3 state, 4 transfer json,
--       5 idempotency record, 6 its ttl in seconds, 7 index member ("" to leave the index alone),
--       8 count field to decrement ("" none), 9 count field to increment ("" none),
--       10 number of event field/value items, then those items,
--       then the number of messages, and for each: its number of field/value items, then those items,
--       then the number of due-index changes, each "ADD" member score | "REM" member,
--       then the number of audit field/value items, then those items.
-- Returns {"OK", event id, message ids...} | {"DUPLICATE", idempotency record} | {"CONFLICT", version}.

local existing = redis.call("GET", KEYS[3])
if existing then
  return {"DUPLICATE", existing}
end
local version = redis.call("HGET", KEYS[1], "version")
if ARGV[1] == "0" then
  if version then return {"CONFLICT", version} end
elseif version ~= ARGV[1] then
  return {"CONFLICT", version or "0"}
end

redis.call("HSET", KEYS[1], "json", ARGV[4], "state", ARGV[3], "version", ARGV[2])
redis.call("SET", KEYS[3], ARGV[5], "EX", tonumber(ARGV[6]))
if ARGV[7] ~= "" then
  redis.call("ZADD", KEYS[5], 0, ARGV[7])
  redis.call("ZADD", KEYS[6], 0, ARGV[7])
end
if ARGV[8] ~= "" then redis.call("HINCRBY", KEYS[4], ARGV[8], -1) end
if ARGV[9] ~= "" then redis.call("HINCRBY", KEYS[4], ARGV[9], 1) end

local i = 10
local n = tonumber(ARGV[i])
local event = {}
for j = 1, n do event[j] = ARGV[i + j] end
i = i + n + 1
local result = {"OK", redis.call("XADD", KEYS[2], "*", unpack(event))}

local messages = tonumber(ARGV[i])
i = i + 1
for _ = 1, messages do
  local m = tonumber(ARGV[i])
  local fields = {}
  for j = 1, m do fields[j] = ARGV[i + j] end
  i = i + m + 1
  table.insert(result, redis.call("XADD", KEYS[7], "*", unpack(fields)))
end

local changes = tonumber(ARGV[i])
i = i + 1
for _ = 1, changes do
  if ARGV[i] == "ADD" then
    redis.call("ZADD", KEYS[8], tonumber(ARGV[i + 2]), ARGV[i + 1])
    i = i + 3
  else
    redis.call("ZREM", KEYS[8], ARGV[i + 1])
    i = i + 2
  end
end

local n_audit = tonumber(ARGV[i])
local audit_fields = {}
for j = 1, n_audit do audit_fields[j] = ARGV[i + j] end
audit(KEYS[9], KEYS[10], audit_fields)
return result
