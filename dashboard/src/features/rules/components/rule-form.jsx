/*
 * Create or edit a rule: every field of the rule, the server's field errors
 * beside the fields they name, a dry-run "Validate" and the JSON it sends.
 * Every problem is reported at once: the form's own findings and, from a
 * dry run, the server's.
 */
import { useEffect, useMemo, useState } from 'react';
import { Field } from '../../../components/field.jsx';
import { Card } from '../../../components/card.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { AlgorithmPicker } from './algorithm-picker.jsx';
import { KeyChainBuilder } from './key-chain-builder.jsx';
import { MatchEditor } from './match-editor.jsx';
import { PlansEditor } from './plans-editor.jsx';
import { BURST_ALGORITHMS } from '../utils/algorithms.js';
import { errorUnder, errorsByField, fieldLabels, ruleFromForm, unplacedErrors } from '../utils/rule-form-model.js';
import { VIEWER_TITLE } from '../../../utils/roles.js';
import { listOf } from '../../../utils/format.js';

const LIMIT_LABELS = {
  concurrency: { limitHint: 'Requests in flight at once.', windowHint: 'An unreleased lease expires after this long.' },
};

/* The error path each form field answers for. */
const ERROR_PREFIX = {
  window: 'window_ms',
  methods: 'match.methods',
  path: 'match.path',
  hosts: 'match.hosts',
  headers: 'match.headers',
};

/* canEdit: false for a viewer's token, which may look at the form but not send it. */
export function RuleForm({ initial, editing, onSubmit, onValidate, onCancel, canEdit = true }) {
  const [form, setForm] = useState(initial);
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(null);
  // Bumped to move the focus to the first field in error, once the errors are on screen.
  const [focusRequest, setFocusRequest] = useState(0);
  useEffect(() => {
    if (focusRequest) focusFirstError();
  }, [focusRequest]);
  // Editing a field clears the errors it was showing.
  const set = (patch) => {
    setForm((f) => ({ ...f, ...patch }));
    setErrors((current) => {
      const prefixes = Object.keys(patch).map((k) => ERROR_PREFIX[k] || k);
      const left = Object.fromEntries(Object.entries(current).filter(([field]) => !prefixes.some((p) => field === p || field.startsWith(`${p}.`) || field.startsWith(`${p}[`))));
      return Object.keys(left).length === Object.keys(current).length ? current : left;
    });
  };
  const under = (prefix) => errorUnder(errors, prefix);
  const preview = useMemo(() => JSON.stringify(ruleFromForm(form).rule, null, 2), [form]);
  const hints = LIMIT_LABELS[form.algorithm] || {};

  // The server's field errors of the rule, from a dry run: {} when it has none or cannot say.
  const serverErrors = async (rule) => {
    try {
      await onValidate(rule);
      return {};
    } catch (err) {
      return errorsByField(err.errors, form);
    }
  };

  const run = async (kind) => {
    const { rule, errors: local } = ruleFromForm(form);
    setNotice(null);
    setFailure(null);
    setBusy(kind);
    try {
      if (Object.keys(local).length) {
        // The form's own finding (an unreadable window) wins over the server's word on the same field.
        setErrors({ ...(await serverErrors(rule)), ...local });
        setFocusRequest((n) => n + 1);
      } else if (kind === 'validate') {
        await onValidate(rule);
        setErrors({});
        setNotice('The server accepts this rule. Nothing was saved.');
      } else {
        await onSubmit(rule);
      }
    } catch (err) {
      if (err.errors && err.errors.length) {
        setErrors(errorsByField(err.errors, form));
      } else {
        setErrors({});
        setFailure(err);
      }
      setFocusRequest((n) => n + 1);
    } finally {
      setBusy(null);
    }
  };

  const unplaced = unplacedErrors(errors);
  const labels = fieldLabels(errors);
  const count = labels.length;

  return (
    <form
      className="rule-form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        run('save');
      }}
    >
      {count > 0 && (
        <Alert title={count === 1 ? `One field needs attention: ${labels[0]}` : `${count} fields need attention: ${listOf(labels)}`}>
          {unplaced.length > 0 && (
            <ul className="error-list">
              {unplaced.map(([field, message]) => (
                <li key={field}>
                  {field && <code>{field}</code>} {message}
                </li>
              ))}
            </ul>
          )}
        </Alert>
      )}
      {failure && <Alert error={failure} title="The rule was not saved" action="change rules" />}
      {notice && <Alert tone="success">{notice}</Alert>}

      <Card title="Basics">
        <div className="form-grid">
          <Field label="Rule ID" error={under('id')} hint={editing ? 'The ID cannot change.' : 'Lowercase letters, digits, - and _; up to 64.'}>
            <input value={form.id} onChange={(e) => set({ id: e.target.value })} readOnly={editing} placeholder="api-per-ip" spellCheck="false" autoComplete="off" />
          </Field>
          <Field label="Mode" error={under('mode')} hint="Shadow counts and reports, but never denies.">
            <select value={form.mode} onChange={(e) => set({ mode: e.target.value })}>
              <option value="enforce">Enforce</option>
              <option value="shadow">Shadow</option>
              <option value="off">Off</option>
            </select>
          </Field>
          <Field label="Description" error={under('description')} className="span-2" optional>
            <input value={form.description} onChange={(e) => set({ description: e.target.value })} placeholder="Public API, per client IP" />
          </Field>
          <Field label="Priority" error={under('priority')} hint="Lower runs first; ties by ID.">
            <input inputMode="numeric" value={form.priority} onChange={(e) => set({ priority: e.target.value })} />
          </Field>
          <Field label="When the store fails" error={under('fail_mode')} hint="Overrides RATEKIT_FAIL_MODE for this rule.">
            <select value={form.fail_mode} onChange={(e) => set({ fail_mode: e.target.value })}>
              <option value="">Server default</option>
              <option value="open">Allow (open)</option>
              <option value="closed">Deny (closed)</option>
              <option value="local">Decide locally</option>
            </select>
          </Field>
        </div>
      </Card>

      <Card title="Limit">
        <AlgorithmPicker value={form.algorithm} onChange={(algorithm) => set({ algorithm })} error={under('algorithm')} />
        <div className="form-grid form-grid-3">
          <Field label="Limit" error={under('limit')} hint={hints.limitHint || 'Requests allowed per window.'}>
            <input inputMode="numeric" value={form.limit} onChange={(e) => set({ limit: e.target.value })} />
          </Field>
          <Field label="Window" error={under('window_ms')} hint={hints.windowHint || 'Such as 500ms, 30s, 1m, 1h, 1d.'}>
            <input value={form.window} onChange={(e) => set({ window: e.target.value })} placeholder="1m" spellCheck="false" />
          </Field>
          {BURST_ALGORITHMS.has(form.algorithm) && (
            <Field label="Burst" error={under('burst')} hint="Extra room for short bursts; empty means the limit." optional>
              <input inputMode="numeric" value={form.burst} onChange={(e) => set({ burst: e.target.value })} placeholder="= limit" />
            </Field>
          )}
        </div>
        {form.algorithm === 'leaky_bucket' && (
          <label className="checkbox">
            <input type="checkbox" checked={form.shape} onChange={(e) => set({ shape: e.target.checked })} />
            <span>
              Shape traffic: delay requests while the queue has room instead of denying them
              {under('shape') && <span className="field-error"> {under('shape')}</span>}
            </span>
          </label>
        )}
      </Card>

      <Card title="Match" subtitle="Which requests this rule covers. Leave everything empty to cover all requests.">
        <MatchEditor form={form} set={set} errorUnder={under} />
      </Card>

      <Card title="Key">
        <KeyChainBuilder parts={form.key} onChange={(key) => set({ key })} errorAt={(i) => errors[`key[${i}]`]} error={errors.key} />
      </Card>

      <Card title="Plans" subtitle="Different limits per customer plan, from the X-Plan header or the JWT's plan claim.">
        <PlansEditor plans={form.plans} onChange={(plans) => set({ plans })} errorUnder={under} withBurst={BURST_ALGORITHMS.has(form.algorithm)} />
        {errors.plans && <p className="field-error">{errors.plans}</p>}
      </Card>

      <details className="json-preview">
        <summary>Rule JSON</summary>
        <pre>{preview}</pre>
      </details>

      <div className="form-footer">
        <Button onClick={onCancel}>Cancel</Button>
        <div className="form-footer-end">
          <Button onClick={() => run('validate')} loading={busy === 'validate'} disabled={!!busy || !canEdit} title={canEdit ? undefined : VIEWER_TITLE}>
            Validate
          </Button>
          <Button type="submit" variant="primary" loading={busy === 'save'} disabled={!!busy || !canEdit} title={canEdit ? undefined : VIEWER_TITLE}>
            {editing ? 'Save changes' : 'Create rule'}
          </Button>
        </div>
      </div>
    </form>
  );
}

/*
 * Focus on the first field in error, in the form's order; the banner only when
 * no field is. Called from an effect, after React has drawn the errors: from
 * the handler that set them, a frame could come before they were drawn.
 */
function focusFirstError() {
  const el =
    document.querySelector('.rule-form [aria-invalid="true"], .rule-form .field-invalid input, .rule-form .field-invalid select') ||
    document.querySelector('.rule-form .alert');
  if (el) {
    el.scrollIntoView({ block: 'center' });
    if (el.focus) el.focus({ preventScroll: true });
  }
}
