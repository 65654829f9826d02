import { api } from '../../../lib/api-client.js';

export const getCounter = (rule, key) => api.get('/api/v1/counters', { query: { rule, key } });
export const resetCounter = (rule, key) => api.delete('/api/v1/counters', { query: { rule, key } });
