/* The ids of the configured rules, for filters and pickers. */
import { api } from '../lib/api-client.js';
import { useQuery } from './use-query.js';

export function useRuleIds() {
  const { data, error, loading } = useQuery(() => api.get('/api/v1/rules'), []);
  const ids = data && Array.isArray(data.rules) ? data.rules.map((r) => r.id).sort() : [];
  return { ids, error, loading };
}
