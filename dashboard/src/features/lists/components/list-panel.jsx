/* The Safelist or Denylist tab: a form to add an entry, and the entries with a Remove button each. */
import { EmptyState } from '../../../components/empty-state.jsx';
import { Icon } from '../../../components/icon.jsx';
import { formatDateTime, formatRelative } from '../../../utils/format.js';
import { VIEWER_TITLE } from '../../../utils/roles.js';
import { AddEntryForm } from './add-entry-form.jsx';
import { EntriesPanel } from './entries-panel.jsx';

/* entries: the useQuery of the lists; shown: its entries of this list. A viewer's token sees them only. */
export function ListPanel({ list, text, entries, shown, canEdit, onAdded, onRemove }) {
  return (
    <EntriesPanel
      text={text}
      form={canEdit ? <AddEntryForm key={list} list={list} onAdded={onAdded} /> : null}
      roleAction="change the allow and deny lists"
      query={entries}
      loadError="Cannot load the lists"
      count={shown.length}
      empty={
        <EmptyState icon="lists" title={`The ${list} is empty`}>
          {list === 'safelist' ? 'Add your own networks or trusted partners so they are never limited.' : 'Add a client here to refuse all of its requests.'}
        </EmptyState>
      }
    >
      <table className="table stack-table">
        <thead>
          <tr>
            <th scope="col">Value</th>
            <th scope="col">Note</th>
            <th scope="col">Expires</th>
            <th scope="col" className="hide-sm">
              Added
            </th>
            <th scope="col" className="col-actions">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {shown.map((e) => (
            <tr key={e.id} data-entry={e.value}>
              <td>
                {/* Values run to 200 characters: they wrap instead of pushing the other columns out. */}
                <code className="code-soft break">{e.value}</code>
              </td>
              <td className="stack-full cell-wrap" data-label="Note">
                {e.note || <span className="muted">—</span>}
              </td>
              <td className="nowrap stack-full" data-label="Expires" title={e.expires_at ? formatDateTime(e.expires_at) : undefined}>
                {e.expires_at ? formatRelative(e.expires_at) : <span className="muted">Never</span>}
              </td>
              <td className="nowrap hide-sm">{formatDateTime(e.created_at)}</td>
              <td className="col-actions">
                <button
                  type="button"
                  className="icon-btn icon-btn-danger"
                  aria-label={`Remove ${e.value}`}
                  title={canEdit ? 'Remove' : VIEWER_TITLE}
                  disabled={!canEdit}
                  onClick={() => onRemove(e)}
                >
                  <Icon name="trash" size={17} />
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </EntriesPanel>
  );
}
