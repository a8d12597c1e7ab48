-- Append an operator action to the operators' audit chain.
-- KEYS: 1 audit stream, 2 its sequence counter. ARGV: field/value items.
audit(KEYS[1], KEYS[2], ARGV)
return "OK"
