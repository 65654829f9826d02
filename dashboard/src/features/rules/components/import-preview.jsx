/*
 * What an import will do, from its dry run: how many rules it creates,
 * updates and deletes, and, when it deletes, which (the rules stored now
 * that the document leaves out), so that nothing is deleted unseen.
 */
import { useEffect, useRef } from 'react';
import { Alert } from '../../../components/alert.jsx';
import { formatNumber, pluralize } from '../../../utils/format.js';

const SHOWN_IDS = 8;

export function ImportPreview({ preview }) {
  const box = useRef(null);
  // Shown under the document: brought into view, beside the button it changed.
  useEffect(() => {
    box.current?.scrollIntoView({ block: 'nearest' });
  }, [preview]);
  const { created, updated, deleted, deletedIds } = preview;
  const summary = `It creates ${pluralize(created, 'rule')}, updates ${formatNumber(updated)} and deletes ${formatNumber(deleted)}.`;
  if (!deleted) {
    return (
      <div ref={box} data-testid="import-preview">
        <Alert tone="info" title="Ready to import">
          {summary}
        </Alert>
      </div>
    );
  }
  const shown = deletedIds.slice(0, SHOWN_IDS);
  const more = deleted - shown.length;
  return (
    <div ref={box} data-testid="import-preview">
      <Alert tone="warning" title={`This import deletes ${pluralize(deleted, 'rule')}`}>
        <span>{summary} Rules missing from the document are deleted on every instance within a second:</span>
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
        <span>Each stays in its history and can be restored from there.</span>
      </Alert>
    </div>
  );
}
