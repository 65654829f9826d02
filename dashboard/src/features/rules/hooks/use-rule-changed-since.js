/*
 * The rule as stored now, once it is no longer the version a form was
 * opened on: read again at each rule event of the stream (a change made
 * here or on another instance; an import or a reload names no rule), and
 * whenever refresh() asks, as a save does first. latest is null while the
 * stored rule is still that version, {deleted: true} once it is gone.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { useEventStream } from '../../../hooks/use-event-stream.js';
import { getRule } from '../api/rules.js';

export function useRuleChangedSince(ruleId, version) {
  const [latest, setLatest] = useState(null);
  const latestRef = useRef(null);
  latestRef.current = latest;

  useEffect(() => setLatest(null), [ruleId, version]);

  /* Answers the stored rule when it differs from version (null when it does not); keeps what was known when the server cannot say. */
  const refresh = useCallback(async () => {
    if (!ruleId || version === undefined || version === null) return null;
    try {
      const stored = await getRule(ruleId);
      const next = stored && stored.version !== version ? stored : null;
      setLatest(next);
      return next;
    } catch (err) {
      if (err.status !== 404) return latestRef.current;
      const gone = { deleted: true };
      setLatest(gone);
      return gone;
    }
  }, [ruleId, version]);

  useEventStream({
    rule: (event) => {
      if (!event || event.rule === null || event.rule === undefined || event.rule === ruleId) refresh();
    },
  });

  return { latest, refresh };
}
