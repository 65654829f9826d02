/* Display names of the limiting algorithms. */
export const ALGORITHM_NAMES = {
  token_bucket: 'Token bucket',
  sliding_window: 'Sliding window',
  fixed_window: 'Fixed window',
  sliding_log: 'Sliding log',
  gcra: 'GCRA',
  leaky_bucket: 'Leaky bucket',
  concurrency: 'Concurrency',
};

export function algorithmName(id) {
  return ALGORITHM_NAMES[id] || id || '—';
}
