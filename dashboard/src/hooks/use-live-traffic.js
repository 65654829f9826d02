/*
 * Per-second traffic for the last windowS seconds: seeded from
 * /api/v1/stats/timeseries, then fed by the page's event stream.
 *
 * ruleIds: the rules to follow one by one (their own series); totals: also
 * follow the cluster-wide totals and checks. Answers {series(key), status,
 * latestT, received} where series("total") or series(ruleId) is a dense array of
 * windowS points {t, allowed, denied, shadow_denied, errors}, oldest first
 * (rule decisions), series(CHECKS) the same of the checks (each request
 * once, however many rules decided it; shadow_denied is 0), and
 * received says whether any figure came at all (latestT means nothing
 * before one did).
 *
 * Every rule followed is seeded, however many: one /api/v1/stats call tells
 * which of them had traffic in the window (the others' seconds are known to
 * be empty), and only those are read second by second.
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
// No rule id starts with "_".
export const CHECKS = '_checks';
// Series read at once while seeding: many rules with traffic do not flood the server.
const PARALLEL_READS = 6;
// Seconds of margin around the window when asking which rules had traffic (clocks a second apart).
const STATS_MARGIN_S = 5;
const MAX_STATS_WINDOW_S = 900;

function emptyPoint(t) {
  return { t, allowed: 0, denied: 0, shadow_denied: 0, errors: 0 };
}

function countsOf(c) {
  return { allowed: c.allowed || 0, denied: c.denied || 0, shadow_denied: c.shadow_denied || 0, errors: c.errors || 0 };
}

/* Runs task on each item, at most `parallel` at once; settles when all have. */
async function eachLimited(items, parallel, task) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await task(item);
      } catch {
        /* one series not read leaves its seconds to the stream */
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

/*
 * Of ruleIds, those with any decision in [from, to]: the others' seconds are
 * all empty and need no reading. Answers {ids, answered}: answered when the
 * server said so. A single rule is read without asking; when the server
 * cannot say, every rule is read.
 */
async function rulesWithTraffic(ruleIds, from, to) {
  if (ruleIds.length <= 1) return { ids: ruleIds, answered: false };
  try {
    const window = Math.min(MAX_STATS_WINDOW_S, to - from + 1 + STATS_MARGIN_S);
    const body = await api.get('/api/v1/stats', { query: { window } });
    const busy = new Set(
      ((body && body.rules) || []).filter((r) => r.allowed || r.denied || r.shadow_denied || r.errors).map((r) => r.rule),
    );
    return { ids: ruleIds.filter((id) => busy.has(id)), answered: true };
  } catch {
    return { ids: ruleIds, answered: false };
  }
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
    async (from, to, overwrite, isCancelled) => {
      const readSeries = (rule) =>
        api.get('/api/v1/stats/timeseries', { query: { rule, from, to, step: 1 } }).then((body) => {
          if (isCancelled() || !body || !Array.isArray(body.points)) return;
          for (const p of body.points) {
            put(rule ?? TOTAL, p.t, countsOf(p), overwrite);
            if (rule == null && p.checks) put(CHECKS, p.t, countsOf(p.checks), overwrite);
          }
          // The series answers every second up to `to`, the empty ones too.
          latest.current = Math.max(latest.current, to);
        });
      const [, busy] = await Promise.all([totals ? readSeries(null).catch(() => {}) : null, rulesWithTraffic(ruleIds, from, to)]);
      if (isCancelled()) return;
      // The rules left out are known to be empty up to `to`.
      if (busy.answered) latest.current = Math.max(latest.current, to);
      await eachLimited(busy.ids, PARALLEL_READS, readSeries);
      if (!isCancelled()) setRevision((r) => r + 1);
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
      if (totals && event.checks) put(CHECKS, event.t, countsOf(event.checks), true);
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

  // Before anything arrived, an empty window that ends now (received says it is not a reading).
  const received = latest.current > 0;
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

  return { series, status, latestT: end, received, revision };
}
