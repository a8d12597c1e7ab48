-- Commit one transfer transition atomically: check the version (and, for a new transfer, its creating request),
-- write the transfer record, move its count, index it, queue its outbound messages, move the due-step index,
-- chain the audit entry, and publish the new version to the transfer's watchers.
--
-- KEYS: 1 transfer record, 2 the creating request's record (new transfers), 3 counts hash, 4 source-region index,
--       5 target-region index, 6 outbox stream, 7 due-step index, 8 audit stream, 9 audit counter,
--       10 quiet-step index (one slot)
-- ARGV: 1 expected version ("0": must not exist), 2 the record ("<version>|<blob>"), 3 the creating request's
--       record, 4 its ttl in seconds, 5 index member ("" to leave the index alone), 6 count field to decrement
--       ("" none), 7 count field to increment ("" none), 8 the change channel, 9 the new version,
--       then the number of messages, and for each: its number of field/value items, then those items,
--       then the number of due-index changes, each "ADD" member due-score quiet-score | "REM" member (both
--       indexes),
--       then the audit field/value items.
-- Returns {"OK"} | {"DUPLICATE", creating request's record} | {"CONFLICT", version}.

if ARGV[1] == "0" then
  local existing = redis.call("GET", KEYS[2])
  if existing then return {"DUPLICATE", existing} end
  if redis.call("EXISTS", KEYS[1]) == 1 then return {"CONFLICT", "exists"} end
  redis.call("SET", KEYS[2], ARGV[3], "EX", tonumber(ARGV[4]))
else
  local version = string.match(redis.call("GETRANGE", KEYS[1], 0, 15), "^(%d+)|") or "0"
  if version ~= ARGV[1] then return {"CONFLICT", version} end
end

redis.call("SET", KEYS[1], ARGV[2])
if ARGV[5] ~= "" then
  redis.call("ZADD", KEYS[4], 0, ARGV[5])
  redis.call("ZADD", KEYS[5], 0, ARGV[5])
end
if ARGV[6] ~= "" then redis.call("HINCRBY", KEYS[3], ARGV[6], -1) end
if ARGV[7] ~= "" then redis.call("HINCRBY", KEYS[3], ARGV[7], 1) end

local i = 10
local messages = tonumber(ARGV[i])
i = i + 1
for _ = 1, messages do
  local m = tonumber(ARGV[i])
  local fields = {}
  for j = 1, m do fields[j] = ARGV[i + j] end
  i = i + m + 1
  redis.call("XADD", KEYS[6], "*", unpack(fields))
end

local changes = tonumber(ARGV[i])
i = i + 1
for _ = 1, changes do
  if ARGV[i] == "ADD" then
    redis.call("ZADD", KEYS[7], tonumber(ARGV[i + 2]), ARGV[i + 1])
    redis.call("ZADD", KEYS[10], tonumber(ARGV[i + 3]), ARGV[i + 1])
    i = i + 4
  else
    redis.call("ZREM", KEYS[7], ARGV[i + 1])
    redis.call("ZREM", KEYS[10], ARGV[i + 1])
    i = i + 2
  end
end

local audit_fields = {}
for j = i, #ARGV do audit_fields[#audit_fields + 1] = ARGV[j] end
audit(KEYS[8], KEYS[9], audit_fields)
redis.call("PUBLISH", ARGV[8], ARGV[9])
return {"OK"}
