/*
 * The Bans tab: live bans (value, reason, when each lifts by itself, who
 * added it), a form to ban a client for a while, and Lift after confirming.
 * A viewer's token sees the bans only.
 */
import { EmptyState } from '../../../components/empty-state.jsx';
import { ConfirmDialog } from '../../../components/dialog.jsx';
import { Button } from '../../../components/button.jsx';
import { useToast } from '../../../components/toast.jsx';
import { formatDateTime, formatRelative } from '../../../utils/format.js';
import { VIEWER_TITLE } from '../../../utils/roles.js';
import { liftBan } from '../api/lists.js';
import { BanForm } from './ban-form.jsx';
import { EntriesPanel } from './entries-panel.jsx';
import { useConfirmedAction } from '../../../hooks/use-confirmed-action.js';
import { TableHead } from '../../../components/table-head.jsx';

/* bans: the useQuery of GET /api/v1/bans. */
export function BansPanel({ bans, canEdit }) {
  const toast = useToast();
  const rows = (bans.data && bans.data.bans) || [];

  const lifting = useConfirmedAction({
    perform: (b) => liftBan(b.id),
    done: (b) => {
      toast(`Lifted the ban on ${b.value}`);
      bans.reload();
    },
    action: 'lift bans',
    failure: () => 'Could not lift it',
  });
  const toLift = lifting.item;

  return (
    <>
      <EntriesPanel
        text="Banned clients are refused with 403 until the ban ends, then let in again by themselves. Bans are kept apart from the denylist."
        form={
          canEdit ? (
            <BanForm
              onBanned={(b) => {
                toast(`Banned ${b && b.value ? b.value : 'the client'}`);
                bans.reload();
              }}
            />
          ) : null
        }
        roleAction="ban clients or lift bans"
        query={bans}
        loadError="Cannot load the bans"
        loadingLabel="Loading the bans"
        count={rows.length}
        empty={
          <EmptyState icon="shield" title="No one is banned">
            Ban a client for a while to stop an attack without a lasting denylist entry.
          </EmptyState>
        }
      >
      <table className="table stack-table bans-table">
        <TableHead columns={['Value', 'Reason', 'Ends', 'Added by']} actions />
        <tbody>
          {rows.map((b) => (
            <tr key={b.id} data-ban={b.value}>
              <td>
                <code className="code-soft break">{b.value}</code>
              </td>
              <td className="stack-full cell-wrap" data-label="Reason">
                {b.note || <span className="muted">—</span>}
              </td>
              <td className="nowrap stack-full" data-label="Ends" title={formatDateTime(b.expires_at)}>
                {formatRelative(b.expires_at)}
              </td>
              <td className="stack-full" data-label="Added by">
                {b.created_by || 'unknown'}
                <div className="cell-sub nowrap">{formatDateTime(b.created_at)}</div>
              </td>
              <td className="col-actions">
                <Button size="sm" onClick={() => lifting.ask(b)} disabled={!canEdit} title={canEdit ? undefined : VIEWER_TITLE} aria-label={`Lift the ban on ${b.value}`}>
                  Lift
                </Button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      </EntriesPanel>
      <ConfirmDialog open={!!toLift} title="Lift this ban?" confirmLabel="Lift ban" tone="primary" busy={lifting.busy} onConfirm={lifting.run} onClose={lifting.cancel}>
        {toLift && (
          <p>
            <code className="code-soft break">{toLift.value}</code> may send requests again at once, on every instance.
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}
