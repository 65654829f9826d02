/* The Safelist or Denylist tab: a form to add an entry, and the entries with a Remove button each. */
import { EmptyState } from '../../../components/empty-state.jsx';
import { IconButton } from '../../../components/icon-button.jsx';
import { formatDateTime, formatRelative } from '../../../utils/format.js';
import { AddEntryForm } from './add-entry-form.jsx';
import { EntriesPanel } from './entries-panel.jsx';
import { TableHead } from '../../../components/table-head.jsx';

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
        <TableHead columns={['Value', 'Note', 'Expires', { label: 'Added', className: 'hide-sm' }]} actions />
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
                <IconButton icon="trash" danger label={`Remove ${e.value}`} title="Remove" canEdit={canEdit} onClick={() => onRemove(e)} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </EntriesPanel>
  );
}
