-- ratekit_peer.lua — the nginx + Lua peer's check: the direct form of
-- ratekitd's POST /v1/check, decided by EVALSHA of lua/token_bucket.lua
-- (ARGV as ratekitd passes them) on a pooled cosocket connection.
-- Answers 200 {"allowed", "limit", "remaining", "reset_ms", "retry_after_ms"}.
local cjson = require("cjson.safe")
local redis = require("nginx.redis")

local M = {}
local cfg

function M.init(c)
    cfg = c
    local f = assert(io.open(c.script, "r"))
    cfg.script_text = f:read("*a")
    f:close()
    cfg.limit_text = string.format("%d", c.limit)
    cfg.window_text = string.format("%d", c.window_ms)
end

local function answer(status, body)
    ngx.status = status
    ngx.header.content_type = "application/json"
    ngx.header.content_length = #body
    ngx.print(body)
end

function M.check()
    ngx.req.read_body()
    local req = cjson.decode(ngx.req.get_body_data() or "")
    if type(req) ~= "table" or type(req.rule) ~= "string" or type(req.key) ~= "string" then
        return answer(400, '{"error":{"code":"invalid_request","message":"rule and key"}}')
    end
    local r = redis:new()
    r:set_timeout(250)
    local ok, err = r:connect("127.0.0.1", cfg.redis_port)
    if not ok then
        return answer(503, '{"error":{"code":"store_unavailable","message":"connect"}}')
    end
    local key = "ratekit:{" .. req.rule .. ":" .. req.key .. "}:token_bucket"
    local res
    res, err = r:evalsha(cfg.sha, 1, key, cfg.limit_text, cfg.window_text, cfg.limit_text, "1",
                         "-1", "0", "", "decide")
    if not res and err and err:find("NOSCRIPT", 1, true) then
        res, err = r:eval(cfg.script_text, 1, key, cfg.limit_text, cfg.window_text,
                          cfg.limit_text, "1", "-1", "0", "", "decide")
    end
    if not res then
        r:close()
        return answer(503, '{"error":{"code":"store_unavailable","message":"script"}}')
    end
    r:set_keepalive(60000, 256)
    answer(200, string.format(
        '{"allowed":%s,"limit":%s,"remaining":%d,"reset_ms":%d,"retry_after_ms":%d}',
        res[1] == 1 and "true" or "false", cfg.limit_text, res[2], res[3], res[4]))
end

return M
