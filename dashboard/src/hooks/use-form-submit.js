/*
 * A form's state around one request: the errors shown under its fields,
 * a failure shown whole, and busy while it runs. send(call) runs call():
 * a 400 that names fields puts their messages under them (rename: a server
 * field -> the form's, as fieldErrors), any other failure is shown whole.
 * Resolves to {ok: true, value} or {ok: false}.
 */
import { useState } from 'react';
import { fieldErrors } from '../lib/api-client.js';

export function useFormSubmit(rename) {
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);

  const send = async (call) => {
    setBusy(true);
    setFailure(null);
    try {
      return { ok: true, value: await call() };
    } catch (err) {
      const byField = fieldErrors(err, rename);
      if (byField) setErrors(byField);
      else setFailure(err);
      return { ok: false };
    } finally {
      setBusy(false);
    }
  };

  return { errors, setErrors, failure, setFailure, busy, send };
}
