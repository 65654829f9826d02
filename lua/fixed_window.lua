-- fixed_window.lua — ratekit fixed window: a count per window aligned to
-- floor(now / window) * window. The same decisions as
-- server/src/limiter/fixed_window.c.
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:fixed_window"
-- ARGV     limit, window_ms, burst (unused), cost, now_ms (-1: Redis TIME),
--          shape (unused), lease id (unused), op: "decide" (default),
--          "decide_at" (ratekitd's) or "refund" (now_ms: the decision's
--          now_ms, cost: what it consumed)
-- Reply    {allowed (0/1), remaining, reset_ms, retry_after_ms, delay_ms (0),
--          and, for op decide_at, now_ms (as clamped: what a refund names)};
--          refund: {1, 0, 0, 0, 0, now_ms}
-- State    the integer <window index><count as 8 digits> (window index =
--          window_start / window_ms; e.g. 29923267 windows of a minute and a
--          count of 1 are "2992326700000001"), which Redis keeps as an integer
--          object; "<window_start_ms>:<count>" when the index has more than 11
--          digits (windows under 20 ms). PX until the window ends. Written
--          only when a request with cost > 0 is allowed. See lua/README.md.
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

-- The state: an integer <index><count:8 digits>, or the text "<start>:<count>".
local COUNT_DIGITS, INDEX_MAX = 8, 89999999999
local window_start, count = 0, 0
local value = redis.call('GET', key)
if value then
    local a, b = string.match(value, '^(%-?%d+):(%-?%d+)$')
    if a then
        window_start, count = tonumber(a), tonumber(b)
    elseif string.match(value, '^%d+$') then
        local n = #value
        if n > COUNT_DIGITS then
            window_start = tonumber(string.sub(value, 1, n - COUNT_DIGITS)) * window
            count = tonumber(string.sub(value, n - COUNT_DIGITS + 1))
        else
            count = tonumber(value)
        end
    end
end
window_start = clamp(window_start, 0, NOW_MAX)

-- A refund gives back cost counted in the window of now (the decision's),
-- and nothing once the state holds another window. The TTL stays as it is.
-- (Its functions are made here only: a closure costs every call that runs
-- past its definition.)
if op == 'refund' then
    if value and math.floor(now / window) * window == window_start then
        count = math.max(0, clamp(count, 0, limit) - cost)
        if count == 0 then
            redis.call('DEL', key)
            return {1, 0, 0, 0, 0, now}
        end
        -- The state written again with the TTL it has (KEEPTTL would need Redis 6).
        local function rewrite(state)
            local ttl = redis.call('PTTL', key)
            if ttl > 0 then
                redis.call('SET', key, state, 'PX', ttl)
            else
                redis.call('SET', key, state)
            end
        end
        local index = window_start / window
        if index > INDEX_MAX then
            rewrite(fmt(window_start) .. ':' .. fmt(count))
        elseif index > 0 then
            rewrite(string.format('%d%08d', index, count))
        else
            rewrite(fmt(count))
        end
    end
    return {1, 0, 0, 0, 0, now}
end

if now < window_start then
    now = window_start
end
local current = math.floor(now / window) * window
if current == window_start then
    count = clamp(count, 0, limit)
else
    count = 0
end
local to_window_end = current + window - now

local allowed = cost <= limit - count
if allowed and cost > 0 then
    count = count + cost
    local index, state = current / window, nil
    if index > INDEX_MAX then
        state = fmt(current) .. ':' .. fmt(count)
    elseif index > 0 then
        state = string.format('%d%08d', index, count)
    else
        state = fmt(count)
    end
    redis.call('SET', key, state, 'PX', fmt(to_window_end))
end
local reset = 0
if count > 0 then
    reset = to_window_end
end
local retry = 0
if not allowed then
    if cost > limit then
        retry = math.max(reset, window)
    else
        retry = to_window_end
    end
end
-- decide_at: the time it decided at too, as clamped (what a refund names).
return {allowed and 1 or 0, limit - count, reset, retry, 0, op == 'decide_at' and now or nil}
