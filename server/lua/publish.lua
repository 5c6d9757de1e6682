--input: KEYS[1] = the channel's msg_id key      (e.g. channel:{C}:msg_id)
--input: KEYS[2] = the channel's backlog key     (e.g. channel:{C}:msg_backlog)
--input: KEYS[3] = the channel's pub/sub channel (e.g. channel:{C}:pubsub)
--input: ARGV[1] = the payload: one JSON value as text, already validated by the caller
--input: ARGV[2] = backlog length, an integer >= 1 (1 = state channel: only the newest survives)
--input: ARGV[3] = ttl in seconds of both keys, 0 = the keys never expire
--output: the new message's id (integer)
--
-- Atomic publish of one message (see PROTOCOL.md section 2): an id, its backlog entry and its
-- pub/sub message can never be seen apart. Self-contained so that any backend (Python, Ruby,
-- ...) can publish by running this file with EVAL/EVALSHA and the same keys.
local backlog = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if backlog == nil or backlog < 1 then
  return redis.error_reply('backlog length must be an integer >= 1')
end
if ttl == nil or ttl < 0 then
  return redis.error_reply('ttl must be an integer >= 0')
end
local id = redis.call('INCR', KEYS[1])
-- string.format('%d') keeps large ids out of Lua's %.14g number formatting.
local msg = '{"id":' .. string.format('%d', id) .. ',"payload":' .. ARGV[1] .. '}'
redis.call('ZADD', KEYS[2], id, msg)
-- Keep the newest `backlog` messages: drop every id <= id - backlog.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', id - backlog))
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', KEYS[3], msg)
return id
