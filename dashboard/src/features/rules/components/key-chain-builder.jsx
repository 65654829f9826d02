/*
 * The ordered key chain: the first part the request carries is the key it is
 * counted by. Parts can be added, removed and moved.
 */
import { Icon } from '../../../components/icon.jsx';
import { KEY_PARTS } from '../utils/algorithms.js';

export function KeyChainBuilder({ parts, onChange, errorAt, error }) {
  const update = (i, patch) => onChange(parts.map((p, j) => (j === i ? { ...p, ...patch } : p)));
  const move = (i, by) => {
    const next = [...parts];
    const [p] = next.splice(i, 1);
    next.splice(i + by, 0, p);
    onChange(next);
  };
  const remove = (i) => onChange(parts.filter((_, j) => j !== i));

  return (
    <fieldset className={`fieldset ${error ? 'field-invalid' : ''}`}>
      <legend>Count requests by</legend>
      <p className="fieldset-hint">The first part a request has is used; the ones after it are fallbacks.</p>
      <ol className="key-chain">
        {parts.map((part, i) => {
          const def = KEY_PARTS.find((k) => k.kind === part.kind) || KEY_PARTS[0];
          const rowError = errorAt(i);
          return (
            <li key={i} className={`key-row ${rowError ? 'field-invalid' : ''}`}>
              <span className="key-step" aria-hidden="true">
                {i + 1}
              </span>
              <div className="key-inputs">
                <label className="sr-only" htmlFor={`key-kind-${i}`}>
                  Key part {i + 1}
                </label>
                <select id={`key-kind-${i}`} value={part.kind} onChange={(e) => update(i, { kind: e.target.value, arg: '' })} aria-invalid={rowError ? 'true' : undefined}>
                  {KEY_PARTS.map((k) => (
                    <option key={k.kind} value={k.kind}>
                      {k.label}
                    </option>
                  ))}
                </select>
                {def.arg && (
                  <>
                    <label className="sr-only" htmlFor={`key-arg-${i}`}>
                      {def.arg} for key part {i + 1}
                    </label>
                    <input
                      id={`key-arg-${i}`}
                      value={part.arg}
                      placeholder={part.kind === 'header' ? 'X-Tenant-Id' : part.kind === 'jwt' ? 'sub' : 'ip+route'}
                      onChange={(e) => update(i, { arg: e.target.value })}
                      aria-invalid={rowError ? 'true' : undefined}
                    />
                  </>
                )}
              </div>
              <div className="key-actions">
                <button type="button" className="icon-btn" onClick={() => move(i, -1)} disabled={i === 0} aria-label={`Move key part ${i + 1} up`}>
                  <Icon name="up" size={16} />
                </button>
                <button type="button" className="icon-btn" onClick={() => move(i, 1)} disabled={i === parts.length - 1} aria-label={`Move key part ${i + 1} down`}>
                  <Icon name="down" size={16} />
                </button>
                <button type="button" className="icon-btn" onClick={() => remove(i)} disabled={parts.length === 1} aria-label={`Remove key part ${i + 1}`}>
                  <Icon name="close" size={16} />
                </button>
              </div>
              <p className={rowError ? 'field-error key-note' : 'field-hint key-note'}>{rowError || def.hint}</p>
            </li>
          );
        })}
      </ol>
      {error && <p className="field-error">{error}</p>}
      <button type="button" className="btn btn-ghost btn-sm" onClick={() => onChange([...parts, { kind: 'ip', arg: '' }])}>
        <Icon name="plus" size={15} />
        Add fallback
      </button>
    </fieldset>
  );
}
