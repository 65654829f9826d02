import { useState } from 'react';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { toLocalInput } from '../../../utils/format.js';

export const RANGES = [
  { id: '15m', label: 'Last 15 minutes', seconds: 900 },
  { id: '1h', label: 'Last hour', seconds: 3600 },
  { id: '24h', label: 'Last 24 hours', seconds: 86400 },
  { id: '7d', label: 'Last 7 days', seconds: 604800 },
  { id: 'all', label: 'All time', seconds: 0 },
  { id: 'custom', label: 'Custom range', seconds: 0 },
];

/* The query of a filter form: epoch seconds for from/to, nothing for "any". */
export function queryOf(filters) {
  const q = { rule: filters.rule || undefined, key: filters.key.trim() || undefined };
  const now = Math.floor(Date.now() / 1000);
  const range = RANGES.find((r) => r.id === filters.range);
  if (range && range.seconds) {
    q.from = now - range.seconds;
  } else if (filters.range === 'custom') {
    if (filters.from) q.from = Math.floor(new Date(filters.from).getTime() / 1000);
    if (filters.to) q.to = Math.floor(new Date(filters.to).getTime() / 1000);
  }
  return q;
}

export function ViolationFilters({ initial, ruleIds, onApply }) {
  const [f, setF] = useState(initial);
  const set = (patch) => setF((x) => ({ ...x, ...patch }));
  const customError = f.range === 'custom' && f.from && f.to && new Date(f.from) > new Date(f.to) ? 'The start is after the end.' : null;

  return (
    <form
      className="filters"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!customError) onApply(f);
      }}
    >
      <Field label="Rule">
        <select value={f.rule} onChange={(e) => set({ rule: e.target.value })}>
          <option value="">All rules</option>
          {ruleIds.map((id) => (
            <option key={id} value={id}>
              {id}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Key">
        <input type="search" value={f.key} onChange={(e) => set({ key: e.target.value })} placeholder="ip:203.0.113.7" spellCheck="false" />
      </Field>
      <Field label="Time range">
        <select
          value={f.range}
          onChange={(e) => {
            const range = e.target.value;
            if (range === 'custom' && !f.from) set({ range, from: toLocalInput(new Date(Date.now() - 3600000)), to: toLocalInput(new Date()) });
            else set({ range });
          }}
        >
          {RANGES.map((r) => (
            <option key={r.id} value={r.id}>
              {r.label}
            </option>
          ))}
        </select>
      </Field>
      {f.range === 'custom' && (
        <>
          <Field label="From">
            <input type="datetime-local" value={f.from} onChange={(e) => set({ from: e.target.value })} />
          </Field>
          <Field label="To" error={customError}>
            <input type="datetime-local" value={f.to} onChange={(e) => set({ to: e.target.value })} />
          </Field>
        </>
      )}
      <div className="filters-actions">
        <Button type="submit" variant="primary">
          Apply
        </Button>
      </div>
    </form>
  );
}
