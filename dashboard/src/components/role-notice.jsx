import { Icon } from './icon.jsx';
import { roleAdvice, roleMessage } from '../utils/roles.js';

/*
 * A calm note that the signed-in token's role may not do something: what it
 * cannot do (action, as in "save rules") and which role can.
 */
export function RoleNotice({ action, needs = 'editor' }) {
  return (
    <div className="alert alert-info" role="status" data-testid="role-notice">
      <Icon name="shield" size={18} />
      <div className="alert-body">
        <strong className="alert-title">{roleMessage(action)}</strong>
        <span>{roleAdvice(needs)}</span>
      </div>
    </div>
  );
}
