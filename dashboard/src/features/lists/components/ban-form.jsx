/* Bans a client for a while: its value, how long, and why. */
import { useState } from 'react';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { useFormSubmit } from '../../../hooks/use-form-submit.js';
import { addBan } from '../api/lists.js';

// The API takes up to 7 days; a longer refusal belongs on the denylist.
const DURATIONS = [
  { value: '10m', label: '10 minutes' },
  { value: '1h', label: '1 hour' },
  { value: '6h', label: '6 hours' },
  { value: '24h', label: '24 hours' },
  { value: '7d', label: '7 days' },
];

/* The server's field names -> the form's. */
const FIELD_OF = { expires_at: 'duration' };

export function BanForm({ onBanned }) {
  const [value, setValue] = useState('');
  const [duration, setDuration] = useState('1h');
  const [reason, setReason] = useState('');
  const { errors, setErrors, failure, busy, send } = useFormSubmit(FIELD_OF);

  const submit = async (event) => {
    event.preventDefault();
    if (!value.trim()) {
      setErrors({ value: 'Enter an IP, a CIDR range or a client key.' });
      return;
    }
    setErrors({});
    const sent = await send(() => addBan({ value: value.trim(), duration, reason: reason.trim() }));
    if (!sent.ok) return;
    setValue('');
    setReason('');
    onBanned(sent.value);
  };

  return (
    <form className="entry-form" onSubmit={submit} noValidate>
      {failure && <Alert error={failure} title="The ban was not added" action="ban clients" />}
      <div className="entry-grid">
        <Field label="Value" error={errors.value} hint="An IP, a CIDR such as 203.0.113.0/24, or a client key.">
          <input value={value} onChange={(e) => setValue(e.target.value)} placeholder="203.0.113.50" spellCheck="false" autoComplete="off" />
        </Field>
        <Field label="Ban for" error={errors.duration}>
          <select value={duration} onChange={(e) => setDuration(e.target.value)}>
            {DURATIONS.map((d) => (
              <option key={d.value} value={d.value}>
                {d.label}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Reason" error={errors.reason} optional>
          <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="Credential stuffing" maxLength={256} />
        </Field>
        <div className="entry-submit">
          <Button type="submit" variant="primary" icon="shield" loading={busy}>
            Ban
          </Button>
        </div>
      </div>
    </form>
  );
}
