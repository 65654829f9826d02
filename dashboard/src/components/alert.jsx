import { Icon } from './icon.jsx';
import { RoleNotice } from './role-notice.jsx';
import { isRoleRefusal } from '../utils/roles.js';

/* tone: error | warning | info | success, each with its own icon. */
const TONE_ICONS = { error: 'alert', warning: 'violations', info: 'info', success: 'check' };

/*
 * An error or notice box. error: an ApiError or Error; its message is shown.
 * A refusal for the token's role (403) becomes a calm RoleNotice instead,
 * saying what cannot be done (action, as in "save rules") and who can (needs).
 */
export function Alert({ tone = 'error', title, error, children, onRetry, action, needs }) {
  if (isRoleRefusal(error)) return <RoleNotice action={action} needs={needs} />;
  const message = error ? error.message : null;
  return (
    <div className={`alert alert-${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      <Icon name={TONE_ICONS[tone] || 'info'} size={18} />
      <div className="alert-body">
        {title && <strong className="alert-title">{title}</strong>}
        {message && <span>{message}</span>}
        {error && error.code && error.status > 0 && <span className="alert-code">{error.code}</span>}
        {children}
      </div>
      {onRetry && (
        <button type="button" className="btn btn-ghost btn-sm" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}
