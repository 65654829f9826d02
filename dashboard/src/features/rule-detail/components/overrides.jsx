/*
 * Per-key overrides of one rule: a client key with its own limit (and
 * optionally its own burst and window) until an expiry. Lists them, adds or
 * changes one (the API's PUT replaces the key's override), removes one.
 */
import { useRef, useState } from 'react';
import { Card } from '../../../components/card.jsx';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Badge } from '../../../components/badge.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { ConfirmDialog } from '../../../components/dialog.jsx';
import { useToast } from '../../../components/toast.jsx';
import { ExpiryFields, expiryChoices, resolveExpiry } from '../../../components/expiry-field.jsx';
import { BURST_ALGORITHMS } from '../../rules/utils/algorithms.js';
import { durationProblem, formatDateTime, formatDuration, formatNumber, formatRelative, parseDuration, toLocalInput } from '../../../utils/format.js';
import { RoleNotice } from '../../../components/role-notice.jsx';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { deleteOverride, putOverride } from '../api/rule-detail.js';
import { useConfirmedAction } from '../../../hooks/use-confirmed-action.js';
import { IconButton } from '../../../components/icon-button.jsx';
import { TableHead } from '../../../components/table-head.jsx';
import { BareIpWarning } from '../../../components/bare-ip-warning.jsx';
import { keyExample, keyHint } from '../../../utils/client-key.js';

const EXPIRIES = expiryChoices(
  { id: '1h', label: 'In 1 hour', seconds: 3600 },
  { id: '24h', label: 'In 24 hours', seconds: 86400 },
  { id: '7d', label: 'In 7 days', seconds: 7 * 86400 },
  { id: '30d', label: 'In 30 days', seconds: 30 * 86400 },
);

const EMPTY = { key: '', limit: '', window: '', burst: '', note: '', expiry: 'never', at: '' };

/* The server's field names -> the form's. */
const FIELD_OF = { window_ms: 'window', expires_at: 'expires_at' };

function formOf(o) {
  return {
    key: o.key,
    limit: String(o.limit),
    window: o.window_ms ? formatDuration(o.window_ms) : '',
    burst: o.burst ? String(o.burst) : '',
    note: o.note || '',
    expiry: o.expires_at ? 'custom' : 'never',
    at: o.expires_at ? toLocalInput(new Date(o.expires_at)) : '',
  };
}

function limitText(limit, windowMs, burst) {
  return `${formatNumber(limit)} per ${formatDuration(windowMs)}${burst ? `, burst ${formatNumber(burst)}` : ''}`;
}

function OverrideForm({ rule, form, setForm, onSaved, keyInput, existing }) {
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const withBurst = BURST_ALGORITHMS.has(rule.algorithm);
  const set = (patch) => {
    setForm((f) => ({ ...f, ...patch }));
    setErrors((e) => {
      const left = { ...e };
      for (const k of Object.keys(patch)) delete left[k === 'at' || k === 'expiry' ? 'expires_at' : k];
      return left;
    });
  };

  const submit = async (event) => {
    event.preventDefault();
    const found = {};
    const key = form.key.trim();
    if (!key) found.key = `Enter the client key as this rule counts it, such as ${keyExample(rule.key)}.`;
    const limit = Number(form.limit);
    if (!form.limit.trim() || !Number.isInteger(limit) || limit < 1) found.limit = 'Enter a whole number of requests, 1 or more.';
    const windowMs = form.window.trim() ? parseDuration(form.window) : null;
    if (form.window.trim() && windowMs === null) found.window = durationProblem(form.window);
    const burst = form.burst.trim() ? Number(form.burst) : null;
    if (withBurst && form.burst.trim() && (!Number.isInteger(burst) || burst < 1)) found.burst = 'Enter a whole number, 1 or more.';
    const expires = resolveExpiry(EXPIRIES, form.expiry, form.at);
    if (expires.error) found.expires_at = expires.error;
    setErrors(found);
    if (Object.keys(found).length) return;

    const body = { limit, expires_at: expires.expires_at, note: form.note.trim() };
    if (windowMs !== null) body.window_ms = windowMs;
    if (withBurst && burst) body.burst = burst;
    setBusy(true);
    setFailure(null);
    try {
      const saved = await putOverride(rule.id, key, body);
      onSaved(saved || { key });
    } catch (err) {
      const byField = {};
      const other = [];
      for (const e of err.errors || []) {
        const f = FIELD_OF[e.field] || e.field;
        if (['key', 'limit', 'window', 'burst', 'expires_at', 'note'].includes(f)) byField[f] = e.message;
        else other.push(e);
      }
      setErrors(byField);
      if (other.length || !Object.keys(byField).length) setFailure({ error: err, other });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="override-form" onSubmit={submit} noValidate aria-labelledby="override-form-title">
      <h3 className="override-form-title" id="override-form-title">
        {existing ? 'Change an override' : 'Add an override'}
      </h3>
      {failure && (
        <Alert error={failure.error} title="The override was not saved" action="change overrides">
          {failure.other.length > 0 && (
            <ul className="error-list">
              {failure.other.map((e) => (
                <li key={e.field}>
                  <code>{e.field}</code> {e.message}
                </li>
              ))}
            </ul>
          )}
        </Alert>
      )}
      <div className="override-grid">
        <div className="override-key">
          <Field label="Client key" error={errors.key} hint={keyHint(rule.key)}>
            <input ref={keyInput} value={form.key} onChange={(e) => set({ key: e.target.value })} placeholder={keyExample(rule.key)} spellCheck="false" autoComplete="off" />
          </Field>
          <BareIpWarning value={form.key} keyChain={rule.key} onFix={(k) => set({ key: k })} />
        </div>
        <Field label="Limit" error={errors.limit} hint={`The rule allows ${formatNumber(rule.limit)}.`}>
          <input inputMode="numeric" value={form.limit} onChange={(e) => set({ limit: e.target.value })} />
        </Field>
        <Field label="Window" error={errors.window} hint={`Empty: the rule's ${formatDuration(rule.window_ms)}.`} optional>
          <input value={form.window} onChange={(e) => set({ window: e.target.value })} placeholder={formatDuration(rule.window_ms)} spellCheck="false" />
        </Field>
        {withBurst && (
          <Field label="Burst" error={errors.burst} hint={rule.burst ? `Empty: the rule's ${formatNumber(rule.burst)}.` : 'Empty: the rule\u2019s.'} optional>
            <input inputMode="numeric" value={form.burst} onChange={(e) => set({ burst: e.target.value })} />
          </Field>
        )}
        <ExpiryFields choices={EXPIRIES} choice={form.expiry} at={form.at} onChoice={(expiry) => set({ expiry })} onAt={(at) => set({ at })} error={errors.expires_at} />
        <Field label="Note" error={errors.note} optional className="override-note">
          <input value={form.note} onChange={(e) => set({ note: e.target.value })} placeholder="Paid plan until the contract ends" maxLength={256} />
        </Field>
        <div className="override-actions">
          {(form.key || form.limit) && (
            <Button
              variant="ghost"
              onClick={() => {
                setForm(EMPTY);
                setErrors({});
                setFailure(null);
              }}
            >
              Clear
            </Button>
          )}
          <Button type="submit" variant="primary" icon="plus" loading={busy}>
            Save override
          </Button>
        </div>
      </div>
    </form>
  );
}

/* overrides: the page's query of GET /api/v1/rules/{id}/overrides. */
export function Overrides({ rule, overrides }) {
  const toast = useToast();
  const [form, setForm] = useState(EMPTY);
  const keyInput = useRef(null);
  const canEdit = useCanEdit();
  const rows = (overrides.data && overrides.data.overrides) || [];

  const edit = (o) => {
    setForm(formOf(o));
    keyInput.current?.scrollIntoView({ block: 'center' });
    keyInput.current?.focus();
  };

  const removal = useConfirmedAction({
    perform: (o) => deleteOverride(rule.id, o.key),
    done: (o) => {
      toast(`Removed the override of ${o.key}`);
      overrides.reload();
    },
    action: 'change overrides',
    failure: () => 'Could not remove it',
  });
  const toRemove = removal.item;

  return (
    <Card
      title="Per-key overrides"
      subtitle={`Clients with their own limit instead of the rule's ${limitText(rule.limit, rule.window_ms, rule.burst)}.`}
      className="overrides-card"
      bodyClassName="overrides-body"
      id="overrides"
    >
      {overrides.loading && !overrides.data && <Spinner label="Loading the overrides" />}
      {overrides.error && !overrides.data && <Alert error={overrides.error} title="Cannot load the overrides" onRetry={overrides.reload} />}
      {overrides.data && rows.length === 0 && <p className="muted overrides-empty">No overrides: every client gets the rule's limit.</p>}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table className="table stack-table overrides-table">
            <TableHead columns={['Client key', 'Limit', 'Expires', 'Note', { label: 'Updated', className: 'hide-md' }]} actions />
            <tbody>
              {rows.map((o) => (
                <tr key={o.key} data-override={o.key} className={o.expired ? 'row-expired' : undefined}>
                  <td>
                    <code className="code-soft break">{o.key}</code>
                  </td>
                  <td className="stack-full" data-label="Limit">
                    {limitText(o.limit, o.window_ms || rule.window_ms, o.burst)}
                  </td>
                  <td className="nowrap stack-full" data-label="Expires" title={o.expires_at ? formatDateTime(o.expires_at) : undefined}>
                    {o.expired ? <Badge tone="gray">Expired</Badge> : o.expires_at ? formatRelative(o.expires_at) : <span className="muted">Never</span>}
                  </td>
                  <td className={`stack-full ${o.note ? '' : 'stack-empty'}`} data-label="Note">
                    {o.note || <span className="muted">—</span>}
                  </td>
                  <td className="hide-md">
                    <div className="nowrap">{formatDateTime(o.updated_at)}</div>
                    {o.updated_by && <div className="cell-sub">by {o.updated_by}</div>}
                  </td>
                  <td className="col-actions">
                    <div className="row-actions">
                      <IconButton icon="edit" label={`Change the override of ${o.key}`} title="Change" canEdit={canEdit} onClick={() => edit(o)} />
                      <IconButton icon="trash" danger label={`Remove the override of ${o.key}`} title="Remove" canEdit={canEdit} onClick={() => removal.ask(o)} />
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {canEdit ? (
        <OverrideForm
          rule={rule}
          form={form}
          setForm={setForm}
          keyInput={keyInput}
          existing={rows.some((o) => o.key === form.key.trim())}
          onSaved={(o) => {
            toast(`Override saved: ${o.key} gets ${formatNumber(o.limit)}`);
            setForm(EMPTY);
            overrides.reload();
          }}
        />
      ) : (
        <RoleNotice action="change overrides" />
      )}
      <ConfirmDialog open={!!toRemove} title="Remove this override?" confirmLabel="Remove override" busy={removal.busy} onConfirm={removal.run} onClose={removal.cancel}>
        {toRemove && (
          <p>
            <code className="code-soft break">{toRemove.key}</code> gets the rule's limit again ({limitText(rule.limit, rule.window_ms, rule.burst)}).
          </p>
        )}
      </ConfirmDialog>
    </Card>
  );
}
