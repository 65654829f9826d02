/*
 * Creates an API token in two steps: the form (name, role, expiry), then the
 * secret, which the server answers this one time only: shown with a copy
 * button and a plain warning that it will not be shown again.
 */
import { useEffect, useRef, useState } from 'react';
import { Dialog } from '../../../components/dialog.jsx';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Badge } from '../../../components/badge.jsx';
import { Icon } from '../../../components/icon.jsx';
import { ExpiryFields, expiryChoices, resolveExpiry } from '../../../components/expiry-field.jsx';
import { ROLES, roleInfo } from '../../../utils/roles.js';
import { useFormSubmit } from '../../../hooks/use-form-submit.js';
import { createToken } from '../api/tokens.js';

const EXPIRIES = expiryChoices(
  { id: '7d', label: 'In 7 days', seconds: 7 * 86400 },
  { id: '30d', label: 'In 30 days', seconds: 30 * 86400 },
  { id: '90d', label: 'In 90 days', seconds: 90 * 86400 },
  { id: '1y', label: 'In 1 year', seconds: 365 * 86400 },
);

function RolePicker({ value, onChange, error }) {
  return (
    <fieldset className="fieldset">
      <legend>Role</legend>
      <div className="option-list" role="radiogroup" aria-label="Role">
        {ROLES.map((r) => (
          <label key={r.id} className={`option-card ${value === r.id ? 'selected' : ''}`}>
            <input type="radio" name="role" value={r.id} checked={value === r.id} onChange={() => onChange(r.id)} />
            <span className="option-name">{r.label}</span>
            <span className="option-text">{r.text}</span>
          </label>
        ))}
      </div>
      {error && <p className="field-error">{error}</p>}
    </fieldset>
  );
}

/* Copies text to the clipboard; answers whether it worked (the API needs a secure context). */
async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (!input) return false;
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

function SecretView({ created }) {
  const input = useRef(null);
  const [copied, setCopied] = useState(null);
  const copy = async () => setCopied((await copyText(created.token, input.current)) ? 'yes' : 'no');
  const role = roleInfo(created.role);
  return (
    <>
      <div className="secret-warning" role="note">
        <Icon name="alert" size={18} />
        <div>
          <strong>Copy this token now. You will not see it again.</strong>
          <span>ratekit keeps only a hash of it. If it is lost, revoke it and create another.</span>
        </div>
      </div>
      <div className="field">
        <label htmlFor="new-token-secret">
          Token for <strong>{created.name}</strong> <Badge tone={role.tone}>{role.label}</Badge>
        </label>
        <div className="secret-row">
          <textarea
            id="new-token-secret"
            ref={input}
            className="mono secret-value"
            value={created.token}
            rows={2}
            readOnly
            spellCheck="false"
            autoComplete="off"
            onFocus={(e) => e.target.select()}
            data-testid="new-token-secret"
          />
          <Button variant="secondary" icon={copied === 'yes' ? 'check' : 'copy'} onClick={copy} aria-live="polite">
            {copied === 'yes' ? 'Copied' : 'Copy'}
          </Button>
        </div>
        {copied === 'no' && <p className="field-hint">The browser did not allow copying: the token is selected, press Ctrl+C (⌘C on a Mac).</p>}
        {copied !== 'no' && (
          <p className="field-hint">
            Send it as <code>Authorization: Bearer &lt;token&gt;</code>, or sign in to this dashboard with it.
          </p>
        )}
      </div>
    </>
  );
}

/* Closing the secret by Esc or the close button, which may be a slip: asked first, as the secret is then gone for good. */
function DiscardConfirm({ onKeep, onDiscard }) {
  const keep = useRef(null);
  useEffect(() => {
    keep.current?.focus();
  }, []);
  return (
    <div className="restore-confirm" role="group" aria-label="Close without the token?" data-testid="discard-secret">
      <p>
        <strong>Close without the token?</strong> You will not see this token again: copy it first, or revoke it later and create another.
      </p>
      <div className="restore-confirm-actions">
        <Button size="sm" ref={keep} onClick={onKeep}>
          Keep it open
        </Button>
        <Button size="sm" variant="danger" onClick={onDiscard}>
          Close, I have it
        </Button>
      </div>
    </div>
  );
}

export function CreateTokenDialog({ open, onClose, onCreated }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [expiry, setExpiry] = useState('90d');
  const [at, setAt] = useState('');
  const { errors, setErrors, failure, setFailure, busy, send } = useFormSubmit();
  const [created, setCreated] = useState(null);
  const [askingDiscard, setAskingDiscard] = useState(false);

  const close = () => {
    setAskingDiscard(false);
    setName('');
    setRole('viewer');
    setExpiry('90d');
    setAt('');
    setErrors({});
    setFailure(null);
    setCreated(null);
    onClose();
  };

  const submit = async (event) => {
    event.preventDefault();
    const found = {};
    if (!name.trim()) found.name = 'Name the token after who or what uses it, such as "ci-deploy".';
    const expires = resolveExpiry(EXPIRIES, expiry, at);
    if (expires.error) found.expires_at = expires.error;
    setErrors(found);
    if (Object.keys(found).length) return;
    const sent = await send(() => createToken({ name: name.trim(), role, expires_at: expires.expires_at }));
    if (!sent.ok) return;
    setCreated(sent.value);
    onCreated(sent.value);
  };

  if (created) {
    return (
      <Dialog
        open={open}
        title="Your new API token"
        onClose={() => setAskingDiscard(true)}
        closeOnBackdrop={false}
        footer={
          <Button variant="primary" onClick={close}>
            Done
          </Button>
        }
      >
        <SecretView created={created} />
        {askingDiscard && (
          <DiscardConfirm
            onKeep={() => {
              setAskingDiscard(false);
              document.getElementById('new-token-secret')?.focus();
            }}
            onDiscard={close}
          />
        )}
      </Dialog>
    );
  }

  return (
    <Dialog
      open={open}
      title="New API token"
      onClose={close}
      footer={
        <>
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" form="create-token-form" variant="primary" loading={busy}>
            Create token
          </Button>
        </>
      }
    >
      <form id="create-token-form" className="dialog-form" onSubmit={submit} noValidate>
        {failure && <Alert error={failure} title="The token was not created" action="create API tokens" needs="admin" />}
        <Field label="Name" error={errors.name} hint="Who or what uses it. Shown in the list and in the rule history.">
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploy" maxLength={64} spellCheck="false" autoComplete="off" autoFocus />
        </Field>
        <RolePicker value={role} onChange={setRole} error={errors.role} />
        <ExpiryFields choices={EXPIRIES} choice={expiry} at={at} onChoice={setExpiry} onAt={setAt} error={errors.expires_at} />
      </form>
    </Dialog>
  );
}
