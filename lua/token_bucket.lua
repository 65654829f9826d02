-- token_bucket.lua — ratekit token bucket: capacity burst, refilled at
-- limit/window. The same decisions as server/src/limiter/token_bucket.c.
-- Tokens are counted in token-milliseconds (1 token = window_ms units,
-- refilled at `limit` units per ms), so the refill is exact.
--
-- The state is the time at which the bucket is full again ("full at"), the
-- one number from which the tokens of any later time follow: units missing
-- = (full_at - now) * limit, at most the capacity burst * window_ms. That
-- is GCRA's theoretical arrival time, and the decisions are gcra.lua's.
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:token_bucket"
-- ARGV     limit, window_ms, burst, cost, now_ms (-1: Redis TIME),
--          shape (unused), lease id (unused), op: "decide" (default),
--          "decide_at" (ratekitd's) or "refund" (now_ms: the decision's
--          now_ms, cost: what it consumed)
-- Reply    {allowed (0/1), remaining, reset_ms, retry_after_ms, delay_ms (0),
--          and, for op decide_at, now_ms (as clamped: what a refund names)};
--          refund: {1, 0, 0, 0, 0, now_ms}
-- State    full_at = full_ms + ticks/limit ms, as the integer
--          <full_ms - EPOCH><ticks as 7 digits> (EPOCH = 2020-01-01T00:00:00Z),
--          which Redis keeps as an integer object, or as the text
--          "<full_ms>:<ticks>" when full_ms - EPOCH is negative or has more
--          than 11 digits. PX until full. Written only when a request with
--          cost > 0 is allowed. See lua/README.md.
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
local op = ARGV[8] or 'decide'

-- The state: an integer <tat_ms - EPOCH><ticks:7 digits>, or the text "<tat_ms>:<ticks>".
local EPOCH, TICK_DIGITS, REL_MAX = 1577836800000, 7, 899999999999
local tat_ms, ticks = 0, 0 -- full_at: the bucket's "tat"
local value = redis.call('GET', key)
if value then
    local a, b = string.match(value, '^(%-?%d+):(%-?%d+)$')
    if a then
        tat_ms, ticks = tonumber(a), tonumber(b)
    elseif string.match(value, '^%d+$') then
        local n = #value
        tat_ms = EPOCH
        if n > TICK_DIGITS then
            tat_ms = EPOCH + tonumber(string.sub(value, 1, n - TICK_DIGITS))
            ticks = tonumber(string.sub(value, n - TICK_DIGITS + 1))
        else
            ticks = tonumber(value)
        end
    end
end
tat_ms = clamp(tat_ms, 0, NOW_MAX + BURST_MAX * WINDOW_MAX) -- now + tau/limit at most
ticks = clamp(ticks, 0, limit - 1)

-- A refund moves tat back by cost * T, never below now (the decision's, or
-- the refund's): on (ms, ticks) with a borrow, no absolute time multiplied.
-- The TTL stays as it is. (Its functions are made here only: a closure
-- costs every call that runs past its definition.)
if op == 'refund' then
    if tat_ms >= now then
        local need = math.min(cost, burst) * window
        local need_ms = math.floor(need / limit)
        ticks = ticks - (need - need_ms * limit)
        if ticks < 0 then
            ticks = ticks + limit
            need_ms = need_ms + 1
        end
        tat_ms = tat_ms - need_ms
        if tat_ms < now or (tat_ms == now and ticks == 0) then
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
        local rel = tat_ms - EPOCH
        if rel < 0 or rel > REL_MAX then
            rewrite(fmt(tat_ms) .. ':' .. fmt(ticks))
        elseif rel > 0 then
            rewrite(string.format('%d%07d', rel, ticks))
        else
            rewrite(fmt(ticks))
        end
    end
    return {1, 0, 0, 0, 0, now}
end
local tau = burst * window
-- d = max(tat - now, 0) in ticks, at most tau (a clock running backwards is
-- clamped to tat - tau).
local d = 0
if tat_ms >= now then
    local ahead_ms = tat_ms - now
    if ahead_ms > math.ceil(tau / limit) then
        d = tau
    else
        d = math.min(ahead_ms * limit + ticks, tau)
    end
end

local need = -1
if cost <= burst then
    need = cost * window
end
local allowed = need >= 0 and d <= tau - need
local retry = 0
if not allowed and need >= 0 then
    retry = math.ceil((d - (tau - need)) / limit)
end
if allowed and cost > 0 then
    d = d + need
    local whole = math.floor(d / limit)
    local rel, rest, state = now + whole - EPOCH, d - whole * limit, nil
    if rel < 0 or rel > REL_MAX then
        state = fmt(now + whole) .. ':' .. fmt(rest)
    elseif rel > 0 then
        state = string.format('%d%07d', rel, rest)
    else
        state = fmt(rest)
    end
    redis.call('SET', key, state, 'PX', fmt(math.ceil(d / limit)))
end
local reset = math.ceil(d / limit)
if not allowed and need < 0 then
    retry = math.max(reset, window)
end
-- decide_at: the time it decided at too, as clamped (what a refund names).
return {allowed and 1 or 0, math.floor((tau - d) / window), reset, retry, 0,
    op == 'decide_at' and now or nil}
