/*
 * What an import will do, from its dry run: how many rules it creates,
 * updates and deletes, and, when it deletes, which (the rules stored now
 * that the document leaves out), so that nothing is deleted unseen. A
 * document with overrides (as an export has) sets them too: their counts
 * come alongside.
 */
import { useEffect, useRef } from 'react';
import { Alert } from '../../../components/alert.jsx';
import { formatNumber, pluralize } from '../../../utils/format.js';

const SHOWN_IDS = 8;

/* What the import deletes, in words ("2 rules and 1 override"), or '' when nothing. */
export function deletionsOf(preview) {
  const parts = [];
  if (preview.deleted) parts.push(pluralize(preview.deleted, 'rule'));
  if (preview.overrides && preview.overrides.deleted) parts.push(pluralize(preview.overrides.deleted, 'override'));
  return parts.join(' and ');
}

function overridesSummary(o) {
  if (!o) return null;
  const expired = o.expired ? ` ${pluralize(o.expired, 'override')} of the document ${o.expired === 1 ? 'has' : 'have'} expired and ${o.expired === 1 ? 'is' : 'are'} left out.` : '';
  return `The overrides become the document's: it creates ${formatNumber(o.created)}, updates ${formatNumber(o.updated)} and deletes ${formatNumber(o.deleted)}.${expired}`;
}

export function ImportPreview({ preview }) {
  const box = useRef(null);
  // Shown under the document: brought into view, beside the button it changed.
  useEffect(() => {
    box.current?.scrollIntoView({ block: 'nearest' });
  }, [preview]);
  const { created, updated, deleted, deletedIds, overrides } = preview;
  const summary = `It creates ${pluralize(created, 'rule')}, updates ${formatNumber(updated)} and deletes ${formatNumber(deleted)}.`;
  const deletions = deletionsOf(preview);
  if (!deletions) {
    return (
      <div ref={box} data-testid="import-preview">
        <Alert tone="info" title="Ready to import">
          {summary} {overridesSummary(overrides)}
        </Alert>
      </div>
    );
  }
  const shown = deletedIds.slice(0, SHOWN_IDS);
  const more = deleted - shown.length;
  return (
    <div ref={box} data-testid="import-preview">
      <Alert tone="warning" title={`This import deletes ${deletions}`}>
        <span>
          {summary} {overridesSummary(overrides)}
          {deleted > 0 && ' Rules missing from the document are deleted on every instance within a second:'}
        </span>
        {shown.length > 0 && (
          <ul className="change-list" data-testid="import-deletes">
            {shown.map((id) => (
              <li key={id}>
                <code className="code-soft break">{id}</code>
              </li>
            ))}
          </ul>
        )}
        {more > 0 && <span>and {pluralize(more, 'other')}.</span>}
        {deleted > 0 && <span>Each stays in its history and can be restored from there.</span>}
      </Alert>
    </div>
  );
}
