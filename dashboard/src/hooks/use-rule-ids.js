/* The ids of the configured rules, for filters and pickers; rules: the rules themselves (their key chains). */
import { api } from '../lib/api-client.js';
import { useQuery } from './use-query.js';

export function useRuleIds() {
  const { data, error, loading } = useQuery(() => api.get('/api/v1/rules'), []);
  const rules = data && Array.isArray(data.rules) ? data.rules : [];
  const ids = rules.map((r) => r.id).sort();
  return { ids, rules, error, loading };
}
