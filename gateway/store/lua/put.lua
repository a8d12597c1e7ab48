-- Write a small record set atomically unless its idempotency key exists (filings).
--
-- KEYS: 1 idempotency key, 2.. the keys the operations name by index; the last two: audit stream, counter
-- ARGV: 1 idempotency record, 2 its ttl (s), 3 number of audit items, then those items, then operations:
--       "SET" k v | "HSET" k field v | "ZADD" k score m, where k is an index into KEYS.
-- Returns {"OK"} | {"DUPLICATE", record}.

local existing = redis.call("GET", KEYS[1])
if existing then return {"DUPLICATE", existing} end
redis.call("SET", KEYS[1], ARGV[1], "EX", tonumber(ARGV[2]))
local n_audit = tonumber(ARGV[3])
local audit_fields = {}
for j = 1, n_audit do audit_fields[j] = ARGV[3 + j] end
audit(KEYS[#KEYS - 1], KEYS[#KEYS], audit_fields)
local i = 4 + n_audit
while i <= #ARGV do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if op == "ZADD" then
    redis.call("ZADD", key, tonumber(ARGV[i + 2]), ARGV[i + 3])
    i = i + 4
  elseif op == "HSET" then
    redis.call("HSET", key, ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  else
    redis.call(op, key, ARGV[i + 2])
    i = i + 3
  end
end
return {"OK"}
