-- sliding_log.lua — ratekit sliding log: the exact sliding window, one
-- timestamp per admitted unit. The same decisions as
-- server/src/limiter/sliding_log.c.
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:sliding_log"
-- ARGV     limit, window_ms, burst (unused), cost, now_ms (-1: Redis TIME),
--          shape (unused), lease id (unused), op: "decide" (default),
--          "decide_at" (ratekitd's) or "refund" (now_ms: the decision's
--          now_ms, cost: what it consumed)
-- Reply    {allowed (0/1), remaining, reset_ms, retry_after_ms, delay_ms (0),
--          and, for op decide_at, now_ms (as clamped: what a refund names)};
--          refund: {1, 0, 0, 0, 0, now_ms}
-- State    a list of admission times (ms), oldest first, one element per
--          admitted unit (now never goes back past the newest, so the list
--          stays sorted). An entry admitted at t is live while now < t +
--          window. PEXPIRE window_ms after the newest entry. Written
--          (expired entries trimmed, new ones pushed) only when a request
--          with cost > 0 is allowed. A list, not a sorted set: its elements
--          are small integers in listpacks (about 10 bytes an entry, where a
--          sorted set of 10,000 took 130), and an admission's commands cost
--          Redis about half what a sorted set's did (INFO commandstats,
--          10,000 logs of about 100 entries: 2.4 against 4.3 us).
if redis.replicate_commands then
    redis.replicate_commands()
end

-- Bounds of limiter.h: every intermediate value stays below 2^53.
local LIMIT_MAX, BURST_MAX, WINDOW_MAX = 10000000, 10000000, 604800000
local COST_MAX, NOW_MAX = 1000000000, 140737488355328

local function clamp(v, lo, hi)
    if v < lo then
        return lo
    elseif v > hi then
        return hi
    end
    return v
end

-- An integer argument (floored), or the default when absent or not a number.
local function int(s, default)
    local n = tonumber(s)
    if n == nil or n ~= n then
        return default
    end
    return math.floor(n)
end

-- Integers are formatted with %d: tostring() would write 1.4e+14.
local function fmt(n)
    return string.format('%d', n)
end

-- Appends value(1), ..., value(count) to the log, at most 500 an RPUSH.
local function push(key, count, value)
    local done = 0
    while done < count do
        local args = {}
        for i = 1, math.min(count - done, 500) do
            args[i] = value(done + i)
        end
        redis.call('RPUSH', key, unpack(args))
        done = done + #args
    end
end

-- A log written by ratekit 0.1.0 is a sorted set (score = time): rewritten
-- as a list, oldest first, keeping its TTL.
local function convert_sorted_set(key)
    local ttl = redis.call('PTTL', key)
    local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    redis.call('DEL', key)
    push(key, #entries / 2, function(i)
        return entries[2 * i]
    end)
    if ttl > 0 and #entries > 0 then
        redis.call('PEXPIRE', key, ttl)
    end
end

-- The number of expired entries (the first live one's index). It gallops
-- from the oldest entry, as sliding_log.c does: k expired entries cost
-- O(log k) LINDEX near the head, none expired one LINDEX.
local function expired_count(key, len, newest, cut)
    if len == 0 then
        return 0
    elseif newest <= cut then
        return len
    elseif len == 1 or tonumber(redis.call('LINDEX', key, '0')) > cut then
        return 0
    end
    local lo, bound = 0, 1 -- the entry at lo has expired
    while bound < len and tonumber(redis.call('LINDEX', key, bound)) <= cut do
        lo = bound
        bound = math.min(bound * 2, len)
    end
    local hi = bound -- the entry at hi is live (or hi = len)
    lo = lo + 1
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if tonumber(redis.call('LINDEX', key, mid)) <= cut then
            lo = mid + 1
        else
            hi = mid
        end
    end
    return lo
end

local key = KEYS[1]
local now = int(ARGV[5], -1)
if now < 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
now = clamp(now, 0, NOW_MAX)

local LOG_LIMIT_MAX = 100000
local limit = clamp(int(ARGV[1], 1), 1, LOG_LIMIT_MAX)
local window = clamp(int(ARGV[2], 1), 1, WINDOW_MAX)
local cost = clamp(int(ARGV[4], 1), 0, COST_MAX)
local op = ARGV[8] or 'decide'

-- A refund removes the entries the request added: up to cost entries
-- stamped now (the decision's), the latest of them. The TTL stays.
if op == 'refund' then
    if cost > 0 then
        redis.call('LREM', key, fmt(-cost), fmt(now))
    end
    return {1, 0, 0, 0, 0, now}
end

local newest = redis.pcall('LINDEX', key, '-1')
if type(newest) == 'table' then
    if redis.call('TYPE', key).ok ~= 'zset' then
        return newest -- the error
    end
    convert_sorted_set(key)
    newest = redis.call('LINDEX', key, '-1')
end
local len = 0
if newest then
    newest = tonumber(newest)
    now = math.max(now, newest)
    len = redis.call('LLEN', key)
end
local cut = now - window -- an entry at or before cut has expired

local expired = expired_count(key, len, newest, cut)
local live = len - expired
local allowed = cost <= limit - live
if allowed and cost > 0 then
    if expired > 0 then
        redis.call('LTRIM', key, expired, -1) -- all expired: the key goes
    end
    local t = fmt(now)
    if cost == 1 then
        redis.call('RPUSH', key, t)
    else
        push(key, cost, function()
            return t
        end)
    end
    redis.call('PEXPIRE', key, fmt(window))
    live = live + cost
    newest = now
end
local reset = 0
if live > 0 then
    reset = newest + window - now
end
local retry = 0
if not allowed then
    if cost > limit then
        retry = math.max(reset, window)
    else
        -- The k-th oldest live entry must expire first.
        local k = live + cost - limit
        retry = tonumber(redis.call('LINDEX', key, expired + k - 1)) + window - now
    end
end
-- decide_at: the time it decided at too, as clamped (what a refund names).
return {allowed and 1 or 0, math.max(0, limit - live), reset, retry, 0,
    op == 'decide_at' and now or nil}
