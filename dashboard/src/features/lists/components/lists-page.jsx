import { useState } from 'react';
import { useQuery } from '../../../hooks/use-query.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { ConfirmDialog } from '../../../components/dialog.jsx';
import { useToast } from '../../../components/toast.jsx';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { listBans, listEntries, removeEntry } from '../api/lists.js';
import { ListPanel } from './list-panel.jsx';
import { BansPanel } from './bans-panel.jsx';
import { useConfirmedAction } from '../../../hooks/use-confirmed-action.js';

// The event stream says nothing of lists: entries another client adds or removes show within this.
const POLL_MS = 5000;

const TABS = [
  { id: 'safelist', label: 'Safelist', text: 'Safelisted clients skip every rule.' },
  { id: 'denylist', label: 'Denylist', text: 'Denylisted clients are refused with 403 before any rule runs.' },
  { id: 'bans', label: 'Bans' },
];

export function ListsPage() {
  useDocumentTitle('Allow & deny lists');
  const toast = useToast();
  const entries = useQuery(listEntries, [], { pollMs: POLL_MS });
  const bans = useQuery(listBans, [], { pollMs: POLL_MS });
  const canEdit = useCanEdit();
  const [tab, setTab] = useState('safelist');
  const all = (entries.data && entries.data.entries) || [];
  const shown = all.filter((e) => e.list === tab);
  const current = TABS.find((t) => t.id === tab);
  const countOf = (id) => (id === 'bans' ? ((bans.data && bans.data.bans) || []).length : all.filter((e) => e.list === id).length);

  const removal = useConfirmedAction({
    perform: (e) => removeEntry(e.id),
    done: (e) => {
      toast(`Removed ${e.value} from the ${e.list}`);
      entries.reload();
    },
    action: 'change the allow and deny lists',
    failure: () => 'Could not remove it',
  });
  const toRemove = removal.item;

  const onKey = (event) => {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const step = event.key === 'ArrowRight' ? 1 : TABS.length - 1;
    const next = TABS[(TABS.findIndex((t) => t.id === tab) + step) % TABS.length].id;
    setTab(next);
    document.getElementById(`tab-${next}`)?.focus();
  };

  return (
    <>
      <PageHeader title="Allow & deny lists" description="Clients by IP, CIDR range or key, with an optional expiry; bans for a while." />
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
              <span className="tab-count">{countOf(t.id)}</span>
            </button>
          ))}
        </div>
        <div id="list-panel" role="tabpanel" aria-labelledby={`tab-${tab}`}>
          {tab === 'bans' ? (
            <BansPanel bans={bans} canEdit={canEdit} />
          ) : (
            <ListPanel
              list={tab}
              text={current.text}
              entries={entries}
              shown={shown}
              canEdit={canEdit}
              onAdded={(e) => {
                toast(`Added ${e && e.value ? e.value : 'the entry'} to the ${tab}`);
                entries.reload();
              }}
              onRemove={removal.ask}
            />
          )}
        </div>
      </div>
      <ConfirmDialog open={!!toRemove} title="Remove this entry?" confirmLabel="Remove" busy={removal.busy} onConfirm={removal.run} onClose={removal.cancel}>
        {toRemove && (
          <p>
            <code className="code-soft break">{toRemove.value}</code> leaves the {toRemove.list}
            {toRemove.list === 'safelist' ? ' and is limited by the rules again.' : ' and may send requests again.'}
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}
