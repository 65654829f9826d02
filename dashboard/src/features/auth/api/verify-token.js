import { api } from '../../../lib/api-client.js';

/* Asks /api/v1/info with the given token: answers the info, or throws (401 for a wrong token). */
export function verifyToken(token) {
  return api.get('/api/v1/info', { token });
}
