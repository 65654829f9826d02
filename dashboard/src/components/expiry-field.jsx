/*
 * When something expires: a choice of "Never", a few durations, or a date
 * and time (local). resolveExpiry turns the choice into the ISO 8601 UTC
 * time the API takes, or an error message for the date field.
 */
import { Field } from './field.jsx';
import { toLocalInput } from '../utils/format.js';

/* choices: [{id, label, seconds}]; "never" and "custom" are understood by id. */
export function expiryChoices(...durations) {
  return [{ id: 'never', label: 'Never', seconds: 0 }, ...durations, { id: 'custom', label: 'On a date…', seconds: 0 }];
}

const iso = (date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/* Answers {expires_at} (null for never) or {error}. at: the datetime-local value. */
export function resolveExpiry(choices, choice, at) {
  if (choice === 'custom') {
    const d = new Date(at);
    if (!at || Number.isNaN(d.getTime())) return { error: 'Pick when it expires.' };
    if (d.getTime() <= Date.now()) return { error: 'Pick a time in the future.' };
    return { expires_at: iso(d) };
  }
  const c = choices.find((x) => x.id === choice);
  return { expires_at: c && c.seconds ? iso(new Date(Date.now() + c.seconds * 1000)) : null };
}

export function ExpiryFields({ choices, choice, at, onChoice, onAt, error, label = 'Expires', hint }) {
  return (
    <>
      <Field label={label} hint={hint} error={choice !== 'custom' ? error : undefined}>
        <select
          value={choice}
          onChange={(e) => {
            onChoice(e.target.value);
            if (e.target.value === 'custom' && !at) onAt(toLocalInput(new Date(Date.now() + 7 * 86400000)));
          }}
        >
          {choices.map((x) => (
            <option key={x.id} value={x.id}>
              {x.label}
            </option>
          ))}
        </select>
      </Field>
      {choice === 'custom' && (
        <Field label="Expiry date" error={error}>
          <input type="datetime-local" value={at} onChange={(e) => onAt(e.target.value)} />
        </Field>
      )}
    </>
  );
}
