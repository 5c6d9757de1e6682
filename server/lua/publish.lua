--input: KEYS[1] = the channel's msg_id key      (e.g. channel:{C}:msg_id)
--input: KEYS[2] = the channel's backlog key     (e.g. channel:{C}:msg_backlog)
--input: KEYS[3] = the channel's pub/sub channel (e.g. channel:{C}:pubsub)
--input: ARGV[1] = the payload: one JSON value as text, already validated by the caller
--input: ARGV[2] = backlog length, an integer >= 1 (1 = state channel: only the newest survives)
--input: ARGV[3] = ttl in seconds of both keys, 0 = the keys never expire
--input: ARGV[4] = optional: "sharded" on a Redis Cluster (the message goes out with SPUBLISH,
--input:           to the sharded subscribers of the channel's shard); absent or anything
--input:           else: PUBLISH (a standalone Redis, Sentinel; version-1 subscribers)
--output: the new message's id (integer)
--
-- Atomic publish of one message (see PROTOCOL.md section 2): an id, its backlog entry and its
-- pub/sub message can never be seen apart. Self-contained so that any backend (Python, Ruby,
-- ...) can publish by running this file with EVAL/EVALSHA and the same keys.
--
-- Ids never come back: a new id is max(N + 1, Redis TIME in microseconds), so a channel that
-- Redis lost (flushed, expired) or rolled back (older snapshot, failover) starts again above
-- every id it issued before. Each message names its predecessor N in "prev", which is how
-- readers tell an unbroken history from one with a hole.
local backlog = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if backlog == nil or backlog < 1 then
  return redis.error_reply('backlog length must be an integer >= 1')
end
if ttl == nil or ttl < 0 then
  return redis.error_reply('ttl must be an integer >= 0')
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n == nil or n < 0 or n >= 9007199254740991 or n ~= math.floor(n) then
  return redis.error_reply('msg_id is not an integer in 0..2^53-2')
end
-- Doubles hold these integers exactly (they stay below 2^53: about 1.7e15 today).
local t = redis.call('TIME')
local id = tonumber(t[1]) * 1000000 + tonumber(t[2])
if id < n + 1 then id = n + 1 end
-- string.format('%d') keeps large ids out of Lua's %.14g number formatting.
local ids = string.format('%d', id)
local msg = '{"id":' .. ids .. ',"prev":' .. string.format('%d', n) .. ',"payload":' .. ARGV[1] .. '}'
-- KEEPTTL: SET would drop the key's expiry (INCR kept it), so that a ttl = 0 publish after
-- ttl > 0 ones would leave msg_id forever but let the backlog expire.
redis.call('SET', KEYS[1], ids, 'KEEPTTL')
redis.call('ZADD', KEYS[2], ids, msg)
-- Keep the newest `backlog` messages (by rank: ids are not dense).
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(backlog + 1))
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
-- The pub/sub channel has the keys' hash tag: on a cluster SPUBLISH stays on their shard
-- (plain PUBLISH would be broadcast to every node of the cluster).
if ARGV[4] == 'sharded' then
  redis.call('SPUBLISH', KEYS[3], msg)
else
  redis.call('PUBLISH', KEYS[3], msg)
end
return id
