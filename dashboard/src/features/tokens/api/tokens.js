import { api } from '../../../lib/api-client.js';

/* {"tokens": [{id, name, role, created_at, created_by, expires_at, last_used_at, expired}]}, never a secret. */
export const listTokens = () => api.get('/api/v1/tokens');
/* {name, role, expires_at?} -> the token with its secret in "token", answered this once. */
export const createToken = (token) => api.post('/api/v1/tokens', token);
export const revokeToken = (id) => api.delete(`/api/v1/tokens/${encodeURIComponent(id)}`);
