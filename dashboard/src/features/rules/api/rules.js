import { api } from '../../../lib/api-client.js';

const path = (id) => `/api/v1/rules/${encodeURIComponent(id)}`;

export const listRules = () => api.get('/api/v1/rules');
export const getRule = (id) => api.get(path(id));
export const createRule = (rule, { dryRun = false } = {}) =>
  api.post('/api/v1/rules', rule, { query: { dry_run: dryRun ? 1 : undefined } });
/* A merge patch: each field given replaces the stored one whole; null puts back its default. */
export const patchRule = (id, patch, { dryRun = false } = {}) =>
  api.patch(path(id), patch, { query: { dry_run: dryRun ? 1 : undefined } });
export const deleteRule = (id) => api.delete(path(id));
export const getHistory = (id) => api.get(`${path(id)}/history`);
export const restoreVersion = (id, version) => api.post(`${path(id)}/restore/${encodeURIComponent(version)}`);
export const exportRules = () => api.get('/api/v1/rules/export');
/* dryRun: answers the counts the import would make ({created, updated, deleted}), changing nothing. */
export const importRules = (document, { dryRun = false } = {}) =>
  api.post('/api/v1/rules/import', document, { query: { dry_run: dryRun ? 1 : undefined } });
