"""The Lua scripts of the Redis engine (:mod:`tailhub.engine.redis`).

Each script touches the keys of one hash slot only, so each runs on Redis Cluster too: the
container scripts take the keys of one container (all tagged ``{container}``), the session
scripts the global session index (tagged ``{tailhub}``), the record scripts one record kind.
Keys a script uses are passed in ``KEYS``; every time a script stores is passed in ``ARGV``
by the caller (the receive time) or read with ``TIME`` (record expiry), so each process stamps
with the clock it stamps messages with.

Container keys (``P`` is the prefix, ``c`` the escaped container ID):

- ``P{c}:m`` hash: ``seq`` (last seq given), ``epoch``, ``added`` and ``added_bytes``
  (messages and bytes ever stored, for the size estimate);
- ``P{c}:s`` stream: one entry per stored message, id ``<seq>-0``, fields ``t`` (receive
  time, Unix seconds) and ``d`` (the encoded message);
- ``P{c}:p`` hash: producer -> last stored id (de-duplication);
- ``P{c}:ss`` hash: the session (``active``, ``status``, ``started``, ``last``, ``ended``,
  ``reason``, ``exit``);
- ``P{c}:md`` hash: the session's metadata (name -> JSON).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ADMIT",
    "CLAIM",
    "END",
    "END_GLOBAL",
    "INFO",
    "POSITION",
    "PUBLISH",
    "PUT_RECORD",
    "RECORDS",
    "SEEK",
    "TOUCH",
    "TRIM",
]

PUBLISH: Final = r"""
-- KEYS: meta, stream, producers, session, session metadata
-- ARGV: now, maxlen, a new epoch, mode, container, channel, star channel, publish
--       command, run count, the epoch and highest seq the caller has seen of the
--       container ('' and 0: none), then per run: kind, status, exit code, entry count, receive
--       time, entries: per entry the lengths of head, tail, producer and id (big-endian
--       uint32, uint32, uint16, uint8), then those four (an empty head: the previous
--       entry's; an empty id: not de-duplicated). One argument per run, not four per
--       message: the client's cost is per argument.
-- mode: '0' the session must be active (else {'admit'}), '1' admitted (may start it),
--       'e<limit>' end it for inactivity if its last activity is at or before limit
--       (else {'alive', last} or {'gone', ended}), storing the runs as its last messages.
-- One call stores every run of one container of one write round: seq, de-duplication,
-- XADD, the session, then one publication of what was stored, so they never disagree.
local meta, stream, producers, sess, smeta = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local mode = ARGV[4]
local active = redis.call('HGET', sess, 'active') == '1'
local expiring = string.sub(mode, 1, 1) == 'e'
if expiring then
  if not active then return {'gone', redis.call('HGET', sess, 'ended') or ''} end
  local last = redis.call('HGET', sess, 'last') or '0'
  if tonumber(last) > tonumber(string.sub(mode, 2)) then return {'alive', last} end
elseif not active and mode ~= '1' then
  return {'admit'}
end
local epoch = redis.call('HGET', meta, 'epoch')
local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')
-- No epoch: the container is new, or Redis lost it. An epoch the caller saw with a higher
-- seq than Redis has now: Redis lost the last writes (an older snapshot, a failover to a
-- replica that was behind). Either way the seqs to come would repeat ones already seen:
-- they go under a new epoch.
if not epoch or (epoch == ARGV[10] and tonumber(ARGV[11]) > seq) then
  epoch = ARGV[3]
  redis.call('HSET', meta, 'epoch', epoch)
end
local maxlen = ARGV[2]
local lastids = {}
local started, ended = 0, 0
local reply = {'ok', epoch, 0, 0, 0}
local header = {}
local bodies = {}
local stored, stored_bytes = 0, 0
local i = 12
for r = 1, tonumber(ARGV[9]) do
  local kind, status, exitcode = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local count = tonumber(ARGV[i + 3])
  local now = ARGV[i + 4]
  local blob = ARGV[i + 5]
  i = i + 6
  local seqs = {}
  local lens = {}
  local first = seq + 1
  local head = ''
  local pos = 1
  for e = 1, count do
    local hl, tl, pl, il
    hl, tl, pl, il, pos = struct.unpack('>I4I4I2I1', blob, pos)
    if hl > 0 then head = string.sub(blob, pos, pos + hl - 1) end
    pos = pos + hl
    local tail = string.sub(blob, pos, pos + tl - 1)
    pos = pos + tl
    local producer = string.sub(blob, pos, pos + pl - 1)
    pos = pos + pl
    local id = string.sub(blob, pos, pos + il - 1)
    pos = pos + il
    local dup = false
    if id ~= '' then
      local nid = tonumber(id)
      local last = lastids[producer]
      if last == nil then last = tonumber(redis.call('HGET', producers, producer) or '0') end
      if nid <= last then dup = true else lastids[producer] = nid end
    end
    if dup then
      seqs[e] = 0
    else
      seq = seq + 1
      seqs[e] = seq
      local payload = head .. string.format('%d', seq) .. tail
      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, string.format('%d', seq) .. '-0',
        't', now, 'd', payload)
      lens[#lens + 1] = tostring(#payload)
      bodies[#bodies + 1] = payload
      stored = stored + 1
      stored_bytes = stored_bytes + #payload
    end
  end
  reply[#reply + 1] = seqs
  if #lens > 0 then
    if not active then
      redis.call('DEL', smeta)
      redis.call('HSET', sess, 'active', '1', 'status', 'running', 'started', now,
        'last', now, 'ended', '', 'reason', '', 'exit', '')
      active = true
      started = 1
    end
    redis.call('HSET', sess, 'last', now)
    if status ~= '' then
      redis.call('HSET', sess, 'status', status)
    elseif kind == 'error' then
      redis.call('HSET', sess, 'status', 'error')
    elseif kind == 'complete' then
      local done = 'error'
      if exitcode == '0' then done = 'completed' end
      redis.call('HSET', sess, 'status', done, 'exit', exitcode, 'active', '0',
        'ended', now, 'reason', 'complete')
      active = false
      ended = 1
    end
    header[#header + 1] = kind .. ' ' .. string.format('%d', first) .. ' ' ..
      table.concat(lens, ',')
  end
end
if expiring then
  if tonumber(ARGV[9]) == 0 then redis.call('HSET', sess, 'status', 'error') end
  redis.call('HSET', sess, 'active', '0', 'ended', ARGV[1], 'reason', 'timeout')
  ended = 1
end
for producer, id in pairs(lastids) do
  redis.call('HSET', producers, producer, string.format('%d', id))
end
reply[3] = seq
reply[4] = started
reply[5] = ended
if stored > 0 then
  redis.call('HSET', meta, 'seq', string.format('%d', seq))
  redis.call('HINCRBY', meta, 'added', stored)
  redis.call('HINCRBY', meta, 'added_bytes', stored_bytes)
  local message = epoch .. ' ' .. #header .. ' ' .. ARGV[5] .. '\n' ..
    table.concat(header, '\n') .. '\n' .. table.concat(bodies)
  redis.call(ARGV[8], ARGV[6], message)
  if ARGV[7] ~= '' then
    redis.call('PUBLISH', ARGV[7], message)
  end
end
return reply
"""

POSITION: Final = r"""
-- KEYS: meta, stream.  ARGV: epoch if none.  Returns {last seq, first kept seq, epoch}.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local first = 0
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
if head then first = tonumber(string.match(head[1], '^(%d+)')) end
return {seq, first, epoch}
"""

_SEEK_FUNCTION: Final = r"""
-- The first kept seq received at or after time t (receive times grow with seq), the last
-- seq + 1 when none was, 0 when nothing is kept.
local function seek(stream, t)
  local function seq_of(entry) return tonumber(string.match(entry[1], '^(%d+)')) end
  local function time_of(entry) return tonumber(entry[2][2]) end
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if not first then return 0 end
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if time_of(last) < t then return seq_of(last) + 1 end
  if time_of(first) >= t then return seq_of(first) end
  local lo, hi = seq_of(first), seq_of(last)
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('XRANGE', stream, string.format('%d', mid), '+', 'COUNT', 1)[1]
    if time_of(entry) >= t then hi = seq_of(entry) else lo = seq_of(entry) end
  end
  return hi
end
"""

SEEK: Final = (
    _SEEK_FUNCTION
    + r"""
-- KEYS: stream.  ARGV: a Unix time.  Returns seek(stream, time).
return seek(KEYS[1], tonumber(ARGV[1]))
"""
)

TRIM: Final = (
    _SEEK_FUNCTION
    + r"""
-- KEYS: stream.  ARGV: oldest time kept, most messages kept.  Returns how many were removed.
local removed = 0
local keep = seek(KEYS[1], tonumber(ARGV[1]))
if keep > 0 then
  removed = redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', keep) .. '-0')
end
return removed + redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2])
"""
)

TOUCH: Final = r"""
-- KEYS: session.  ARGV: now.  A heartbeat refreshes an active session only.
if redis.call('HGET', KEYS[1], 'active') == '1' then
  redis.call('HSET', KEYS[1], 'last', ARGV[1])
  return 1
end
return 0
"""

END: Final = r"""
-- KEYS: session.  ARGV: now, idle limit ('' = end it whatever its activity), reason.
-- Returns {'ended', now}, {'alive', last activity} or {'gone', ended time or ''}.
local s = KEYS[1]
if redis.call('HGET', s, 'active') ~= '1' then
  return {'gone', redis.call('HGET', s, 'ended') or ''}
end
local last = redis.call('HGET', s, 'last') or '0'
if ARGV[2] ~= '' and tonumber(last) > tonumber(ARGV[2]) then
  return {'alive', last}
end
redis.call('HSET', s, 'active', '0', 'ended', ARGV[1], 'reason', ARGV[3])
return {'ended', ARGV[1]}
"""

INFO: Final = r"""
-- KEYS: meta, stream, producers, session, session metadata, attached connections.
-- Returns false without a session, else {session fields, {seq, epoch, added, added_bytes},
-- stream length, first kept seq, publishing connections, metadata fields}. Each process
-- keeps its count of the container's connections as "count:expiry ms"; expired counts (of
-- a process that died) are left out.
local s = redis.call('HGETALL', KEYS[4])
if #s == 0 then return false end
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch', 'added', 'added_bytes')
local n = redis.call('XLEN', KEYS[2])
local first = 0
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
if head then first = tonumber(string.match(head[1], '^(%d+)')) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local attached = 0
local counts = redis.call('HVALS', KEYS[6])
for _, v in ipairs(counts) do
  local count, expiry = string.match(v, '^(%d+):(%d+)$')
  if count and tonumber(expiry) > now then attached = attached + tonumber(count) end
end
return {s, m, n, first, attached, redis.call('HGETALL', KEYS[5])}
"""

ADMIT: Final = r"""
-- KEYS: active (score: start), idle (score: last activity), ended (score: end).
-- ARGV: container, most active sessions, now.  Returns 1 (it may publish) or 0 (limit).
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

END_GLOBAL: Final = r"""
-- KEYS: active, idle, ended.  ARGV: container, end time ('' = keep it out of the listing).
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1]) end
return 1
"""

PUT_RECORD: Final = r"""
-- KEYS: values, expiries.  ARGV: key, value, ttl in ms ('' = none).
local expiry = '+inf'
if ARGV[3] ~= '' then
  local t = redis.call('TIME')
  expiry = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3]))
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
return 1
"""

RECORDS: Final = r"""
-- KEYS: values, expiries.  Drops expired records, returns the live ones (key, value, ...).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, key in ipairs(gone) do
  redis.call('HDEL', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
end
return redis.call('HGETALL', KEYS[1])
"""

CLAIM: Final = r"""
-- KEYS: the claim.  ARGV: owner, ttl in ms.  1 if the owner holds it now, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
