/*
 * A rule's match in one line, the same on every page: its methods, its path
 * (* for any), "on" its hosts and "with" the headers it requires.
 */
export function matchSummary(match) {
  if (!match) return 'All requests';
  const parts = [];
  if (match.methods && match.methods.length) parts.push(match.methods.join(' '));
  parts.push(match.path || '*');
  if (match.hosts && match.hosts.length) parts.push(`on ${match.hosts.join(', ')}`);
  const headers = Object.entries(match.headers || {});
  if (headers.length) parts.push(`with ${headers.map(([name, value]) => `${name}: ${value}`).join(', ')}`);
  return parts.join(' ');
}
