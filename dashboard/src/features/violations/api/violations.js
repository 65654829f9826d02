import { api, downloadFile } from '../../../lib/api-client.js';

export const listViolations = (filters, cursor, limit = 50) => api.get('/api/v1/violations', { query: { ...filters, cursor, limit } });

export const downloadViolationsCsv = (filters) => {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  return downloadFile('/api/v1/violations', { ...filters, format: 'csv' }, `ratekit-violations-${stamp}.csv`);
};
