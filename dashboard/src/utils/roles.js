/*
 * The roles of API tokens, and how the dashboard speaks of a request its
 * token's role may not make (the admin API answers those with 403).
 */

export const ROLES = [
  { id: 'admin', label: 'Admin', tone: 'blue', text: 'Everything, including creating and revoking API tokens.' },
  { id: 'editor', label: 'Editor', tone: 'green', text: 'Reads everything; changes rules, overrides, lists and counters.' },
  { id: 'viewer', label: 'Viewer', tone: 'gray', text: 'Reads rules, traffic and violations; changes nothing.' },
];

export function roleInfo(id) {
  return ROLES.find((r) => r.id === id) || { id, label: id, tone: 'gray', text: '' };
}

/*
 * Whether a role may change things (rules, overrides, lists, bans, counters).
 * An unknown role (not answered yet, or an older server) may: the server
 * still refuses what the token may not do.
 */
export function canEdit(role) {
  return role !== 'viewer';
}

/* The tooltip of a control a viewer token may not use. */
export const VIEWER_TITLE = 'Viewer tokens cannot change anything';

/* Whether an error is the server refusing the request for the token's role. */
export function isRoleRefusal(err) {
  return !!err && err.status === 403;
}

/* "Your token's role cannot save rules." */
export function roleMessage(action = 'do this') {
  return `Your token's role cannot ${action}.`;
}

/* What to do about it: needs is the least role that may do it. */
export function roleAdvice(needs = 'editor') {
  return needs === 'admin'
    ? 'Only an admin token can do this. Sign in with one, or ask an admin.'
    : 'Viewer tokens can look but not change anything. Sign in with an editor or admin token, or ask an admin for one.';
}

/* A toast for a failed write: the role message for a 403, else "<prefix>: <message>". */
export function failureToast(toast, err, action, prefix) {
  if (isRoleRefusal(err)) toast(roleMessage(action), 'info');
  else toast(`${prefix}: ${err.message}`, 'error');
}
