-- Shared by every script that changes state (prepended when the script is loaded): append one entry to a
-- hash-chained audit stream. Each entry carries its sequence number, the fields, and
-- hash = the first 24 hex digits of SHA1(seq \n previous entry's hash \n key=value ...) (SHA-1: the digest Redis
-- scripting offers; 96 bits). Changing, removing or re-ordering an entry breaks the chain (`sigw audit verify`).
local function audit(stream, count_key, fields)
  local seq = redis.call("INCR", count_key)
  local prev = "genesis"
  local last = redis.call("XREVRANGE", stream, "+", "-", "COUNT", 1)
  if last[1] then
    local f = last[1][2]
    for i = 1, #f, 2 do
      if f[i] == "hash" then prev = f[i + 1] end
    end
  end
  local body = tostring(seq) .. "\n" .. prev
  for i = 1, #fields, 2 do
    body = body .. "\n" .. fields[i] .. "=" .. fields[i + 1]
  end
  local entry = {"seq", tostring(seq)}
  for i = 1, #fields do table.insert(entry, fields[i]) end
  table.insert(entry, "hash")
  table.insert(entry, string.sub(redis.sha1hex(body), 1, 24))
  redis.call("XADD", stream, "*", unpack(entry))
end

