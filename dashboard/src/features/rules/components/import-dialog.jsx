/* Replace the ruleset from an exported JSON document (GitOps round trip). */
import { useState } from 'react';
import { Dialog } from '../../../components/dialog.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Field } from '../../../components/field.jsx';
import { importRules } from '../api/rules.js';

export function ImportDialog({ onClose, onImported }) {
  const [text, setText] = useState('');
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);

  let parsed = null;
  let parseError = null;
  if (text.trim()) {
    try {
      parsed = JSON.parse(text);
      if (!parsed || !Array.isArray(parsed.rules)) parseError = 'The document needs a "rules" array, as an export has.';
    } catch (e) {
      parseError = `Not valid JSON: ${e.message}`;
    }
  }

  const readFile = async (file) => {
    if (!file) return;
    setText(await file.text());
  };

  const submit = async () => {
    setBusy(true);
    setFailure(null);
    try {
      const result = await importRules(parsed);
      onImported(result);
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog
      open
      title="Import rules"
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" disabled={!parsed || !!parseError} loading={busy} onClick={submit}>
            {parsed && !parseError ? `Import ${parsed.rules.length} rule${parsed.rules.length === 1 ? '' : 's'}` : 'Import'}
          </Button>
        </>
      }
    >
      <p className="muted">
        The document becomes the ruleset: rules in it are created or updated, and rules missing from it are deleted. Every change is kept in each rule's history.
      </p>
      <Field label="Export file" optional>
        <input type="file" accept="application/json,.json" onChange={(e) => readFile(e.target.files[0])} />
      </Field>
      <Field label="Or paste the JSON document" error={parseError}>
        <textarea rows={10} value={text} onChange={(e) => setText(e.target.value)} spellCheck="false" className="mono" placeholder='{"rules": [ ... ]}' />
      </Field>
      {failure && (
        <Alert error={failure} title="Nothing was imported" action="import rules">
          {failure.errors && failure.errors.length > 0 && (
            <ul className="error-list">
              {failure.errors.map((e, i) => (
                <li key={i}>
                  <code>{e.field}</code> {e.message}
                </li>
              ))}
            </ul>
          )}
        </Alert>
      )}
    </Dialog>
  );
}
