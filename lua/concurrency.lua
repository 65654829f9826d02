-- concurrency.lua — ratekit concurrency: leases that expire window_ms after
-- they are acquired; at most `limit` units held at once. The same decisions
-- as server/src/limiter/concurrency.c.
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:concurrency"
-- ARGV     limit, window_ms, burst (unused), cost (decide: units of the
--          lease, 0 peeks; release: the units the lease was acquired with,
--          so that it is found by its member, or 0 to look for it by id),
--          now_ms (-1: Redis TIME), shape (unused), lease id (required when
--          cost > 0; ids are unique, ratekitd draws them at random), op:
--          "decide" (default, acquires), "decide_at" (ratekitd's: the
--          reply adds now_ms), "release", or "refund" (a release of the
--          lease a check took for a request denied in the end)
-- Reply    decide: {allowed (0/1), remaining, reset_ms, retry_after_ms, 0}
--          and, for decide_at, now_ms (as bounded)
--          release: {released (0/1)}: 1 if the lease was live
-- State    a sorted set: score = expiry (ms), member "<lease_id>:<units>",
--          and the member "#" whose score is minus the units of all the
--          leases in the set, expired or not (so an acquire never reads the
--          live leases: it reads the last one, "#" and the expired ones it
--          drops). A lease is live while now < expiry. PEXPIRE until the
--          last lease expires. An acquire writes (expired leases removed, the
--          lease added) only when it is allowed with cost > 0; a release
--          removes the lease and deletes the key when no live lease is left.
--          A set without "#" (written by an older ratekit) is summed once.
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

local function units_of(member)
    return tonumber(string.match(member, ':(%d+)$')) or 0
end

-- The units of every lease in the set: minus the score of "#", or their sum
-- for a set an older ratekit wrote without it.
local function held_units(key)
    local sum = redis.call('ZSCORE', key, '#')
    if sum then
        return -tonumber(sum)
    end
    local total = 0
    local all = redis.call('ZRANGEBYSCORE', key, '(0', '+inf')
    for i = 1, #all do
        total = total + units_of(all[i])
    end
    return total
end

local function set_held(key, units)
    if units > 0 then
        redis.call('ZADD', key, fmt(-units), '#')
    else
        redis.call('ZREM', key, '#')
    end
end

-- The latest expiry, or nil for no lease ("#" scores below every lease).
local function last_expiry(key)
    local last = redis.call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
    if last[1] and last[1] ~= '#' then
        return clamp(tonumber(last[2]), 0, NOW_MAX + WINDOW_MAX)
    end
    return nil
end

-- The member of lease_id and its expiry. With its units, the member is read
-- directly (O(1)); without, it is found by Redis (ZSCAN MATCH), which walks
-- the set.
local function find_lease(key, id, units)
    if units > 0 then
        local member = id .. ':' .. fmt(units)
        local expires = redis.call('ZSCORE', key, member)
        if expires then
            return member, tonumber(expires)
        end
        return nil
    end
    local pattern = string.gsub(id, '[%*%?%[%]\\]', '\\%0') .. ':*'
    local cursor = '0'
    repeat
        local page = redis.call('ZSCAN', key, cursor, 'MATCH', pattern, 'COUNT', '1000')
        cursor = page[1]
        if page[2][1] then
            return page[2][1], tonumber(page[2][2])
        end
    until cursor == '0'
    return nil
end

local key = KEYS[1]
local now = int(ARGV[5], -1)
if now < 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
now = clamp(now, 0, NOW_MAX)

local LEASE_LIMIT_MAX = 10000
local limit = clamp(int(ARGV[1], 1), 1, LEASE_LIMIT_MAX)
local window = clamp(int(ARGV[2], 1), 1, WINDOW_MAX)
local cost = clamp(int(ARGV[4], 1), 0, COST_MAX)
local lease_id = ARGV[7] or ''
local op = ARGV[8] or 'decide'

if op == 'release' or op == 'refund' then
    local member, expires = nil, nil
    if lease_id ~= '' then
        member, expires = find_lease(key, lease_id, cost)
    end
    if member then
        local held = held_units(key) - units_of(member)
        if held == 0 then -- the set's last lease: nothing is left to keep
            redis.call('DEL', key)
            return {expires > now and 1 or 0}
        end
        redis.call('ZREM', key, member)
        set_held(key, held)
    end
    local last = last_expiry(key)
    if last == nil or last <= now then
        redis.call('DEL', key)
    elseif member then
        redis.call('PEXPIRE', key, fmt(last - now))
    end
    return {(member and expires > now) and 1 or 0}
end

if cost > 0 and lease_id == '' then
    return redis.error_reply('ERR a lease id is required to acquire')
end

-- Each lease keeps the expiry it was given: a window shortened since, or a
-- clock gone back, leaves the leases live that are.
local last = last_expiry(key)
-- Live units: every lease's, but the expired ones'.
local held, expired = 0, 0
if last then
    -- "#" (it scores below every lease) and the expired leases, in one read.
    local low = redis.call('ZRANGEBYSCORE', key, '-inf', fmt(now), 'WITHSCORES')
    local first = 1
    if low[1] == '#' then
        held, first = -tonumber(low[2]), 3
    else
        held = held_units(key)
    end
    for i = first, #low, 2 do
        if tonumber(low[i + 1]) > 0 then
            held = held - units_of(low[i])
            expired = expired + 1
        end
    end
end

local allowed = cost <= limit and held <= limit - cost
if allowed and cost > 0 then
    if expired > 0 then
        redis.call('ZREMRANGEBYSCORE', key, '(0', fmt(now))
    end
    held = held + cost
    redis.call('ZADD', key, fmt(now + window), lease_id .. ':' .. fmt(cost), fmt(-held), '#')
    last = math.max(last or 0, now + window)
    redis.call('PEXPIRE', key, fmt(last - now))
end
local reset = 0
if held > 0 then
    reset = last - now
end
local retry = 0
if not allowed then
    if cost > limit then
        retry = math.max(reset, window)
    else
        -- Wait until enough leases expire: at most to_free of them, soonest first.
        local to_free = held + cost - limit
        local leases = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(now), '+inf', 'WITHSCORES',
            'LIMIT', '0', fmt(to_free))
        for i = 1, #leases, 2 do
            to_free = to_free - units_of(leases[i])
            if to_free <= 0 then
                retry = tonumber(leases[i + 1]) - now
                break
            end
        end
    end
end
-- decide_at: the time it decided at too, as clamped (what a refund names).
return {allowed and 1 or 0, math.max(0, limit - held), reset, retry, 0,
    op == 'decide_at' and now or nil}
