/*
 * Per-second traffic for the last windowS seconds: seeded from
 * /api/v1/stats/timeseries, then fed by the page's event stream.
 *
 * ruleIds: the rules to follow one by one (their own series); totals: also
 * follow the cluster-wide totals. Answers {series(key), status, latestT}
 * where series("total") or series(ruleId) is a dense array of windowS points
 * {t, allowed, denied, shadow_denied}, oldest first.
 *
 * The window ends at latestT, the last second known complete: the last stats
 * event received (the server sends one a second, traffic or not), or the end
 * of the last series read. It never runs ahead on the clock: a second whose
 * event has not arrived yet would read as no traffic, and so would every
 * second while the server is away.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api } from '../lib/api-client.js';
import { useEventStream } from './use-event-stream.js';

const TOTAL = 'total';
const MAX_SEEDED_RULES = 30;

function emptyPoint(t) {
  return { t, allowed: 0, denied: 0, shadow_denied: 0 };
}

function countsOf(c) {
  return { allowed: c.allowed || 0, denied: c.denied || 0, shadow_denied: c.shadow_denied || 0 };
}

export function useLiveTraffic({ ruleIds = [], totals = true, windowS = 300, onRuleChange } = {}) {
  // key -> Map(t -> counts); live points always win over seeded ones.
  const store = useRef(new Map());
  const latest = useRef(0);
  const [revision, setRevision] = useState(0);
  const ruleKey = ruleIds.join('\n');

  const put = useCallback((key, t, counts, live) => {
    let m = store.current.get(key);
    if (!m) store.current.set(key, (m = new Map()));
    if (live || !m.has(t)) m.set(t, counts);
  }, []);

  const prune = useCallback(() => {
    const oldest = latest.current - windowS - 5;
    for (const m of store.current.values()) for (const t of m.keys()) if (t < oldest) m.delete(t);
  }, [windowS]);

  // Reads the stored series of [from, to]; overwrite replaces what is held.
  const load = useCallback(
    (from, to, overwrite, isCancelled) => {
      const wanted = [...(totals ? [null] : []), ...ruleIds.slice(0, MAX_SEEDED_RULES)];
      return Promise.allSettled(
        wanted.map((rule) =>
          api.get('/api/v1/stats/timeseries', { query: { rule, from, to, step: 1 } }).then((body) => {
            if (isCancelled() || !body || !Array.isArray(body.points)) return;
            for (const p of body.points) put(rule ?? TOTAL, p.t, countsOf(p), overwrite);
            // The series answers every second up to `to`, the empty ones too.
            latest.current = Math.max(latest.current, to);
          }),
        ),
      ).then(() => {
        if (!isCancelled()) setRevision((r) => r + 1);
      });
    },
    [ruleKey, totals, put], // eslint-disable-line react-hooks/exhaustive-deps
  );

  // Seed from the stored time series, up to the last complete second.
  useEffect(() => {
    let cancelled = false;
    const to = Math.floor(Date.now() / 1000) - 1;
    load(to - windowS, to, false, () => cancelled);
    return () => {
      cancelled = true;
    };
  }, [load, windowS]);

  const onStats = useCallback(
    (event) => {
      if (typeof event.t !== 'number') return;
      latest.current = Math.max(latest.current, event.t);
      if (totals && event.totals) put(TOTAL, event.t, countsOf(event.totals), true);
      const followed = new Set(ruleIds);
      for (const [id, c] of Object.entries(event.rules || {})) {
        if (followed.has(id) || totals) put(id, event.t, countsOf(c), true);
      }
      prune();
      setRevision((r) => r + 1);
    },
    [ruleKey, totals, put, prune], // eslint-disable-line react-hooks/exhaustive-deps
  );

  const status = useEventStream({
    stats: onStats,
    rule: (event) => onRuleChange && onRuleChange(event),
  });

  // Without the stream, poll the recent series so the numbers still move.
  useEffect(() => {
    if (status === 'live') return undefined;
    let cancelled = false;
    const timer = setInterval(() => {
      const to = Math.floor(Date.now() / 1000) - 1;
      load(to - 30, to, true, () => cancelled);
    }, 5000);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [status, load]);

  // Before anything arrived, an empty window that ends now.
  const end = latest.current || Math.floor(Date.now() / 1000) - 1;
  const series = useCallback(
    (key = TOTAL) => {
      const m = store.current.get(key);
      const out = new Array(windowS);
      for (let i = 0; i < windowS; i++) {
        const t = end - windowS + 1 + i;
        const c = m && m.get(t);
        out[i] = c ? { t, ...c } : emptyPoint(t);
      }
      return out;
    },
    [end, windowS, revision], // eslint-disable-line react-hooks/exhaustive-deps
  );

  return { series, status, latestT: end, revision };
}
