/*
 * One EventSource to /api/v1/stream for the page that calls it, closed on
 * unmount. handlers maps an event name ("stats", "rule") to a function of
 * the parsed data; the latest handlers are always used without reconnecting.
 * Answers the connection status: "connecting", "live" or "offline" (not
 * live for longer than OFFLINE_AFTER_MS), which it also reports to the
 * server state, so that the whole app knows the server is away.
 */
import { useEffect, useRef, useState } from 'react';
import { streamUrl } from '../lib/api-client.js';
import { useServerState } from '../lib/server-state.jsx';

// EventSource retries every 2 s (the server's "retry:"); one missed retry is a blip, two are an outage.
const OFFLINE_AFTER_MS = 4500;
// A stream the server refused (a 503 while it stops) is not retried by EventSource: open a new one.
const REOPEN_AFTER_MS = 3000;

export function useEventStream(handlers) {
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  const [status, setStatus] = useState('connecting');
  const [attempt, setAttempt] = useState(0);
  const { reportStream } = useServerState();
  const names = Object.keys(handlers).sort().join(',');

  useEffect(() => {
    const source = new EventSource(streamUrl());
    let offlineTimer = null;
    let reopenTimer = null;
    const live = () => {
      clearTimeout(offlineTimer);
      offlineTimer = null;
      setStatus('live');
    };
    const away = () => {
      if (offlineTimer === null) offlineTimer = setTimeout(() => setStatus('offline'), OFFLINE_AFTER_MS);
    };
    const listeners = names.split(',').filter(Boolean).map((name) => {
      const listener = (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        live();
        const handler = handlersRef.current[name];
        if (handler) handler(data);
      };
      source.addEventListener(name, listener);
      return [name, listener];
    });
    away(); // until the first open
    source.onopen = live;
    // EventSource reconnects by itself (unless the server refused it: CLOSED); show the gap meanwhile.
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(offlineTimer);
        setStatus('offline');
        reopenTimer = setTimeout(() => setAttempt((n) => n + 1), REOPEN_AFTER_MS);
        return;
      }
      setStatus((s) => (s === 'offline' ? s : 'connecting'));
      away();
    };
    return () => {
      clearTimeout(offlineTimer);
      clearTimeout(reopenTimer);
      for (const [name, listener] of listeners) source.removeEventListener(name, listener);
      source.close();
    };
  }, [names, attempt]);

  useEffect(() => {
    reportStream(status === 'offline');
  }, [status, reportStream]);
  useEffect(() => () => reportStream(false), [reportStream]);

  return status;
}
