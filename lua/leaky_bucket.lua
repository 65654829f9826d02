-- leaky_bucket.lua — ratekit leaky bucket: capacity burst, leaking
-- limit/window; with shape=1 an admitted request is told how long to wait
-- (nginx limit_req without nodelay). The same decisions as
-- server/src/limiter/leaky_bucket.c. The level is counted in
-- request-milliseconds (1 request = window_ms units, leaking `limit` units
-- per ms), so the leak is exact.
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:leaky_bucket"
-- ARGV     limit, window_ms, burst, cost, now_ms (-1: Redis TIME),
--          shape (0/1), lease id (unused), op: "decide" (default),
--          "decide_at" (ratekitd's) or "refund" (now_ms: the decision's
--          now_ms, cost: what it consumed)
-- Reply    {allowed (0/1), remaining, reset_ms, retry_after_ms, delay_ms,
--          and, for op decide_at, now_ms (as clamped: what a refund names)};
--          refund: {1, 0, 0, 0, 0, now_ms}
-- State    a string "<level>:<last_ms>", PX until the bucket is empty.
--          Written only when a request with cost > 0 is allowed.
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
local burst = clamp(int(ARGV[3], limit), 1, BURST_MAX)
local cost = clamp(int(ARGV[4], 1), 0, COST_MAX)
local shape = ARGV[6] == '1' or ARGV[6] == 'true'
local op = ARGV[8] or 'decide'

local level, last = 0, 0
local value = redis.call('GET', key)
if value then
    local a, b = string.match(value, '^(%-?%d+):(%-?%d+)$')
    if a then
        level, last = tonumber(a), tonumber(b)
    end
end
last = clamp(last, 0, NOW_MAX)
if now < last then
    now = last
end
local capacity = burst * window
level = clamp(level, 0, capacity)
local elapsed = now - last
if elapsed >= math.ceil(level / limit) then
    level = 0
else
    level = level - elapsed * limit
end

-- A refund takes off the level what the request poured in (a shaped
-- request's place in the queue), never below 0. The TTL stays as it is.
if op == 'refund' then
    level = math.max(0, level - math.min(cost, burst) * window)
    if level == 0 then
        if value then
            redis.call('DEL', key)
        end
    else
        local state, ttl = fmt(level) .. ':' .. fmt(now), redis.call('PTTL', key)
        if ttl > 0 then -- the TTL it has (KEEPTTL would need Redis 6)
            redis.call('SET', key, state, 'PX', ttl)
        else
            redis.call('SET', key, state)
        end
    end
    return {1, 0, 0, 0, 0, now}
end

local pour = -1
if cost <= burst then
    pour = cost * window
end
local allowed = pour >= 0 and level <= capacity - pour
local delay, retry = 0, 0
if allowed and shape then
    delay = math.ceil(level / limit)
end
if not allowed and pour >= 0 then
    retry = math.ceil((level - (capacity - pour)) / limit)
end
if allowed and cost > 0 then
    level = level + pour
    redis.call('SET', key, string.format('%d:%d', level, now), 'PX', fmt(math.ceil(level / limit)))
end
local reset = math.ceil(level / limit)
if not allowed and pour < 0 then
    retry = math.max(reset, window)
end
-- decide_at: the time it decided at too, as clamped (what a refund names).
return {allowed and 1 or 0, math.floor((capacity - level) / window), reset, retry, delay,
    op == 'decide_at' and now or nil}
