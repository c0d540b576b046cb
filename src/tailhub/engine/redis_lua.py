"""The Lua scripts of the Redis engine (:mod:`tailhub.engine.redis`).

Each call of a script touches the keys of one hash slot only on Redis Cluster: the container
scripts take the keys of one container (all tagged ``{container}``; PUBLISH takes those of
several on one server, and of one on Cluster), the session scripts the global session index
(tagged ``{tailhub}``), the record scripts one record kind.
Keys a script uses are passed in ``KEYS``; every time a script stores is passed in ``ARGV``
by the caller (the receive time) or read with ``TIME`` (record expiry), so each process stamps
with the clock it stamps messages with.

Container keys (``P`` is the prefix, ``c`` the escaped container ID):

- ``P{c}:m`` hash: ``seq`` (last seq given), ``epoch``, ``added`` and ``added_bytes``
  (messages and bytes ever stored, for the size estimate);
- ``P{c}:s`` stream: one entry per stored run, id ``<first seq>-0``, fields ``t`` (receive
  time, Unix seconds), ``n`` (how many messages, with seqs ``first .. first + n - 1``) and
  ``b`` (the run's blob). The blob holds each message as
  :func:`tailhub.protocol.published_head` and ``published_tail`` split it around its seq:
  the lengths of head and tail (big-endian uint32 each), then the two; an empty head stands
  for the previous message's. An entry of one message, with fields ``t`` and ``d`` (the
  encoded message), is what ``tailhub migrate`` writes (and what earlier versions wrote);
  readers take both;
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
    "READ",
    "RECORDS",
    "SEEK",
    "TOUCH",
    "TRIM",
]

PUBLISH: Final = r"""
-- KEYS: five per container: meta, stream, producers, session, session metadata.
-- ARGV[1]: a MessagePack array: now, maxlen, a new epoch, the star channel ('': none), the
--       publish command, then one array per container, in the order of KEYS: mode,
--       container, its channel, the epoch and highest seq the caller has seen of it ('' and
--       0: none), then one array per run: kind, status, exit code, entry count, receive time,
--       payload bytes without seqs, and its ids: '' when no entry has one, else per entry
--       its producer and id (false: not de-duplicated). Text and numbers only: Redis's
--       cmsgpack reads no binary type.
-- ARGV[2...]: each run's blob (see the module doc), in the order of the runs above.
-- mode: '0' the session must be active (else {'admit'}), '1' admitted (may start it),
--       'e<limit>' end it for inactivity if its last activity is at or before limit
--       (else {'alive', last} or {'gone', ended}), storing the runs as its last messages.
-- Each container's runs are stored in order: seq, de-duplication, one XADD per run, the
-- session, then one publication of what was stored, so they never disagree. The reply has
-- one answer per container: {'ok', epoch, last seq, started, ended, then per run the first
-- seq given (every entry stored, in order) or, when some were repeats, each entry's seq (0:
-- a repeat, not stored)}, or one of the refusals above.
-- Cheap in Redis's Lua: few redis.call()s (each costs about a microsecond) and few new
-- strings made from a blob (Redis's Lua hashes every byte of a new string: about a
-- microsecond per kilobyte): a blob is passed on as it came unless a run repeats an id.
local head = cmsgpack.unpack(ARGV[1])
local now, maxlen, new_epoch, star, pubcmd = head[1], head[2], head[3], head[4], head[5]

local function publish(k, c, blob_at)
  local meta, stream, producers, sess, smeta = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3],
    KEYS[k + 4]
  local mode, container, channel, seen_epoch, seen_seq, runs = c[1], c[2], c[3], c[4], c[5], c[6]
  local active = redis.call('HGET', sess, 'active') == '1'
  local expiring = string.sub(mode, 1, 1) == 'e'
  if expiring then
    if not active then return {'gone', redis.call('HGET', sess, 'ended') or ''} end
    local last = redis.call('HGET', sess, 'last') or '0'
    if tonumber(last) > tonumber(string.sub(mode, 2)) then return {'alive', last} end
  elseif not active and mode ~= '1' then
    return {'admit'}
  end
  local m = redis.call('HMGET', meta, 'epoch', 'seq', 'added', 'added_bytes')
  local epoch = m[1]
  local seq = tonumber(m[2] or '0')
  -- No epoch: the container is new, or Redis lost it. An epoch the caller saw with a
  -- higher seq than Redis has now: Redis lost the last writes (an older snapshot, a
  -- failover to a replica that was behind). Either way the seqs to come would repeat ones
  -- already seen: they go under a new epoch.
  if not epoch or (epoch == seen_epoch and seen_seq > seq) then
    epoch = new_epoch
    redis.call('HSET', meta, 'epoch', epoch)
  end
  local lastids = {}
  local started, ended = 0, 0
  local reply = {'ok', epoch, 0, 0, 0}
  local header = {}
  local bodies = {}
  local stored, stored_bytes = 0, 0
  local session = {}
  for r = 1, #runs do
    local run = runs[r]
    local kind, status, exitcode, count, at, size, ids =
      run[1], run[2], run[3], run[4], run[5], run[6], run[7]
    local blob = ARGV[blob_at + r - 1]
    local first = seq + 1
    local kept = count
    local seqs = nil
    if ids ~= '' then
      local keep = {}
      local dups = 0
      for e = 1, count do
        local producer, nid = ids[2 * e - 1], ids[2 * e]
        local dup = false
        if nid then
          local last = lastids[producer]
          if last == nil then last = tonumber(redis.call('HGET', producers, producer) or '0') end
          if nid <= last then dup = true else lastids[producer] = nid end
        end
        keep[e] = not dup
        if dup then dups = dups + 1 end
      end
      if dups > 0 then
        -- Rewrite the blob without the repeats (an entry kept after a dropped one whose
        -- head it shared carries the head itself).
        local parts = {}
        local shared, written = '', nil
        local from = 1
        seqs = {}
        size = 0
        for e = 1, count do
          local hl, tl
          hl, tl, from = struct.unpack('>I4I4', blob, from)
          if hl > 0 then shared = string.sub(blob, from, from + hl - 1) end
          from = from + hl
          local tail = string.sub(blob, from, from + tl - 1)
          from = from + tl
          if keep[e] then
            local sent = shared
            if written == shared then sent = '' end
            parts[#parts + 1] = struct.pack('>I4I4', #sent, #tail) .. sent .. tail
            written = shared
            size = size + #shared + #tail
            seq = seq + 1
            seqs[e] = seq
          else
            seqs[e] = 0
          end
        end
        blob = table.concat(parts)
        kept = count - dups
      end
    end
    if seqs == nil then
      seq = seq + count
      reply[#reply + 1] = first
    else
      reply[#reply + 1] = seqs
    end
    if kept > 0 then
      local digits = #string.format('%d', seq)
      redis.call('XADD', stream, 'MINID', '~', string.format('%d', math.max(first - maxlen, 1)),
        string.format('%d-0', first), 't', at, 'n', kept, 'b', blob)
      bodies[#bodies + 1] = blob
      stored = stored + kept
      stored_bytes = stored_bytes + size + kept * digits
      if not active then
        redis.call('DEL', smeta)
        session = {'active', '1', 'status', 'running', 'started', at, 'ended', '',
          'reason', '', 'exit', ''}
        active = true
        started = 1
      end
      session.last = at
      if status ~= '' then
        session.status = status
      elseif kind == 'error' then
        session.status = 'error'
      elseif kind == 'complete' then
        session.status = 'error'
        if exitcode == '0' then session.status = 'completed' end
        session.exit = exitcode
        session.active = '0'
        session.ended = at
        session.reason = 'complete'
        active = false
        ended = 1
      end
      header[#header + 1] = string.format('%s %d %d %d', kind, first, kept, #blob)
    end
  end
  if expiring then
    if #runs == 0 then session.status = 'error' end
    session.active = '0'
    session.ended = now
    session.reason = 'timeout'
    ended = 1
  end
  -- The session's changes in one HSET: the list form (a session started) then the named
  -- fields, which override it.
  local fields = {}
  for i = 1, #session do fields[i] = session[i] end
  for name, value in pairs(session) do
    if type(name) == 'string' then
      fields[#fields + 1] = name
      fields[#fields + 1] = value
    end
  end
  if #fields > 0 then redis.call('HSET', sess, unpack(fields)) end
  local setids = {}
  for producer, id in pairs(lastids) do
    setids[#setids + 1] = producer
    setids[#setids + 1] = string.format('%d', id)
  end
  if #setids > 0 then redis.call('HSET', producers, unpack(setids)) end
  reply[3] = seq
  reply[4] = started
  reply[5] = ended
  if stored > 0 then
    redis.call('HSET', meta, 'seq', string.format('%d', seq),
      'added', string.format('%d', tonumber(m[3] or '0') + stored),
      'added_bytes', string.format('%d', tonumber(m[4] or '0') + stored_bytes))
    local body, lines = bodies[1], header[1]
    if #bodies > 1 then body, lines = table.concat(bodies), table.concat(header, '\n') end
    local message = epoch .. ' ' .. #header .. ' ' .. container .. '\n' .. lines .. '\n' .. body
    redis.call(pubcmd, channel, message)
    if star ~= '' then redis.call('PUBLISH', star, message) end
  end
  return reply
end

local out = {}
local blob_at = 2
for i = 6, #head do
  local c = head[i]
  out[#out + 1] = publish((i - 6) * 5 + 1, c, blob_at)
  blob_at = blob_at + #c[6]
end
return out
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

_ENTRY_FUNCTIONS: Final = r"""
-- A stream entry is one stored run: its id is the run's first seq, 'n' says how many seqs
-- it holds (absent: one, an entry of one message).
local function seq_of(entry) return tonumber(string.match(entry[1], '^(%d+)')) end
local function time_of(entry) return tonumber(entry[2][2]) end
local function last_of(entry)
  if entry[2][3] == 'n' then return seq_of(entry) + tonumber(entry[2][4]) - 1 end
  return seq_of(entry)
end
-- The entry holding seq (the last one that starts at or before it), or nil.
local function holding(stream, seq)
  return redis.call('XREVRANGE', stream, string.format('%d', seq), '-', 'COUNT', 1)[1]
end
-- The first kept seq received at or after time t (receive times grow with seq), the last
-- seq + 1 when none was, 0 when nothing is kept.
local function seek(stream, t)
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if not first then return 0 end
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if time_of(last) < t then return last_of(last) + 1 end
  if time_of(first) >= t then return seq_of(first) end
  -- lo and hi start entries, received before t and at or after it: narrow them down to
  -- two with no entry between (an entry holds many seqs, so one may start at no midpoint).
  local lo, hi = seq_of(first), seq_of(last)
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('XRANGE', stream, string.format('%d', mid),
      string.format('%d', hi - 1), 'COUNT', 1)[1]
    if not entry and mid - 1 > lo then
      entry = redis.call('XREVRANGE', stream, string.format('%d', mid - 1),
        string.format('%d', lo + 1), 'COUNT', 1)[1]
    end
    if not entry then return hi end
    if time_of(entry) >= t then hi = seq_of(entry) else lo = seq_of(entry) end
  end
  return hi
end
"""

SEEK: Final = (
    _ENTRY_FUNCTIONS
    + r"""
-- KEYS: stream.  ARGV: a Unix time.  Returns seek(stream, time).
return seek(KEYS[1], tonumber(ARGV[1]))
"""
)

READ: Final = (
    _ENTRY_FUNCTIONS
    + r"""
-- KEYS: stream.  ARGV: after, upto ('+': no bound), most entries (0: no bound).
-- The entries that hold seqs after..upto, oldest first: the one holding after + 1 (which
-- may hold earlier ones too), then those after it.
local start = '-'
local before = holding(KEYS[1], tonumber(ARGV[1]) + 1)
if before then start = before[1] end
if ARGV[3] == '0' then return redis.call('XRANGE', KEYS[1], start, ARGV[2]) end
return redis.call('XRANGE', KEYS[1], start, ARGV[2], 'COUNT', ARGV[3])
"""
)

TRIM: Final = (
    _ENTRY_FUNCTIONS
    + r"""
-- KEYS: stream.  ARGV: oldest time kept, most messages kept.  Returns how many messages
-- were removed. Whole entries go: an entry holding a seq that must be kept stays.
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not head then return 0 end
local from = seq_of(head)
local tip = last_of(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1])
local keep = seek(KEYS[1], tonumber(ARGV[1]))
local bound = tip - tonumber(ARGV[2]) + 1
if bound > keep then keep = bound end
if keep <= from then return 0 end
local entry = holding(KEYS[1], keep)
local minid = entry and seq_of(entry) or keep
if keep > tip then minid = keep end
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', minid) .. '-0')
head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if head then return seq_of(head) - from end
return tip + 1 - from
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

INFO: Final = (
    _ENTRY_FUNCTIONS
    + r"""
-- KEYS: meta, stream, producers, session, session metadata, attached connections.
-- Returns false without a session, else {session fields, {seq, epoch, added, added_bytes},
-- messages kept, first kept seq, publishing connections, metadata fields}. Each process
-- keeps its count of the container's connections as "count:expiry ms"; expired counts (of
-- a process that died) are left out. Messages kept are counted from the first kept seq to
-- the last, which is exact but across the jump a SQLite hub's unclean stop left in history
-- that tailhub migrate copied.
local s = redis.call('HGETALL', KEYS[4])
if #s == 0 then return false end
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch', 'added', 'added_bytes')
local first = 0
local n = 0
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
if head then
  first = seq_of(head)
  n = last_of(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]) - first + 1
end
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
)

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
