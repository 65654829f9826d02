import { api } from '../../../lib/api-client.js';

export function listRules() {
  return api.get('/api/v1/rules');
}
