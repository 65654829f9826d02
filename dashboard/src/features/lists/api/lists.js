import { api } from '../../../lib/api-client.js';

export const listEntries = () => api.get('/api/v1/lists');
export const addEntry = (entry) => api.post('/api/v1/lists', entry);
export const removeEntry = (id) => api.delete(`/api/v1/lists/${encodeURIComponent(id)}`);
