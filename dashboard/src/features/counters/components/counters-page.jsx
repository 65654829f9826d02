import { useState } from 'react';
import { useRuleIds } from '../../../hooks/use-rule-ids.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Card } from '../../../components/card.jsx';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { ConfirmDialog } from '../../../components/dialog.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { useToast } from '../../../components/toast.jsx';
import { formatNumber, formatWait } from '../../../utils/format.js';
import { algorithmName } from '../../../utils/algorithm-names.js';
import { getCounter, resetCounter } from '../api/counters.js';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { VIEWER_TITLE, failureToast } from '../../../utils/roles.js';
import { keyExample, keyHint } from '../../../utils/client-key.js';
import { BareIpWarning } from '../../../components/bare-ip-warning.jsx';

/* When the client may send again: none left and no retry wait reported means at the reset. */
function retryText(state) {
  if (state.retry_after_ms) return formatWait(state.retry_after_ms);
  if (state.remaining === 0) return `At the reset, in ${formatWait(state.reset_ms)}`;
  return 'Not limited';
}

export function CountersPage() {
  useDocumentTitle('Counters');
  const toast = useToast();
  const canEdit = useCanEdit();
  const { ids, rules } = useRuleIds();
  const [rule, setRule] = useState('');
  const [key, setKey] = useState('');
  const [errors, setErrors] = useState({});
  const [state, setState] = useState(null);
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [resetting, setResetting] = useState(false);
  const chosenRule = rule || ids[0] || '';
  const keyChain = (rules.find((r) => r.id === chosenRule) || {}).key;

  const lookup = async (event) => {
    if (event) event.preventDefault();
    const found = {};
    if (!chosenRule) found.rule = 'Pick a rule.';
    if (!key.trim()) found.key = `Enter the key as the rule counts it, such as ${keyExample(keyChain)}.`;
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    setFailure(null);
    try {
      setState(await getCounter(chosenRule, key.trim()));
    } catch (err) {
      setState(null);
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  const reset = async () => {
    setResetting(true);
    try {
      await resetCounter(state.rule, state.key);
      toast(`Counter of ${state.key} reset`);
      setConfirm(false);
      setState(await getCounter(state.rule, state.key));
    } catch (err) {
      failureToast(toast, err, 'reset counters', 'Reset failed');
    } finally {
      setResetting(false);
    }
  };

  const used = state && state.limit ? Math.max(0, state.limit - state.remaining) : 0;

  return (
    <>
      <PageHeader title="Counters" description="Look up how much of a limit a client has used, and give it a fresh start." />
      <Card>
        <form className="lookup-form" onSubmit={lookup} noValidate>
          <Field label="Rule" error={errors.rule}>
            <select value={chosenRule} onChange={(e) => setRule(e.target.value)}>
              {ids.length === 0 && <option value="">No rules</option>}
              {ids.map((id) => (
                <option key={id} value={id}>
                  {id}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Key" error={errors.key}>
            <input value={key} onChange={(e) => setKey(e.target.value)} placeholder={keyExample(keyChain)} spellCheck="false" autoComplete="off" />
          </Field>
          <Button type="submit" variant="primary" icon="search" loading={busy}>
            Look up
          </Button>
        </form>
        <p className="field-hint lookup-hint">{keyHint(keyChain)}</p>
        <BareIpWarning value={key} keyChain={keyChain} onFix={setKey} />
      </Card>
      {failure && <Alert error={failure} title="Cannot read the counter" />}
      {!state && !failure && (
        <EmptyState icon="counters" title="Look up a client">
          Pick a rule and enter a key to see its remaining allowance and when it resets. Looking up does not count as a request.
        </EmptyState>
      )}
      {state && (
        <Card
          title={
            <>
              <code className="code-soft break">{state.key}</code> <span className="muted">on</span> {state.rule}
            </>
          }
          actions={
            <>
              <Button size="sm" icon="refresh" onClick={() => lookup()}>
                Refresh
              </Button>
              <Button size="sm" variant="danger" onClick={() => setConfirm(true)} disabled={!canEdit} title={canEdit ? undefined : VIEWER_TITLE}>
                Reset counter
              </Button>
            </>
          }
        >
          <div className="counter-usage">
            <div className="counter-figure">
              <span className="counter-big" data-testid="counter-remaining">
                {formatNumber(state.remaining)}
              </span>
              <span className="muted"> of {formatNumber(state.limit)} remaining</span>
            </div>
            <progress className={`bar bar-lg ${state.remaining === 0 ? 'bar-danger' : ''}`} max={state.limit || 1} value={used} aria-label={`${used} of ${state.limit} used`} />
          </div>
          <dl className="decision-grid">
            <div>
              <dt>Algorithm</dt>
              <dd>{algorithmName(state.algorithm)}</dd>
            </div>
            <div>
              <dt>Full again in</dt>
              <dd>{formatWait(state.reset_ms)}</dd>
            </div>
            <div>
              <dt>Retry after</dt>
              <dd data-testid="counter-retry">{retryText(state)}</dd>
            </div>
          </dl>
        </Card>
      )}
      <ConfirmDialog open={confirm} title="Reset this counter?" confirmLabel="Reset" busy={resetting} onConfirm={reset} onClose={() => setConfirm(false)}>
        {state && (
          <p>
            <code className="code-soft break">{state.key}</code> gets its full allowance of <strong>{state.rule}</strong> back at once, on every instance.
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}
