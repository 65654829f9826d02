import { useState } from 'react';
import { useAuth } from '../../../lib/auth.jsx';
import { Field } from '../../../components/field.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { verifyToken } from '../api/verify-token.js';

export function SignInPage() {
  useDocumentTitle('Sign in');
  const { signIn, notice } = useAuth();
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError({ field: 'Enter your API token.' });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await verifyToken(value);
      signIn(value);
    } catch (err) {
      if (err.status === 401 || err.status === 403) setError({ field: 'This token is not valid. Check it and try again.' });
      else setError({ banner: err });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="signin">
      <main className="signin-card" id="main">
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true" />
          ratekit
        </div>
        <h1>Sign in to your dashboard</h1>
        <p className="muted">Use an API token with access to the admin API. The token stays in this browser tab only.</p>
        {notice && <Alert tone="warning">{notice}</Alert>}
        {error && error.banner && <Alert error={error.banner} title="Could not sign in" />}
        <form onSubmit={submit} noValidate>
          <Field label="API token" error={error && error.field} hint="Set with RATEKIT_ADMIN_TOKEN, or created under API tokens.">
            <input
              type="password"
              name="token"
              autoComplete="current-password"
              spellCheck="false"
              value={token}
              onChange={(e) => setToken(e.target.value)}
              autoFocus
            />
          </Field>
          <Button type="submit" variant="primary" loading={busy} className="btn-block">
            Sign in
          </Button>
        </form>
      </main>
    </div>
  );
}
