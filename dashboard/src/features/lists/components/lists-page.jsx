import { useState } from 'react';
import { useQuery } from '../../../hooks/use-query.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { ConfirmDialog } from '../../../components/dialog.jsx';
import { Icon } from '../../../components/icon.jsx';
import { useToast } from '../../../components/toast.jsx';
import { formatDateTime, formatRelative } from '../../../utils/format.js';
import { listEntries, removeEntry } from '../api/lists.js';
import { AddEntryForm } from './add-entry-form.jsx';
import { failureToast } from '../../../utils/roles.js';

const TABS = [
  { id: 'safelist', label: 'Safelist', text: 'Safelisted clients skip every rule.' },
  { id: 'denylist', label: 'Denylist', text: 'Denylisted clients are refused with 403 before any rule runs.' },
];

export function ListsPage() {
  useDocumentTitle('Allow & deny lists');
  const toast = useToast();
  const entries = useQuery(listEntries, []);
  const [tab, setTab] = useState('safelist');
  const [toRemove, setToRemove] = useState(null);
  const [removing, setRemoving] = useState(false);
  const all = (entries.data && entries.data.entries) || [];
  const shown = all.filter((e) => e.list === tab);
  const current = TABS.find((t) => t.id === tab);

  const remove = async () => {
    setRemoving(true);
    try {
      await removeEntry(toRemove.id);
      toast(`Removed ${toRemove.value} from the ${toRemove.list}`);
      setToRemove(null);
      entries.reload();
    } catch (err) {
      failureToast(toast, err, 'change the allow and deny lists', 'Could not remove it');
    } finally {
      setRemoving(false);
    }
  };

  const onKey = (event) => {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const next = tab === 'safelist' ? 'denylist' : 'safelist';
    setTab(next);
    document.getElementById(`tab-${next}`)?.focus();
  };

  return (
    <>
      <PageHeader title="Allow & deny lists" description="Clients by IP, CIDR range or key, with an optional expiry." />
      <div className="card">
        <div className="tabs" role="tablist" aria-label="Lists">
          {TABS.map((t) => (
            <button
              key={t.id}
              id={`tab-${t.id}`}
              type="button"
              role="tab"
              aria-selected={tab === t.id}
              aria-controls="list-panel"
              tabIndex={tab === t.id ? 0 : -1}
              className={`tab ${tab === t.id ? 'active' : ''}`}
              onClick={() => setTab(t.id)}
              onKeyDown={onKey}
            >
              {t.label}
              <span className="tab-count">{all.filter((e) => e.list === t.id).length}</span>
            </button>
          ))}
        </div>
        <div id="list-panel" role="tabpanel" aria-labelledby={`tab-${tab}`}>
          <div className="card-pad">
            <p className="muted">{current.text}</p>
            <AddEntryForm
              key={tab}
              list={tab}
              onAdded={(e) => {
                toast(`Added ${e && e.value ? e.value : 'the entry'} to the ${tab}`);
                entries.reload();
              }}
            />
          </div>
          {entries.error && (
            <div className="card-pad">
              <Alert error={entries.error} title="Cannot load the lists" onRetry={entries.reload} />
            </div>
          )}
          {entries.loading && !entries.data && <Spinner />}
          {entries.data && shown.length === 0 && (
            <EmptyState icon="lists" title={`The ${tab} is empty`}>
              {tab === 'safelist' ? 'Add your own networks or trusted partners so they are never limited.' : 'Add a client here to refuse all of its requests.'}
            </EmptyState>
          )}
          {shown.length > 0 && (
            <div className="table-wrap">
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
                        <code className="code-soft">{e.value}</code>
                      </td>
                      <td className="stack-full" data-label="Note">{e.note || <span className="muted">—</span>}</td>
                      <td className="nowrap stack-full" data-label="Expires" title={e.expires_at ? formatDateTime(e.expires_at) : undefined}>
                        {e.expires_at ? formatRelative(e.expires_at) : <span className="muted">Never</span>}
                      </td>
                      <td className="nowrap hide-sm">{formatDateTime(e.created_at)}</td>
                      <td className="col-actions">
                        <button type="button" className="icon-btn icon-btn-danger" aria-label={`Remove ${e.value}`} title="Remove" onClick={() => setToRemove(e)}>
                          <Icon name="trash" size={17} />
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      </div>
      <ConfirmDialog open={!!toRemove} title="Remove this entry?" confirmLabel="Remove" busy={removing} onConfirm={remove} onClose={() => setToRemove(null)}>
        {toRemove && (
          <p>
            <code>{toRemove.value}</code> leaves the {toRemove.list}
            {toRemove.list === 'safelist' ? ' and is limited by the rules again.' : ' and may send requests again.'}
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}
