import { ALGORITHM_NAMES } from '../../../utils/algorithm-names.js';

/* The limiting algorithms, each with the one line a user needs to choose. */
export const ALGORITHMS = [
  { id: 'token_bucket', name: ALGORITHM_NAMES.token_bucket, text: 'Refills the limit over the window up to a burst: short bursts pass, then a steady rate.' },
  { id: 'sliding_window', name: ALGORITHM_NAMES.sliding_window, text: 'Blends the previous and current window: smooth edges at the cost of a fixed window.' },
  { id: 'fixed_window', name: ALGORITHM_NAMES.fixed_window, text: 'Counts per clock-aligned window: simplest, but allows a double burst at the edges.' },
  { id: 'sliding_log', name: ALGORITHM_NAMES.sliding_log, text: 'Keeps one timestamp per request: exact, memory grows with the limit.' },
  { id: 'gcra', name: ALGORITHM_NAMES.gcra, text: 'Spaces requests evenly (generic cell rate); burst sets how many may come at once.' },
  { id: 'leaky_bucket', name: ALGORITHM_NAMES.leaky_bucket, text: 'Drains at a fixed rate with a queue of burst; can delay requests instead of denying.' },
  { id: 'concurrency', name: ALGORITHM_NAMES.concurrency, text: 'Caps requests in flight with leases; the window is how long an unreleased lease lives.' },
];

/* Algorithms whose burst means something; the server refuses a burst for the others. */
export const BURST_ALGORITHMS = new Set(['token_bucket', 'gcra', 'leaky_bucket']);

export const KEY_PARTS = [
  { kind: 'ip', label: 'Client IP', hint: 'The client address (X-Forwarded-For from trusted proxies).' },
  { kind: 'user', label: 'User', hint: 'The X-User-Id header.' },
  { kind: 'api_key', label: 'API key', hint: 'The X-API-Key header.' },
  { kind: 'header', label: 'Header', hint: 'Any request header.', arg: 'Header name' },
  { kind: 'jwt', label: 'JWT claim', hint: 'A claim of the bearer token.', arg: 'Claim' },
  { kind: 'route', label: 'Route', hint: 'Method and matched path.' },
  { kind: 'global', label: 'Global', hint: 'One bucket shared by everyone.' },
  { kind: 'custom', label: 'Custom / tuple', hint: 'Two parts joined by + form a tuple, e.g. ip+route.', arg: 'Expression' },
];

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
