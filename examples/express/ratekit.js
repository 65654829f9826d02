// ratekit as an Express middleware (Node 18+: uses the built-in fetch).
//
// Settings, from the environment:
//   RATEKIT_URL          ratekit's data plane (default http://127.0.0.1:8080)
//   RATEKIT_TIMEOUT_MS   how long to wait for an answer (default 200)
//   RATEKIT_FAIL_OPEN    1 (default): when ratekit cannot answer in time, let
//                        the request through; 0: refuse it with 503
//   RATEKIT_CHECK_TOKEN  the data plane's token, when ratekitd requires one
'use strict';

const RATE_LIMIT_HEADERS = ['RateLimit-Policy', 'RateLimit', 'X-RateLimit-Limit',
  'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After'];
const PRIVATE_HEADERS = new Set(['cookie', 'content-length', 'content-type', 'connection']);

// The peer's address; an IPv4 client of a dual-stack socket as plain IPv4.
function clientAddress(req) {
  const ip = req.socket.remoteAddress || '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function ratekit(options = {}) {
  const url = (options.url || process.env.RATEKIT_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
  const timeoutMs = Number(options.timeoutMs || process.env.RATEKIT_TIMEOUT_MS || 200);
  const failOpen = options.failOpen !== undefined ? options.failOpen
    : (process.env.RATEKIT_FAIL_OPEN || '1') !== '0';
  const token = options.checkToken || process.env.RATEKIT_CHECK_TOKEN || '';

  return async function ratekitMiddleware(req, res, next) {
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!PRIVATE_HEADERS.has(name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const check = {
      request: { method: req.method, path: req.originalUrl, host: req.headers.host || '',
        ip: clientAddress(req), headers },
    };
    let answer;
    let answerHeaders;
    try {
      const r = await fetch(url + '/v1/check', {
        method: 'POST',
        headers: Object.assign({ 'Content-Type': 'application/json' },
          token ? { 'X-Ratekit-Token': token } : {}),
        body: JSON.stringify(check),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!r.ok) throw new Error(`ratekit answered ${r.status}`);
      answer = await r.json();
      answerHeaders = r.headers;
    } catch (err) {
      if (failOpen) return next();
      res.set('Retry-After', '1');
      return res.status(503).json({ error: { code: 'unavailable',
        message: 'Rate limiting is unavailable, try again: ' + err.name } });
    }
    for (const name of RATE_LIMIT_HEADERS) {
      const value = answerHeaders.get(name);
      if (value && (name !== 'Retry-After' || !answer.allowed)) res.set(name, value);
    }
    if (answer.allowed) return next();
    const retryAfterMs = answer.retry_after_ms || 0;
    if (!res.get('Retry-After')) res.set('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    return res.status(429).json({ error: { code: 'rate_limited',
      message: `Rate limit exceeded for rule '${answer.rule}'`, rule: answer.rule,
      limit: answer.limit, remaining: answer.remaining || 0, retry_after_ms: retryAfterMs } });
  };
}

module.exports = { ratekit };
