/*
 * What the Safelist, Denylist and Bans tabs share: their intro, the form to
 * add (for a viewer's token, why there is none), then the state of the rows:
 * the load's error, a spinner, the empty state, or the table (children).
 */
import { Alert } from '../../../components/alert.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { RoleNotice } from '../../../components/role-notice.jsx';

/* query: the useQuery of the rows; count: how many this tab shows. */
export function EntriesPanel({ text, form, roleAction, query, loadError, loadingLabel, count, empty, children }) {
  return (
    <>
      <div className="card-pad">
        <p className="muted">{text}</p>
        {form || (
          <div className="entry-form">
            <RoleNotice action={roleAction} />
          </div>
        )}
      </div>
      {query.error && (
        <div className="card-pad">
          <Alert error={query.error} title={loadError} onRetry={query.reload} />
        </div>
      )}
      {query.loading && !query.data && <Spinner label={loadingLabel} />}
      {query.data && count === 0 && empty}
      {count > 0 && <div className="table-wrap">{children}</div>}
    </>
  );
}
