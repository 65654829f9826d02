// ratekit as an Express middleware (Node 18+: uses the built-in fetch).
//
// Settings, from the environment:
//   RATEKIT_URL          ratekit's data plane (default http://127.0.0.1:8080)
//   RATEKIT_TIMEOUT_MS   how long to wait for an answer (default 200)
//   RATEKIT_FAIL_OPEN    1 (default): when ratekit cannot answer (unreachable,
//                        too slow, a 5xx), let the request through; 0: refuse
//                        it with 503
//   RATEKIT_CHECK_TOKEN  the data plane's token, when ratekitd requires one
//
// What each answer of ratekit leads to:
//   200              its decision: next(), 429 when limited, or 403 when the
//                    client is on the denylist
//   401, 403, 404    a wrong RATEKIT_CHECK_TOKEN or RATEKIT_URL: the operator's
//                    error, logged (console.error) and handled as
//                    unavailability, so that RATEKIT_FAIL_OPEN decides
//   any other 4xx    ratekit refuses to judge this request (too long a path,
//                    too large, malformed): 400, never a pass, so that no
//                    client can pick the fail-open path by shaping its request
//   no answer, 5xx   unavailable: RATEKIT_FAIL_OPEN decides
//
// A request a concurrency rule covers holds one of its slots from the check
// on (a denied one holds none: ratekit ends them itself): the middleware
// gives the slots back (POST /v1/release) once the response is sent or the
// client has gone, and logs a release that fails (the slot may then stay
// held until the rule's window ends).
'use strict';

const RATE_LIMIT_HEADERS = ['RateLimit-Policy', 'RateLimit', 'X-RateLimit-Limit',
  'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After'];
const PRIVATE_HEADERS = new Set(['cookie', 'content-length', 'content-type', 'connection']);
// ratekit's answers that mean the application is set up wrong, not the request.
const CONFIG_ERRORS = { 401: 'RATEKIT_CHECK_TOKEN', 403: 'RATEKIT_CHECK_TOKEN', 404: 'RATEKIT_URL' };

// Calls done once, when res has been sent or its client has gone.
function whenOver(res, done) {
  let called = false;
  const once = () => { if (!called) { called = true; done(); } };
  res.once('finish', once);
  res.once('close', once);
  if (res.destroyed) once(); // the client left while ratekit was asked
}

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
  const post = (path, body) => fetch(url + path, {
    method: 'POST',
    headers: Object.assign({ 'Content-Type': 'application/json' },
      token ? { 'X-Ratekit-Token': token } : {}),
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  // Never throws: a release that fails is logged.
  const release = async (lease) => {
    try {
      const r = await post('/v1/release', { lease });
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
    } catch (err) {
      console.error(`ratekit could not release a slot of rule '${lease.split('.')[0]}' (${err}): `
        + 'it may stay held until the rule\'s window ends');
    }
  };

  return async function ratekitMiddleware(req, res, next) {
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!PRIVATE_HEADERS.has(name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const check = {
      request: { method: req.method, path: req.originalUrl, host: req.headers.host || '',
        ip: clientAddress(req), headers },
    };
    const unavailable = (reason) => {
      if (failOpen) return next();
      res.set('Retry-After', '1');
      return res.status(503).json({ error: { code: 'unavailable',
        message: 'Rate limiting is unavailable, try again: ' + reason } });
    };
    let r;
    let answer = null;
    try {
      r = await post('/v1/check', check);
      answer = await r.json();
    } catch (err) {
      // No answer, or one that is not JSON: only a 4xx's status says enough alone.
      if (!r || r.status < 400 || r.status >= 500) return unavailable(err.name);
    }
    if (CONFIG_ERRORS[r.status]) {
      const e = (answer && answer.error) || {};
      console.error(`ratekit answered ${r.status} ${e.code || ''} (${e.message || ''}): check `
        + `${CONFIG_ERRORS[r.status]}; handled as if ratekit were unavailable `
        + `(RATEKIT_FAIL_OPEN=${failOpen ? 1 : 0})`);
      return unavailable(`HTTP ${r.status}`);
    }
    if (r.status >= 400 && r.status < 500) { // ratekit will not judge it: no pass either
      const e = (answer && answer.error) || {};
      const why = typeof e.message === 'string' ? e.message.slice(0, 200) : `ratekit answered ${r.status}`;
      return res.status(400).json({ error: { code: 'invalid_request',
        message: 'The request cannot be checked against the rate limits: ' + why } });
    }
    if (!r.ok) return unavailable(`HTTP ${r.status}`); // a 5xx
    if (!answer || typeof answer.allowed !== 'boolean') {
      console.error('ratekit\'s answer is not a decision: check RATEKIT_URL');
      return unavailable('not a decision');
    }
    if (answer.reason === 'denylist') { // refused for good: no rule, nothing to wait for
      return res.status(403).json({ error: { code: 'forbidden',
        message: 'This client is on the denylist' } });
    }
    const leases = (answer.results || []).map((result) => result.lease).filter(Boolean);
    if (leases.length) whenOver(res, () => leases.forEach(release));
    for (const name of RATE_LIMIT_HEADERS) {
      const value = r.headers.get(name);
      if (value && (name !== 'Retry-After' || !answer.allowed)) res.set(name, value);
    }
    if (answer.allowed) return next();
    const retryAfterMs = answer.retry_after_ms || 0;
    if (!res.get('Retry-After')) res.set('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    // When the client's state is back to full: X-RateLimit-Reset's instant, as
    // ratekit's forward-auth answers it.
    const resetS = Number(r.headers.get('X-RateLimit-Reset'))
      || Math.ceil((Date.now() + (answer.reset_ms || 0)) / 1000);
    return res.status(429).json({ error: { code: 'rate_limited',
      message: `Rate limit exceeded for rule '${answer.rule}'`, rule: answer.rule,
      limit: answer.limit, remaining: answer.remaining || 0,
      reset_at: new Date(resetS * 1000).toISOString().replace('.000Z', 'Z'),
      retry_after_ms: retryAfterMs } });
  };
}

module.exports = { ratekit };
