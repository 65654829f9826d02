/*
 * Under a client key field: a bare address typed for a rule keyed by ip is
 * not the key its requests are counted under (ip:203.0.113.7); says so, and
 * puts the prefix in with one click.
 */
import { prefixedIp } from '../utils/client-key.js';

export function BareIpWarning({ value, keyChain, onFix }) {
  const fixed = prefixedIp(value, keyChain);
  if (!fixed) return null;
  return (
    <p className="field-warning" role="status" data-testid="bare-ip-warning">
      <span>
        An ip rule counts this client as <code>{fixed}</code>; {String(value).trim()} alone is only the key of a direct check.
      </span>
      <button type="button" className="btn btn-secondary btn-sm" onClick={() => onFix(fixed)}>
        Use {fixed}
      </button>
    </p>
  );
}
