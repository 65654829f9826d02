-- sliding_log.lua — ratekit sliding log: the exact sliding window, one
-- timestamp per admitted unit. The same decisions as
-- server/src/limiter/sliding_log.c.
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:sliding_log"
-- ARGV     limit, window_ms, burst (unused), cost, now_ms (-1: Redis TIME),
--          shape (unused), lease id (unused), op (unused)
-- Reply    {allowed (0/1), remaining, reset_ms, retry_after_ms, delay_ms (0)}
-- State    a sorted set: score = admission time (ms), member
--          "<time>:<n>" with n = 0, 1, ... among the units of that
--          millisecond. An entry admitted at t is live while now < t + window.
--          PEXPIRE window_ms after the newest entry. Written (expired entries
--          removed, new ones added) only when a request with cost > 0 is
--          allowed.
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

local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if newest[2] then
    now = math.max(now, tonumber(newest[2]))
end
local expired_at_or_before = now - window
-- The live entries, counted as all (ZCARD, O(1)) minus the expired: they are
-- the oldest, so a ZCOUNT of them reads only them, where a ZCOUNT of the live
-- ones walks a small log's whole listpack. Measured with INFO commandstats:
-- 10-12% less Redis time per check than counting the live ones.
local expired = 0
local live = redis.call('ZCARD', key)
if live > 0 then
    expired = redis.call('ZCOUNT', key, '-inf', fmt(expired_at_or_before))
    live = live - expired
end

local allowed = cost <= limit - live
local newest_live = nil
if live > 0 then
    newest_live = tonumber(newest[2])
end
if allowed and cost > 0 then
    if expired > 0 then
        redis.call('ZREMRANGEBYRANK', key, 0, expired - 1)
    end
    -- Units already admitted in this millisecond (only when the newest
    -- entry is of now: now is never before it).
    local n = 0
    if newest[2] and tonumber(newest[2]) == now then
        n = redis.call('ZCOUNT', key, fmt(now), fmt(now))
    end
    local score = fmt(now)
    if cost == 1 then
        redis.call('ZADD', key, score, score .. ':' .. fmt(n))
    else
        local i = 0
        while i < cost do
            local args = {}
            local chunk = math.min(cost - i, 500)
            for j = 1, chunk do
                args[#args + 1] = score
                args[#args + 1] = score .. ':' .. fmt(n + i + j - 1)
            end
            redis.call('ZADD', key, unpack(args))
            i = i + chunk
        end
    end
    redis.call('PEXPIRE', key, fmt(window))
    live = live + cost
    newest_live = now
end
local reset = 0
if live > 0 then
    reset = newest_live + window - now
end
local retry = 0
if not allowed then
    if cost > limit then
        retry = math.max(reset, window)
    else
        -- The k-th oldest live entry must expire first.
        local k = live + cost - limit
        local kth = redis.call('ZRANGE', key, expired + k - 1, expired + k - 1, 'WITHSCORES')
        retry = tonumber(kth[2]) + window - now
    end
end
return {allowed and 1 or 0, math.max(0, limit - live), reset, retry, 0}
