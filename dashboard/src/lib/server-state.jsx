/*
 * Whether the admin API can be reached, and what it last said about itself
 * (GET /api/v1/info: store, health, version, the token's role). One poll for
 * the whole app; the pages' event streams report in too, so that a stopped
 * server shows within seconds and not only at the next poll.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import { api } from './api-client.js';
import { useQuery } from '../hooks/use-query.js';

const POLL_MS = 5000;

const ServerStateContext = createContext(null);

export function ServerStateProvider({ children }) {
  const info = useQuery(() => api.get('/api/v1/info'), [], { pollMs: POLL_MS });
  const [streamDown, setStreamDown] = useState(false);
  const reload = useRef(info.reload);
  reload.current = info.reload;
  const started = useRef(false);

  // A stream going down or coming back is news: ask the server at once.
  useEffect(() => {
    if (started.current) reload.current();
    started.current = true;
  }, [streamDown]);

  /* down: the page's event stream has been away for longer than a blip. */
  const reportStream = useCallback((down) => setStreamDown(down), []);

  const reachable = !info.error && !streamDown;
  const value = useMemo(
    () => ({
      info: info.data,
      // Not answered yet: neither reachable nor known to be down.
      state: !reachable ? 'unreachable' : info.data ? 'ok' : 'connecting',
      role: info.data ? info.data.role : undefined,
      reload: info.reload,
      reportStream,
    }),
    [info.data, info.reload, reachable, reportStream],
  );
  return <ServerStateContext.Provider value={value}>{children}</ServerStateContext.Provider>;
}

export function useServerState() {
  const ctx = useContext(ServerStateContext);
  if (!ctx) throw new Error('useServerState outside ServerStateProvider');
  return ctx;
}
