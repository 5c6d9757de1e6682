--input: KEYS[1] = the channel's msg_id key  (e.g. channel:{C}:msg_id)
--input: KEYS[2] = the channel's backlog key (e.g. channel:{C}:msg_backlog)
--input: ARGV[1] = L, the last id the client has seen (decimal, 0 = none)
--input: ARGV[2] = the most backlog messages to return (the rest comes with the next poll)
--output: {N} when N == L (nothing new), else {N, after, newest} where
--output:   N      = msg_id (0 when absent)
--output:   after  = backlog members with id > L, ascending, at most ARGV[2] of them
--output:   newest = the newest backlog member (nil when the backlog is empty); used for a reset
--
-- One atomic read of one channel, so that N and the backlog are seen at the same moment.
-- One call per channel (not one for all channels) keeps Redis Cluster hash tags valid.
local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if n == tonumber(ARGV[1]) then
  return {n}
end
local after = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local newest = false
local t = redis.call('ZRANGE', KEYS[2], -1, -1)
if #t > 0 then newest = t[1] end
return {n, after, newest}
