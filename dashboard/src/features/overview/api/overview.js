import { api } from '../../../lib/api-client.js';

export function getInfo() {
  return api.get('/api/v1/info');
}

export function listRules() {
  return api.get('/api/v1/rules');
}
