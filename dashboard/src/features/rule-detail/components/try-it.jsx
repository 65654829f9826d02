/*
 * Runs a real check for a key and shows the decision and the headers a
 * client would get. A try counts against the key like a request, so the key
 * offered is an obviously made-up one, not a client's; and a viewer's token
 * may not try (the server wants an editor).
 */
import { useState } from 'react';
import { Card } from '../../../components/card.jsx';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Badge } from '../../../components/badge.jsx';
import { formatNumber, formatWait } from '../../../utils/format.js';
import { RoleNotice } from '../../../components/role-notice.jsx';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { VIEWER_TITLE } from '../../../utils/roles.js';
import { runCheck } from '../api/rule-detail.js';
import { BareIpWarning } from '../../../components/bare-ip-warning.jsx';
import { keyExample } from '../../../utils/client-key.js';

const SYNTHETIC_KEY = 'try-it:dashboard';

/* keyChain: the rule's key, to say how its clients are counted (a try's key is counted as given). */
export function TryIt({ ruleId, keyChain }) {
  const canEdit = useCanEdit();
  const [key, setKey] = useState(SYNTHETIC_KEY);
  const [cost, setCost] = useState('1');
  const [result, setResult] = useState(null);
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState({});

  const submit = async (event) => {
    event.preventDefault();
    const found = {};
    if (!key.trim()) found.key = `Enter the key to check, such as ${keyExample(keyChain)}.`;
    const n = Number(cost);
    if (!cost.trim() || !Number.isInteger(n) || n < 1) found.cost = 'A whole number, 1 or more.';
    setErrors(found);
    setFailure(null);
    // A result under an error would read as the answer to what is typed now.
    setResult(null);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      setResult(await runCheck(ruleId, key.trim(), n));
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
      {!canEdit && <RoleNotice action="try checks, which count against a key" />}
      <form className="try-form" onSubmit={submit} noValidate>
        <Field
          label="Key"
          error={errors.key}
          className="try-key"
          hint={`Counted as typed, as a request would be: a client of this rule is ${keyExample(keyChain)}.`}
        >
          <input value={key} onChange={(e) => setKey(e.target.value)} spellCheck="false" autoComplete="off" disabled={!canEdit} />
        </Field>
        <Field label="Cost" error={errors.cost} className="try-cost">
          <input inputMode="numeric" value={cost} onChange={(e) => setCost(e.target.value)} disabled={!canEdit} />
        </Field>
        <Button type="submit" variant="primary" icon="play" loading={busy} disabled={!canEdit} title={canEdit ? undefined : VIEWER_TITLE}>
          Check
        </Button>
      </form>
      <BareIpWarning value={key} keyChain={keyChain} onFix={setKey} />
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
