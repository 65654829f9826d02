/*
 * One EventSource to /api/v1/stream for the page that calls it, closed on
 * unmount. handlers maps an event name ("stats", "rule") to a function of
 * the parsed data; the latest handlers are always used without reconnecting.
 * Answers the connection status: "connecting", "live" or "offline".
 */
import { useEffect, useRef, useState } from 'react';
import { streamUrl } from '../lib/api-client.js';

export function useEventStream(handlers) {
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  const [status, setStatus] = useState('connecting');
  const names = Object.keys(handlers).sort().join(',');

  useEffect(() => {
    const source = new EventSource(streamUrl());
    const listeners = names.split(',').filter(Boolean).map((name) => {
      const listener = (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        setStatus('live');
        const handler = handlersRef.current[name];
        if (handler) handler(data);
      };
      source.addEventListener(name, listener);
      return [name, listener];
    });
    source.onopen = () => setStatus('live');
    // EventSource reconnects by itself; show the gap meanwhile.
    source.onerror = () => setStatus(source.readyState === EventSource.CLOSED ? 'offline' : 'connecting');
    return () => {
      for (const [name, listener] of listeners) source.removeEventListener(name, listener);
      source.close();
    };
  }, [names]);

  return status;
}
