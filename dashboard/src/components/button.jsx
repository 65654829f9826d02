import { Icon } from './icon.jsx';

/* variant: primary | secondary | danger | ghost; size: md | sm. */
export function Button({ variant = 'secondary', size = 'md', icon, loading = false, children, className = '', type = 'button', disabled, ...rest }) {
  return (
    <button
      type={type}
      className={`btn btn-${variant} ${size === 'sm' ? 'btn-sm' : ''} ${className}`}
      disabled={disabled || loading}
      aria-busy={loading || undefined}
      {...rest}
    >
      {loading ? <span className="spinner spinner-inline" aria-hidden="true" /> : icon ? <Icon name={icon} size={size === 'sm' ? 15 : 17} /> : null}
      {children}
    </button>
  );
}
