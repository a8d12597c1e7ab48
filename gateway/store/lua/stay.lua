-- Write a stay of the national interface if it is still at the version the caller read.
--
-- KEYS: 1 the stay, 2 its claim key (the hospital the mdtrt_id belongs to, shared with sigw.v1 settlements)
-- ARGV: 1 the version read (0: create), 2 the new value, 3 the hospital
-- Returns {"OK"} | {"EXISTS", current value} (create of an existing stay) | {"CONFLICT"} | {"TAKEN", owner}

local current = redis.call("GET", KEYS[1])
if ARGV[1] == "0" then
  if current then return {"EXISTS", current} end
  local owner = redis.call("GET", KEYS[2])
  if owner and owner ~= ARGV[3] then return {"TAKEN", owner} end
  redis.call("SET", KEYS[2], ARGV[3])
  redis.call("SET", KEYS[1], ARGV[2])
  return {"OK"}
end
if not current or string.match(current, "^(%d+)|") ~= ARGV[1] then return {"CONFLICT"} end
redis.call("SET", KEYS[1], ARGV[2])
return {"OK"}
