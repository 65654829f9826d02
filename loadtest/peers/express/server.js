// The Express peer of make bench: the same check as ratekitd's direct form,
// POST /v1/check {"rule", "key"} -> 200 {"allowed", "remaining", ...}, done by
// rate-limiter-flexible's RateLimiterRedis on the same Redis (ioredis).
// One worker process per core (node:cluster), as one would deploy it.
//
// Environment: PORT, REDIS_PORT, LIMIT (points), WINDOW_S (duration),
// WORKERS (default: cores).
'use strict';

const cluster = require('node:cluster');
const os = require('node:os');

const port = Number(process.env.PORT || 3000);
const redisPort = Number(process.env.REDIS_PORT || 6379);
const limit = Number(process.env.LIMIT || 1000000);
const windowS = Number(process.env.WINDOW_S || 3600);
const workers = Number(process.env.WORKERS || os.availableParallelism());

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const express = require('express');
  const Redis = require('ioredis');
  const { RateLimiterRedis } = require('rate-limiter-flexible');

  const redis = new Redis({ host: '127.0.0.1', port: redisPort, enableOfflineQueue: false });
  const limiters = new Map();
  const limiterFor = (rule) => {
    let l = limiters.get(rule);
    if (!l) {
      l = new RateLimiterRedis({ storeClient: redis, keyPrefix: `rlflx:${rule}`, points: limit,
                                 duration: windowS });
      limiters.set(rule, l);
    }
    return l;
  };

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(express.json());
  app.post('/v1/check', async (req, res) => {
    const { rule, key } = req.body || {};
    if (typeof rule !== 'string' || typeof key !== 'string') {
      res.status(400).json({ error: { code: 'invalid_request', message: 'rule and key' } });
      return;
    }
    try {
      const r = await limiterFor(rule).consume(key, 1);
      res.json({ allowed: true, limit, remaining: r.remainingPoints, reset_ms: r.msBeforeNext,
                 retry_after_ms: 0 });
    } catch (r) {
      if (r instanceof Error) {
        res.status(503).json({ error: { code: 'store_unavailable', message: r.message } });
        return;
      }
      res.json({ allowed: false, limit, remaining: 0, reset_ms: r.msBeforeNext,
                 retry_after_ms: r.msBeforeNext });
    }
  });
  app.get('/healthz', (req, res) => res.json({ status: 'ok' }));
  app.listen(port, '127.0.0.1');
}
