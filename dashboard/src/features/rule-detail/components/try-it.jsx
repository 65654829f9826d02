/* Runs a real check for a key and shows the decision and the headers a client would get. */
import { useState } from 'react';
import { Card } from '../../../components/card.jsx';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Badge } from '../../../components/badge.jsx';
import { formatNumber, formatWait } from '../../../utils/format.js';
import { runCheck } from '../api/rule-detail.js';

export function TryIt({ ruleId }) {
  const [key, setKey] = useState('203.0.113.7');
  const [cost, setCost] = useState('1');
  const [result, setResult] = useState(null);
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const [keyError, setKeyError] = useState(null);

  const submit = async (event) => {
    event.preventDefault();
    if (!key.trim()) {
      setKeyError('Enter the key to check, such as an IP address or a user ID.');
      return;
    }
    setKeyError(null);
    setBusy(true);
    setFailure(null);
    try {
      setResult(await runCheck(ruleId, key.trim(), Number(cost) || 1));
    } catch (err) {
      setFailure(err);
      setResult(null);
    } finally {
      setBusy(false);
    }
  };

  const d = result && result.decision;
  const shadowDenied = d && d.mode === 'shadow' && d.allowed === false;
  return (
    <Card title="Try it" subtitle="Runs a real check: it counts against the key.">
      <form className="try-form" onSubmit={submit} noValidate>
        <Field label="Key" error={keyError} className="try-key">
          <input value={key} onChange={(e) => setKey(e.target.value)} spellCheck="false" autoComplete="off" />
        </Field>
        <Field label="Cost" className="try-cost">
          <input inputMode="numeric" value={cost} onChange={(e) => setCost(e.target.value)} />
        </Field>
        <Button type="submit" variant="primary" icon="play" loading={busy}>
          Check
        </Button>
      </form>
      {failure && <Alert error={failure} title="The check failed" />}
      {d && (
        <div className="decision" data-testid="decision" aria-live="polite">
          <div className="decision-head">
            {d.allowed ? <Badge tone="green">Allowed</Badge> : <Badge tone={shadowDenied ? 'amber' : 'red'}>{shadowDenied ? 'Would deny (shadow)' : 'Denied'}</Badge>}
            <span className="muted small">mode {d.mode}</span>
          </div>
          <dl className="decision-grid">
            <div>
              <dt>Remaining</dt>
              <dd>
                {formatNumber(d.remaining)} <span className="muted">of {formatNumber(d.limit)}</span>
              </dd>
            </div>
            <div>
              <dt>Full again in</dt>
              <dd>{formatWait(d.reset_ms)}</dd>
            </div>
            <div>
              <dt>Retry after</dt>
              <dd>{d.retry_after_ms ? formatWait(d.retry_after_ms) : '—'}</dd>
            </div>
          </dl>
          {result.headers && Object.keys(result.headers).length > 0 && (
            <table className="table headers-table">
              <caption className="sr-only">Response headers</caption>
              <tbody>
                {Object.entries(result.headers).map(([name, value]) => (
                  <tr key={name}>
                    <th scope="row">
                      <code>{name}</code>
                    </th>
                    <td>
                      <code>{String(value)}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </Card>
  );
}
