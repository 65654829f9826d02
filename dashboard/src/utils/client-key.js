/*
 * Client keys as ratekit counts them, for the fields that take one: a rule
 * keyed by ip counts a client as ip:203.0.113.7, by user as user:42, by
 * api_key as api_key:<hash>, by header:X-Tenant as header:x-tenant:acme, by
 * jwt:sub as jwt:sub:42, by route as route:GET:/api/items, global as global;
 * a tuple (ip+route) joins its parts with |. A direct check's key is counted
 * as given.
 */

const EXAMPLES = {
  ip: 'ip:203.0.113.7',
  user: 'user:42',
  api_key: 'api_key:<hash>',
  route: 'route:GET:/api/items',
  global: 'global',
};

/* The key one part of a chain ("ip", "header:X-Tenant", "ip+route") gives a sample client. */
function partExample(part) {
  if (part.includes('+')) return part.split('+').map(partExample).join('|');
  if (EXAMPLES[part]) return EXAMPLES[part];
  if (part.startsWith('header:')) return `header:${part.slice(7).toLowerCase()}:acme`;
  if (part.startsWith('jwt:')) return `jwt:${part.slice(4)}:42`;
  return part;
}

/* A sample key of the rule's first key part: the placeholder of a key field. */
export function keyExample(keyChain) {
  const chain = Array.isArray(keyChain) && keyChain.length ? keyChain : ['ip'];
  return partExample(chain[0]);
}

/* "As this rule counts a client: api_key:<hash>, else ip:203.0.113.7." */
export function keyHint(keyChain) {
  const chain = Array.isArray(keyChain) && keyChain.length ? keyChain : ['ip'];
  return `As this rule counts a client: ${chain.map(partExample).join(', else ')}. A direct check's key is as given.`;
}

const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-f]*:[0-9a-f:.]*:[0-9a-f:.]*$/i;

/*
 * For a bare address typed where a rule keyed by ip is meant (a chain with an
 * ip part), the key a request from it is counted as (ip:203.0.113.7); null
 * otherwise. A bare address is only a direct check's key.
 */
export function prefixedIp(value, keyChain) {
  const v = String(value ?? '').trim();
  const byIp = Array.isArray(keyChain) && keyChain.some((part) => part === 'ip');
  if (!byIp || !(IPV4.test(v) || IPV6.test(v))) return null;
  return `ip:${v.toLowerCase()}`;
}
