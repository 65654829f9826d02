/*
 * A rule's versions, newest first; the diff of the chosen one; restore after
 * confirming. A version whose rule is the one in force offers no restore.
 */
import { useEffect, useState } from 'react';
import { Dialog } from '../../../components/dialog.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { Badge } from '../../../components/badge.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { useQuery } from '../../../hooks/use-query.js';
import { useToast } from '../../../components/toast.jsx';
import { formatDateTime, formatRelative, capitalize } from '../../../utils/format.js';
import { getHistory, restoreVersion } from '../api/rules.js';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { VIEWER_TITLE } from '../../../utils/roles.js';
import { JsonDiff, changedFields } from './json-diff.jsx';

const ACTION_TONE = { create: 'green', update: 'blue', delete: 'red', restore: 'amber', import: 'blue' };

export function HistoryDialog({ ruleId, currentVersion, onClose, onRestored }) {
  const toast = useToast();
  const history = useQuery(() => getHistory(ruleId), [ruleId]);
  const entries = (history.data && history.data.history) || [];
  const [selected, setSelected] = useState(null);
  const [confirming, setConfirming] = useState(false);
  const [restoring, setRestoring] = useState(false);
  const [failure, setFailure] = useState(null);
  const canEdit = useCanEdit();

  useEffect(() => {
    if (entries.length && (selected === null || !entries.some((e) => e.version === selected))) setSelected(entries[0].version);
  }, [entries, selected]);

  const entry = entries.find((e) => e.version === selected);
  const latest = entries.length ? entries[0].version : currentVersion;
  const inForce = entries.length ? entries[0].after : null;
  const restorable = entry && entry.after && !(inForce && changedFields(entry.after, inForce).length === 0);

  const select = (version) => {
    setSelected(version);
    setConfirming(false);
    setFailure(null);
  };

  const restore = async () => {
    setRestoring(true);
    setFailure(null);
    try {
      await restoreVersion(ruleId, entry.version);
      toast(`Restored ${ruleId} to version ${entry.version}`);
      onRestored();
      setConfirming(false);
      // The restore is a new version, now current: show it.
      await history.reload();
      setSelected(null);
    } catch (err) {
      setFailure(err);
    } finally {
      setRestoring(false);
    }
  };

  return (
    <Dialog open title={`History of ${ruleId}`} onClose={onClose} size="lg">
      {history.loading && !history.data && <Spinner label="Loading history" />}
      {history.error && <Alert error={history.error} title="Cannot load the history" onRetry={history.reload} />}
      {history.data && entries.length === 0 && <EmptyState icon="history" title="No history yet">Changes to this rule will be listed here.</EmptyState>}
      {entries.length > 0 && (
        <div className="history">
          <ol className="history-list" aria-label="Versions">
            {entries.map((e) => {
              const changes = changedFields(e.before, e.after);
              return (
                <li key={`${e.version}-${e.at}`}>
                  <button type="button" className={`history-item ${e.version === selected ? 'selected' : ''}`} aria-pressed={e.version === selected} onClick={() => select(e.version)}>
                    <span className="history-top">
                      <strong>v{e.version}</strong>
                      <Badge tone={ACTION_TONE[e.action] || 'gray'}>{capitalize(e.action)}</Badge>
                      {e.version === latest && <span className="muted small">current</span>}
                    </span>
                    <span className="history-meta" title={formatDateTime(e.at)}>
                      {e.actor || 'unknown'} · {formatRelative(e.at)}
                    </span>
                    {changes.length > 0 && e.action !== 'create' && <span className="history-changes">{changes.join(', ')}</span>}
                  </button>
                </li>
              );
            })}
          </ol>
          <div className="history-detail">
            {entry && (
              <>
                <div className="history-detail-head">
                  <div>
                    <strong>Version {entry.version}</strong>
                    <span className="muted"> · {formatDateTime(entry.at)}</span>
                  </div>
                  {restorable && !confirming && (
                    <Button variant="primary" size="sm" icon="history" disabled={!canEdit} title={canEdit ? undefined : VIEWER_TITLE} onClick={() => setConfirming(true)}>
                      Restore version {entry.version}
                    </Button>
                  )}
                  {entry.after && !restorable && <span className="muted small">The rule in force</span>}
                </div>
                {confirming && (
                  <div className="restore-confirm" role="group" aria-label="Confirm the restore">
                    <p>
                      Restore version {entry.version}? It becomes the rule in force on every instance within a second, as a new version.
                    </p>
                    <div className="restore-confirm-actions">
                      <Button size="sm" onClick={() => setConfirming(false)}>
                        Cancel
                      </Button>
                      <Button variant="primary" size="sm" loading={restoring} onClick={restore}>
                        Yes, restore
                      </Button>
                    </div>
                  </div>
                )}
                {failure && <Alert error={failure} title="Not restored" action="restore rule versions" />}
                <JsonDiff before={entry.before} after={entry.after} />
              </>
            )}
          </div>
        </div>
      )}
    </Dialog>
  );
}
