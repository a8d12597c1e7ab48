-- Commit a settlement or its cancellation atomically: refuse a closed month, a repeated msgid or a changed
-- settlement; write the settlement, index it, and move the month's clearing totals.
--
-- A settlement's key is derived from its msgid, so the settlement itself is the settle message's record: its
-- value starts "<version>|<payload fingerprint>|". A cancelling message's msgid has a record of its own.
--
-- KEYS: 1 settlement, 2 the cancelling msgid's record, 3 month-closed flag, 4 clearing hash, 5 hospital index,
--       6 month set, 7 audit stream, 8 audit counter (one slot)
-- ARGV: 1 expected settlement version ("0": must not exist), 2 the settlement ("<version>|<fingerprint>|..."),
--       3 the cancelling msgid's record ("" for a settlement), 4 its ttl (s), 5 settle time ms (index score),
--       6 settlement id, 7 number of audit items, then those items, then clearing field/increment pairs.
-- Returns {"OK"} | {"DUPLICATE", fingerprint} | {"DUPLICATE_CANCEL", record} | {"CLOSED"} | {"CONFLICT"}.

local head = redis.call("GETRANGE", KEYS[1], 0, 64)
local version, fingerprint = string.match(head, "^(%d+)|([^|]*)|")
if ARGV[1] == "0" then
  if version then return {"DUPLICATE", fingerprint} end
else
  local existing = redis.call("GET", KEYS[2])
  if existing then return {"DUPLICATE_CANCEL", existing} end
end
if redis.call("EXISTS", KEYS[3]) == 1 then return {"CLOSED"} end
if ARGV[1] ~= "0" and version ~= ARGV[1] then return {"CONFLICT"} end

redis.call("SET", KEYS[1], ARGV[2])
if ARGV[3] ~= "" then redis.call("SET", KEYS[2], ARGV[3], "EX", tonumber(ARGV[4])) end
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
