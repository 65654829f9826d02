/* Per-plan overrides of limit, burst and window (plan from X-Plan or the JWT's plan claim). */
import { Icon } from '../../../components/icon.jsx';

export function PlansEditor({ plans, onChange, errorUnder, withBurst = true }) {
  const update = (i, patch) => onChange(plans.map((p, j) => (j === i ? { ...p, ...patch } : p)));
  return (
    <div>
      {plans.length === 0 ? (
        <p className="field-hint">No plan overrides: every client gets the limits above.</p>
      ) : (
        <div className="plans">
          <div className="plans-head" aria-hidden="true">
            <span>Plan</span>
            <span>Limit</span>
            <span>Burst</span>
            <span>Window</span>
            <span />
          </div>
          {plans.map((p, i) => {
            const err = errorUnder(`plans[${i}]`) || (p.name.trim() && errorUnder(`plans.${p.name.trim()}`));
            return (
              <div key={i} className={`plans-row ${err ? 'field-invalid' : ''}`}>
                <input aria-label={`Plan ${i + 1} name`} value={p.name} placeholder="pro" onChange={(e) => update(i, { name: e.target.value })} />
                <input aria-label={`Plan ${i + 1} limit`} inputMode="numeric" value={p.limit} placeholder="inherit" onChange={(e) => update(i, { limit: e.target.value })} />
                <input aria-label={`Plan ${i + 1} burst`} inputMode="numeric" value={withBurst ? p.burst : ''} placeholder={withBurst ? 'inherit' : 'n/a'} disabled={!withBurst} title={withBurst ? undefined : 'This algorithm has no burst'} onChange={(e) => update(i, { burst: e.target.value })} />
                <input aria-label={`Plan ${i + 1} window`} value={p.window} placeholder="inherit" onChange={(e) => update(i, { window: e.target.value })} />
                <button type="button" className="icon-btn" aria-label={`Remove plan ${i + 1}`} onClick={() => onChange(plans.filter((_, j) => j !== i))}>
                  <Icon name="close" size={16} />
                </button>
                {err && <p className="field-error plans-error">{err}</p>}
              </div>
            );
          })}
        </div>
      )}
      <button type="button" className="btn btn-ghost btn-sm" onClick={() => onChange([...plans, { name: '', limit: '', burst: '', window: '' }])}>
        <Icon name="plus" size={15} />
        Add plan
      </button>
    </div>
  );
}
