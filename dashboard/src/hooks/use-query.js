/*
 * Loads data with an async function and keeps {data, error, loading}.
 * reload() fetches again without clearing what is shown; deps restart it.
 * A pollMs keeps it fresh while the page is open and visible: a hidden tab
 * does not poll, and reads again as soon as it is shown.
 */
import { useCallback, useEffect, useRef, useState } from 'react';

export function useQuery(fetcher, deps = [], { pollMs = 0, enabled = true } = {}) {
  const [state, setState] = useState({ data: undefined, error: null, loading: enabled });
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const generation = useRef(0);

  const run = useCallback(async (quiet) => {
    const mine = ++generation.current;
    if (!quiet) setState((s) => ({ ...s, loading: true }));
    try {
      const data = await fetcherRef.current();
      if (mine === generation.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, []);

  useEffect(() => {
    if (!enabled) return undefined;
    setState({ data: undefined, error: null, loading: true });
    run(true);
    if (!pollMs) return () => generation.current++;
    const timer = setInterval(() => {
      if (!document.hidden) run(true);
    }, pollMs);
    const onVisible = () => {
      if (!document.hidden) run(true);
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
      generation.current++;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, enabled, pollMs]);

  const reload = useCallback(() => run(true), [run]);
  return { ...state, reload };
}
