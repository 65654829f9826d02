import { useState } from 'react';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { toLocalInput } from '../../../utils/format.js';
import { useFormSubmit } from '../../../hooks/use-form-submit.js';
import { addEntry } from '../api/lists.js';

const EXPIRIES = [
  { id: 'never', label: 'Never', seconds: 0 },
  { id: '1h', label: 'In 1 hour', seconds: 3600 },
  { id: '24h', label: 'In 24 hours', seconds: 86400 },
  { id: '7d', label: 'In 7 days', seconds: 604800 },
  { id: '30d', label: 'In 30 days', seconds: 2592000 },
  { id: 'custom', label: 'On a date…', seconds: 0 },
];

const iso = (date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function AddEntryForm({ list, onAdded }) {
  const [value, setValue] = useState('');
  const [note, setNote] = useState('');
  const [expiry, setExpiry] = useState('never');
  const [at, setAt] = useState('');
  const { errors, setErrors, failure, busy, send } = useFormSubmit();

  const submit = async (event) => {
    event.preventDefault();
    const found = {};
    if (!value.trim()) found.value = 'Enter an IP, a CIDR range or a client key.';
    let expires_at = null;
    const choice = EXPIRIES.find((e) => e.id === expiry);
    if (choice.seconds) expires_at = iso(new Date(Date.now() + choice.seconds * 1000));
    if (expiry === 'custom') {
      const d = new Date(at);
      if (!at || Number.isNaN(d.getTime())) found.expires_at = 'Pick when the entry expires.';
      else if (d.getTime() <= Date.now()) found.expires_at = 'Pick a time in the future.';
      else expires_at = iso(d);
    }
    setErrors(found);
    if (Object.keys(found).length) return;
    const sent = await send(() => addEntry({ list, value: value.trim(), expires_at, note: note.trim() }));
    if (!sent.ok) return;
    setValue('');
    setNote('');
    onAdded(sent.value);
  };

  return (
    <form className="entry-form" onSubmit={submit} noValidate>
      {failure && <Alert error={failure} title="The entry was not added" action="change the allow and deny lists" />}
      <div className="entry-grid">
        <Field label="Value" error={errors.value} hint="An IP, a CIDR such as 10.0.0.0/8, or a client key.">
          <input value={value} onChange={(e) => setValue(e.target.value)} placeholder={list === 'safelist' ? '10.0.0.0/8' : '198.51.100.23'} spellCheck="false" autoComplete="off" />
        </Field>
        <Field label="Expires" error={expiry !== 'custom' ? errors.expires_at : undefined}>
          <select
            value={expiry}
            onChange={(e) => {
              setExpiry(e.target.value);
              if (e.target.value === 'custom' && !at) setAt(toLocalInput(new Date(Date.now() + 86400000)));
            }}
          >
            {EXPIRIES.map((x) => (
              <option key={x.id} value={x.id}>
                {x.label}
              </option>
            ))}
          </select>
        </Field>
        {expiry === 'custom' && (
          <Field label="Expiry date" error={errors.expires_at}>
            <input type="datetime-local" value={at} onChange={(e) => setAt(e.target.value)} />
          </Field>
        )}
        <Field label="Note" error={errors.note} optional>
          <input value={note} onChange={(e) => setNote(e.target.value)} placeholder="Office network" />
        </Field>
        <div className="entry-submit">
          <Button type="submit" variant="primary" icon="plus" loading={busy}>
            Add to {list}
          </Button>
        </div>
      </div>
    </form>
  );
}
