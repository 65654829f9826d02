import { useMemo, useState } from 'react';
import { Link, useNavigate, useSearchParams } from '../../../lib/router.jsx';
import { saveBlob } from '../../../lib/api-client.js';
import { useQuery } from '../../../hooks/use-query.js';
import { useEventStream } from '../../../hooks/use-event-stream.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { ConfirmDialog } from '../../../components/dialog.jsx';
import { Icon } from '../../../components/icon.jsx';
import { useToast } from '../../../components/toast.jsx';
import { formatDuration, formatNumber } from '../../../utils/format.js';
import { deleteRule, exportRules, listRules, patchRule } from '../api/rules.js';
import { algorithmName } from '../../../utils/algorithm-names.js';
import { matchSummary } from '../../../utils/match-summary.js';
import { ModeSwitch } from './mode-switch.jsx';
import { HistoryDialog } from './history-dialog.jsx';
import { ImportDialog } from './import-dialog.jsx';
import { RoleNotice } from '../../../components/role-notice.jsx';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { VIEWER_TITLE, failureToast } from '../../../utils/roles.js';
import { useConfirmedAction } from '../../../hooks/use-confirmed-action.js';
import { IconButton } from '../../../components/icon-button.jsx';
import { TableHead } from '../../../components/table-head.jsx';

export function RulesPage() {
  useDocumentTitle('Rules');
  const toast = useToast();
  const navigate = useNavigate();
  const params = useSearchParams();
  const rules = useQuery(listRules, []);
  const [search, setSearch] = useState('');
  const [pendingMode, setPendingMode] = useState({});
  const [importing, setImporting] = useState(false);
  const [exporting, setExporting] = useState(false);
  const historyOf = params.get('history');
  const canEdit = useCanEdit();

  // Another admin's change shows up here without a reload.
  useEventStream({ rule: () => rules.reload() });

  const list = useMemo(() => {
    const all = (rules.data && rules.data.rules) || [];
    const q = search.trim().toLowerCase();
    const shown = q
      ? all.filter((r) => [r.id, r.description, r.algorithm, r.mode, (r.match && r.match.path) || '', ...(r.key || [])].join(' ').toLowerCase().includes(q))
      : all;
    return [...shown].sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0) || a.id.localeCompare(b.id));
  }, [rules.data, search]);

  const setMode = async (rule, mode) => {
    setPendingMode((p) => ({ ...p, [rule.id]: mode }));
    try {
      await patchRule(rule.id, { mode });
      toast(`${rule.id} is now ${mode === 'off' ? 'off' : mode === 'shadow' ? 'in shadow mode' : 'enforcing'}`);
      await rules.reload();
    } catch (err) {
      failureToast(toast, err, 'change rules', `Could not change ${rule.id}`);
    } finally {
      setPendingMode((p) => {
        const next = { ...p };
        delete next[rule.id];
        return next;
      });
    }
  };

  const deletion = useConfirmedAction({
    perform: (rule) => deleteRule(rule.id),
    done: (rule) => {
      toast(`Rule ${rule.id} deleted`);
      rules.reload();
    },
    action: 'delete rules',
    failure: (rule) => `Could not delete ${rule.id}`,
  });
  const toDelete = deletion.item;

  const doExport = async () => {
    setExporting(true);
    try {
      const doc = await exportRules();
      const day = new Date().toISOString().slice(0, 10);
      saveBlob(new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' }), `ratekit-rules-${day}.json`);
    } catch (err) {
      toast(`Export failed: ${err.message}`, 'error');
    } finally {
      setExporting(false);
    }
  };

  const total = rules.data && rules.data.rules ? rules.data.rules.length : 0;
  const openHistory = (id) => navigate(`/rules?history=${encodeURIComponent(id)}`, { replace: true });
  const closeHistory = () => navigate('/rules', { replace: true });

  return (
    <>
      <PageHeader
        title="Rules"
        description={
          rules.data ? `${formatNumber(total)} rule${total === 1 ? '' : 's'} · ruleset version ${formatNumber(rules.data.version)}` : 'Which requests are limited, and how.'
        }
        actions={
          <>
            <Button icon="upload" onClick={() => setImporting(true)} disabled={!canEdit} title={canEdit ? undefined : VIEWER_TITLE}>
              Import
            </Button>
            <Button icon="download" onClick={doExport} loading={exporting}>
              Export
            </Button>
            {canEdit ? (
              <Link to="/rules/new" className="btn btn-primary">
                <Icon name="plus" size={17} />
                New rule
              </Link>
            ) : (
              <Button variant="primary" icon="plus" disabled title={VIEWER_TITLE}>
                New rule
              </Button>
            )}
          </>
        }
      />

      {!canEdit && <RoleNotice action="change rules" />}
      {rules.error && <Alert error={rules.error} title="Cannot load the rules" onRetry={rules.reload} />}
      {rules.loading && !rules.data && <Spinner label="Loading rules" />}

      {rules.data && total === 0 && (
        <EmptyState
          icon="rules"
          title="No rules yet"
          action={
            canEdit && (
              <Link to="/rules/new" className="btn btn-primary">
                <Icon name="plus" size={17} />
                Create your first rule
              </Link>
            )
          }
        >
          Until there is a rule, every request is allowed. Start with a per-IP limit on your API, or import an exported ruleset.
        </EmptyState>
      )}

      {rules.data && total > 0 && (
        <div className="card">
          <div className="toolbar">
            <div className="search">
              <Icon name="search" size={16} />
              <label htmlFor="rule-search" className="sr-only">
                Search rules
              </label>
              <input id="rule-search" type="search" placeholder="Search by ID, path, key, mode…" value={search} onChange={(e) => setSearch(e.target.value)} />
            </div>
            <span className="muted small">{list.length === total ? `${total} shown` : `${list.length} of ${total} shown`}</span>
          </div>
          {list.length === 0 ? (
            <EmptyState icon="search" title="No rule matches">
              Nothing matches “{search}”. Try another word.
            </EmptyState>
          ) : (
            <div className="table-wrap">
              <table className="table rules-table stack-table">
                <TableHead columns={['Rule', { label: 'Covers', className: 'hide-sm' }, 'Limit', { label: 'Key', className: 'hide-md' }, 'Mode']} actions />
                <tbody>
                  {list.map((rule) => {
                    const mode = pendingMode[rule.id] || rule.mode;
                    return (
                      <tr key={rule.id} data-rule={rule.id}>
                        <td>
                          <Link to={`/rules/${encodeURIComponent(rule.id)}`} className="rule-link">
                            {rule.id}
                          </Link>
                          {rule.description && <div className="cell-sub">{rule.description}</div>}
                        </td>
                        <td className="hide-sm">
                          <code className="code-soft">{matchSummary(rule.match)}</code>
                        </td>
                        <td className="nowrap stack-full">
                          <strong>{formatNumber(rule.limit)}</strong>
                          <span className="muted"> / {formatDuration(rule.window_ms)}</span>
                          <div className="cell-sub">{algorithmName(rule.algorithm)}</div>
                        </td>
                        <td className="hide-md">
                          <span className="key-inline">{(rule.key || []).join(' → ')}</span>
                        </td>
                        <td className="stack-full">
                          <ModeSwitch ruleId={rule.id} mode={mode} busy={!!pendingMode[rule.id]} disabled={!canEdit} onChange={(m) => setMode(rule, m)} />
                        </td>
                        <td className="col-actions">
                          <div className="row-actions">
                            {canEdit ? (
                              <Link to={`/rules/${encodeURIComponent(rule.id)}/edit`} className="icon-btn" aria-label={`Edit ${rule.id}`} title="Edit">
                                <Icon name="edit" size={17} />
                              </Link>
                            ) : (
                              <button type="button" className="icon-btn" aria-label={`Edit ${rule.id}`} title={VIEWER_TITLE} disabled>
                                <Icon name="edit" size={17} />
                              </button>
                            )}
                            <IconButton icon="history" label={`History of ${rule.id}`} title="History" onClick={() => openHistory(rule.id)} />
                            <IconButton icon="trash" danger label={`Delete ${rule.id}`} title="Delete" canEdit={canEdit} onClick={() => deletion.ask(rule)} />
                          </div>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}

      <ConfirmDialog open={!!toDelete} title="Delete this rule?" confirmLabel="Delete rule" busy={deletion.busy} onConfirm={deletion.run} onClose={deletion.cancel}>
        {toDelete && (
          <p>
            <strong>{toDelete.id}</strong> stops limiting requests on every instance within a second. Its counters are left to expire.
          </p>
        )}
      </ConfirmDialog>

      {historyOf && (
        <HistoryDialog
          ruleId={historyOf}
          currentVersion={((rules.data && rules.data.rules) || []).find((r) => r.id === historyOf)?.version}
          onClose={closeHistory}
          onRestored={() => rules.reload()}
        />
      )}

      {importing && (
        <ImportDialog
          onClose={() => setImporting(false)}
          onImported={(r) => {
            setImporting(false);
            const o = r.overrides;
            const overrides = o ? `; overrides: ${o.created} created, ${o.updated} updated, ${o.deleted} deleted` : '';
            toast(`Imported: ${r.created ?? 0} created, ${r.updated ?? 0} updated, ${r.deleted ?? 0} deleted${overrides}`);
            rules.reload();
          }}
        />
      )}
    </>
  );
}
