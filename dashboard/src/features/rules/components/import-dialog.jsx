/*
 * Replace the ruleset from an exported JSON document (GitOps round trip), in
 * two steps: a dry run first says what the import will do, naming the rules
 * it deletes; the import runs only from there, behind a button that says
 * what it deletes.
 */
import { useState } from 'react';
import { Dialog } from '../../../components/dialog.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Field } from '../../../components/field.jsx';
import { pluralize } from '../../../utils/format.js';
import { importRules, listRules } from '../api/rules.js';
import { ImportPreview, deletionsOf } from './import-preview.jsx';

/* The dry run's counts, with the ids of the stored rules the document leaves out (those it deletes). */
async function previewOf(document) {
  const [counts, stored] = await Promise.all([importRules(document, { dryRun: true }), listRules()]);
  const kept = new Set(document.rules.map((r) => r && r.id));
  const deletedIds = ((stored && stored.rules) || []).map((r) => r.id).filter((id) => !kept.has(id));
  return { created: counts.created || 0, updated: counts.updated || 0, deleted: counts.deleted || 0, deletedIds, overrides: counts.overrides };
}

export function ImportDialog({ onClose, onImported }) {
  const [text, setText] = useState('');
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  // What the import will do, for the text as it is: any edit asks again.
  const [preview, setPreview] = useState(null);

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
  const ready = parsed && !parseError;

  const changeText = (value) => {
    setText(value);
    setPreview(null);
    setFailure(null);
  };

  const readFile = async (file) => {
    if (!file) return;
    changeText(await file.text());
  };

  const run = async (step) => {
    setBusy(true);
    setFailure(null);
    try {
      if (step === 'review') setPreview(await previewOf(parsed));
      else onImported(await importRules(parsed));
    } catch (err) {
      setFailure(err);
      setPreview(null);
    } finally {
      setBusy(false);
    }
  };

  const count = ready ? parsed.rules.length : 0;
  let action;
  if (!preview) {
    action = (
      <Button variant="primary" disabled={!ready} loading={busy} onClick={() => run('review')}>
        {ready ? `Review the import of ${pluralize(count, 'rule')}` : 'Review the import'}
      </Button>
    );
  } else {
    const deletions = deletionsOf(preview);
    action = (
      <Button variant={deletions ? 'danger' : 'primary'} loading={busy} onClick={() => run('import')}>
        {deletions ? `Import and delete ${deletions}` : `Import ${pluralize(count, 'rule')}`}
      </Button>
    );
  }

  return (
    <Dialog
      open
      title="Import rules"
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          {action}
        </>
      }
    >
      <p className="muted">
        The document becomes the ruleset: rules in it are created or updated, and rules missing from it are deleted. Every change is kept in each rule's history. A document with overrides, as an export has, sets the overrides too; without, they stay as they are.
      </p>
      <Field label="Export file" optional>
        <input type="file" accept="application/json,.json" onChange={(e) => readFile(e.target.files[0])} />
      </Field>
      <Field label="Or paste the JSON document" error={parseError}>
        <textarea rows={10} value={text} onChange={(e) => changeText(e.target.value)} spellCheck="false" className="mono" placeholder='{"rules": [ ... ]}' />
      </Field>
      {preview && <ImportPreview preview={preview} />}
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
