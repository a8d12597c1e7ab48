-- Commit a settlement or its cancellation atomically: refuse a closed month or a used msgid, write the
-- settlement, remember the msgid, index it, and move the month's clearing totals.
--
-- KEYS: 1 settlement, 2 msgid record, 3 month-closed flag, 4 clearing hash, 5 hospital index, 6 month set,
--       7 audit stream, 8 audit counter
-- ARGV: 1 expected settlement version ("0": must not exist), 2 settlement json, 3 msgid record, 4 its ttl (s),
--       5 settle time ms (index score), 6 settlement id, 7 number of audit items, then those items, then
--       clearing field/increment pairs.
-- Returns {"OK"} | {"DUPLICATE", record} | {"CLOSED"} | {"CONFLICT"}.

local existing = redis.call("GET", KEYS[2])
if existing then return {"DUPLICATE", existing} end
if redis.call("EXISTS", KEYS[3]) == 1 then return {"CLOSED"} end
local current = redis.call("GET", KEYS[1])
if ARGV[1] == "0" then
  if current then return {"CONFLICT"} end
else
  if not current or cjson.decode(current)["version"] ~= tonumber(ARGV[1]) then return {"CONFLICT"} end
end
redis.call("SET", KEYS[1], ARGV[2])
redis.call("SET", KEYS[2], ARGV[3], "EX", tonumber(ARGV[4]))
redis.call("ZADD", KEYS[5], tonumber(ARGV[5]), ARGV[6])
redis.call("SADD", KEYS[6], ARGV[6])
local n_audit = tonumber(ARGV[7])
local audit_fields = {}
for j = 1, n_audit do audit_fields[j] = ARGV[7 + j] end
for i = 8 + n_audit, #ARGV, 2 do
  redis.call("HINCRBY", KEYS[4], ARGV[i], tonumber(ARGV[i + 1]))
end
audit(KEYS[7], KEYS[8], audit_fields)
return {"OK"}
