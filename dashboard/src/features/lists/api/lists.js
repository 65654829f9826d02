import { api } from '../../../lib/api-client.js';

export const listEntries = () => api.get('/api/v1/lists');
export const addEntry = (entry) => api.post('/api/v1/lists', entry);
export const removeEntry = (id) => api.delete(`/api/v1/lists/${encodeURIComponent(id)}`);

/* Bans: denylist entries for a while, listed and lifted apart from the lists. */
export const listBans = () => api.get('/api/v1/bans');
/* ban: {value, duration: "10m", reason} */
export const addBan = (ban) => api.post('/api/v1/bans', ban);
export const liftBan = (id) => api.delete(`/api/v1/bans/${encodeURIComponent(id)}`);
