-- Write a small record set atomically unless its idempotency key exists (filings).
--
-- KEYS: 1 idempotency key, 2.. the keys the operations name by index
-- ARGV: 1 idempotency record, 2 its ttl (s), then operations: "SET" k v | "SADD" k m | "ZADD" k score m,
--       where k is an index into KEYS.
-- Returns {"OK"} | {"DUPLICATE", record}.

local existing = redis.call("GET", KEYS[1])
if existing then return {"DUPLICATE", existing} end
redis.call("SET", KEYS[1], ARGV[1], "EX", tonumber(ARGV[2]))
local i = 3
while i <= #ARGV do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if op == "ZADD" then
    redis.call("ZADD", key, tonumber(ARGV[i + 2]), ARGV[i + 3])
    i = i + 4
  else
    redis.call(op, key, ARGV[i + 2])
    i = i + 3
  end
end
return {"OK"}
