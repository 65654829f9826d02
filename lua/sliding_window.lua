-- sliding_window.lua — ratekit sliding window: the counts of the current and
-- the previous fixed window, the previous one weighted by the share of it
-- still inside the sliding window. The same decisions as
-- server/src/limiter/sliding_window.c (every comparison multiplied by
-- window_ms, so no fraction is ever rounded).
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:sliding_window"
-- ARGV     limit, window_ms, burst (unused), cost, now_ms (-1: Redis TIME),
--          shape (unused), lease id (unused), op: "decide" (default),
--          "decide_at" (ratekitd's) or "refund" (now_ms: the decision's
--          now_ms, cost: what it consumed)
-- Reply    {allowed (0/1), remaining, reset_ms, retry_after_ms, delay_ms (0),
--          and, for op decide_at, now_ms (as clamped: what a refund names)};
--          refund: {1, 0, 0, 0, 0, now_ms}
-- State    a string "<window_start_ms>:<curr>:<prev>", PX until the end of
--          the next window. Written only when a request with cost > 0 is
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

local limit = clamp(int(ARGV[1], 1), 1, LIMIT_MAX)
local window = clamp(int(ARGV[2], 1), 1, WINDOW_MAX)
local cost = clamp(int(ARGV[4], 1), 0, COST_MAX)
local op = ARGV[8] or 'decide'

local recorded, stored_curr, stored_prev = 0, 0, 0
local value = redis.call('GET', key)
if value then
    local a, b, c = string.match(value, '^(%-?%d+):(%-?%d+):(%-?%d+)$')
    if a then
        recorded, stored_curr, stored_prev = tonumber(a), tonumber(b), tonumber(c)
    end
end
recorded = clamp(recorded, 0, NOW_MAX)

-- A refund gives back cost counted in the current window of now (the
-- decision's), and nothing once the state holds another window. The TTL stays as it is.
if op == 'refund' then
    if value and math.floor(now / window) * window == recorded then
        local c = math.max(0, clamp(stored_curr, 0, limit) - cost)
        local p = clamp(stored_prev, 0, limit)
        if c == 0 and p == 0 then
            redis.call('DEL', key)
        else
            local state, ttl = fmt(recorded) .. ':' .. fmt(c) .. ':' .. fmt(p), redis.call('PTTL', key)
            if ttl > 0 then -- the TTL it has (KEEPTTL would need Redis 6)
                redis.call('SET', key, state, 'PX', ttl)
            else
                redis.call('SET', key, state)
            end
        end
    end
    return {1, 0, 0, 0, 0, now}
end

if now < recorded then
    now = recorded
end
local current = math.floor(now / window) * window
local elapsed = now - current
local curr, prev = 0, 0
if current == recorded then
    curr = clamp(stored_curr, 0, limit)
    prev = clamp(stored_prev, 0, limit)
elseif current == recorded + window then
    prev = clamp(stored_curr, 0, limit)
end
local weight = window - elapsed

local allowed = cost <= limit - curr and prev * weight <= (limit - curr - cost) * window
if allowed and cost > 0 then
    curr = curr + cost
    redis.call('SET', key, string.format('%d:%d:%d', current, curr, prev), 'PX',
        fmt(2 * window - elapsed))
end
local remaining = math.max(0, limit - curr - math.ceil(prev * weight / window))
local reset = 0
if curr > 0 then
    reset = 2 * window - elapsed
elseif prev > 0 then
    reset = window - elapsed
end
local retry = 0
if not allowed then
    if cost > limit then
        retry = math.max(reset, window)
    else
        retry = nil
        local room = limit - curr - cost
        if room >= 0 and prev > 0 then
            -- prev * (window - e) <= room * window <=> e >= window - floor(room * window / prev)
            local e1 = window - math.floor(room * window / prev)
            if e1 < window then
                retry = e1 - elapsed
            end
        end
        if retry == nil then
            -- In the next window prev is our curr and curr is 0.
            local e2 = 0
            if curr > 0 then
                e2 = math.max(0, window - math.floor((limit - cost) * window / curr))
            end
            if e2 < window then
                retry = window - elapsed + e2
            else
                retry = 2 * window - elapsed
            end
        end
    end
end
-- decide_at: the time it decided at too, as clamped (what a refund names).
return {allowed and 1 or 0, remaining, reset, retry, 0, op == 'decide_at' and now or nil}
