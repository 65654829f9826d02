/* Which requests the rule covers: methods, path, hosts and required headers. */
import { Field } from '../../../components/field.jsx';
import { Icon } from '../../../components/icon.jsx';
import { METHODS } from '../utils/algorithms.js';

export function MatchEditor({ form, set, errorUnder }) {
  const toggleMethod = (m) =>
    set({ methods: form.methods.includes(m) ? form.methods.filter((x) => x !== m) : [...form.methods, m] });
  const setHeader = (i, patch) => set({ headers: form.headers.map((h, j) => (j === i ? { ...h, ...patch } : h)) });
  const methodsError = errorUnder('match.methods');
  const headersError = errorUnder('match.headers');

  return (
    <div className="form-grid">
      <fieldset className={`fieldset span-2 ${methodsError ? 'field-invalid' : ''}`}>
        <legend>Methods</legend>
        <div className="chip-group">
          {METHODS.map((m) => (
            <label key={m} className={`chip ${form.methods.includes(m) ? 'chip-on' : ''}`}>
              <input type="checkbox" checked={form.methods.includes(m)} onChange={() => toggleMethod(m)} />
              {m}
            </label>
          ))}
        </div>
        {methodsError ? (
          <p className="field-error">{methodsError}</p>
        ) : (
          form.methods.length === 0 && <p className="field-hint">None selected means every method.</p>
        )}
      </fieldset>
      <Field label="Path" error={errorUnder('match.path')} hint="Exact (/login), prefix (/api/*) or segment wildcards (/users/*/orders). Empty covers every path.">
        <input value={form.path} onChange={(e) => set({ path: e.target.value })} placeholder="/api/*" spellCheck="false" />
      </Field>
      <Field label="Hosts" error={errorUnder('match.hosts')} hint="Comma-separated. Empty covers every host." optional>
        <input value={form.hosts} onChange={(e) => set({ hosts: e.target.value })} placeholder="api.example.com" spellCheck="false" />
      </Field>
      <fieldset className={`fieldset span-2 ${headersError ? 'field-invalid' : ''}`}>
        <legend>Required headers</legend>
        {form.headers.length === 0 && <p className="field-hint">No header conditions.</p>}
        {form.headers.map((h, i) => (
          <div className="inline-row" key={i}>
            <label className="sr-only" htmlFor={`hdr-name-${i}`}>
              Header name {i + 1}
            </label>
            <input id={`hdr-name-${i}`} value={h.name} placeholder="X-Tenant" onChange={(e) => setHeader(i, { name: e.target.value })} />
            <label className="sr-only" htmlFor={`hdr-value-${i}`}>
              Header value {i + 1}
            </label>
            <input id={`hdr-value-${i}`} value={h.value} placeholder="value" onChange={(e) => setHeader(i, { value: e.target.value })} />
            <button type="button" className="icon-btn" aria-label={`Remove header condition ${i + 1}`} onClick={() => set({ headers: form.headers.filter((_, j) => j !== i) })}>
              <Icon name="close" size={16} />
            </button>
          </div>
        ))}
        {headersError && <p className="field-error">{headersError}</p>}
        <button type="button" className="btn btn-ghost btn-sm" onClick={() => set({ headers: [...form.headers, { name: '', value: '' }] })}>
          <Icon name="plus" size={15} />
          Add header condition
        </button>
      </fieldset>
    </div>
  );
}
