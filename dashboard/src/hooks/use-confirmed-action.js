/*
 * An action on one row that runs once a dialog confirms it (remove, lift,
 * revoke, delete). item is the row waiting for confirmation (null: none);
 * ask(row) opens the dialog and cancel() closes it; run() performs it,
 * then calls done(row) (a toast, a reload) and closes the dialog, or
 * toasts the failure (failure(row): its prefix) and leaves it open.
 */
import { useState } from 'react';
import { useToast } from '../components/toast.jsx';
import { failureToast } from '../utils/roles.js';

export function useConfirmedAction({ perform, done, action, failure }) {
  const toast = useToast();
  const [item, setItem] = useState(null);
  const [busy, setBusy] = useState(false);

  const run = async () => {
    setBusy(true);
    try {
      await perform(item);
      done(item);
      setItem(null);
    } catch (err) {
      failureToast(toast, err, action, failure(item));
    } finally {
      setBusy(false);
    }
  };

  return { item, busy, run, ask: setItem, cancel: () => setItem(null) };
}
