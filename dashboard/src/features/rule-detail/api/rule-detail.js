import { api } from '../../../lib/api-client.js';

export const getRule = (id) => api.get(`/api/v1/rules/${encodeURIComponent(id)}`);
export const getTopKeys = (rule, windowS) => api.get('/api/v1/stats/top', { query: { rule, window: windowS } });
/* A real check: it counts against the key, exactly as the data plane's /v1/check. */
export const runCheck = (rule, key, cost) => api.post('/api/v1/check', { rule, key, cost });

/* Per-key overrides of a rule. The key may hold '/', so it is URL-encoded as one segment. */
const overridesPath = (rule) => `/api/v1/rules/${encodeURIComponent(rule)}/overrides`;
export const listOverrides = (rule) => api.get(overridesPath(rule));
/* override: {limit, burst?, window?, expires_at?, note?}; creates it or replaces the key's one. */
export const putOverride = (rule, key, override) => api.put(`${overridesPath(rule)}/${encodeURIComponent(key)}`, override);
export const deleteOverride = (rule, key) => api.delete(`${overridesPath(rule)}/${encodeURIComponent(key)}`);
