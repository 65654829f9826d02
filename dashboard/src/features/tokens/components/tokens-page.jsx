/*
 * API tokens: who may sign in to the dashboard and call the admin API, with
 * which role. Lists them (never a secret), creates one (its secret shown
 * once) and revokes one after confirming. Admin only: another role sees a
 * calm note instead.
 */
import { useState } from 'react';
import { useQuery } from '../../../hooks/use-query.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Card } from '../../../components/card.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Badge } from '../../../components/badge.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { ConfirmDialog } from '../../../components/dialog.jsx';
import { RoleNotice } from '../../../components/role-notice.jsx';
import { useToast } from '../../../components/toast.jsx';
import { formatDateTime, formatRelative } from '../../../utils/format.js';
import { ROLES, isRoleRefusal, roleInfo } from '../../../utils/roles.js';
import { listTokens, revokeToken } from '../api/tokens.js';
import { CreateTokenDialog } from './create-token-dialog.jsx';
import { useConfirmedAction } from '../../../hooks/use-confirmed-action.js';
import { IconButton } from '../../../components/icon-button.jsx';
import { TableHead } from '../../../components/table-head.jsx';

function Expiry({ token }) {
  if (token.expired) return <Badge tone="red">Expired</Badge>;
  if (!token.expires_at) return <span className="muted">Never</span>;
  return <span title={formatDateTime(token.expires_at)}>{formatRelative(token.expires_at)}</span>;
}

function RolesCard() {
  return (
    <Card title="Roles" subtitle="What a token may do on the admin API and in this dashboard.">
      <dl className="roles-list">
        {ROLES.map((r) => (
          <div key={r.id}>
            <dt>
              <Badge tone={r.tone}>{r.label}</Badge>
            </dt>
            <dd>{r.text}</dd>
          </div>
        ))}
      </dl>
      <p className="muted small roles-note">
        The token set with <code>RATEKIT_ADMIN_TOKEN</code> is an admin token too. It is set where ratekitd runs and is not listed here.
      </p>
    </Card>
  );
}

export function TokensPage() {
  useDocumentTitle('API tokens');
  const toast = useToast();
  const tokens = useQuery(listTokens, []);
  const [creating, setCreating] = useState(false);
  const rows = (tokens.data && tokens.data.tokens) || [];
  const refused = isRoleRefusal(tokens.error);

  const revocation = useConfirmedAction({
    perform: (t) => revokeToken(t.id),
    done: (t) => {
      toast(`Revoked ${t.name}`);
      tokens.reload();
    },
    action: 'revoke API tokens',
    failure: (t) => `Could not revoke ${t.name}`,
  });
  const toRevoke = revocation.item;

  return (
    <>
      <PageHeader
        title="API tokens"
        description="Tokens sign in to this dashboard and call the admin API. Each has a role."
        actions={
          !refused && (
            <Button variant="primary" icon="plus" onClick={() => setCreating(true)}>
              New token
            </Button>
          )
        }
      />
      {refused && <RoleNotice action="see or manage API tokens" needs="admin" />}
      {tokens.error && !refused && <Alert error={tokens.error} title="Cannot load the tokens" onRetry={tokens.reload} />}
      {!refused && (
        <div className="card">
          {tokens.loading && !tokens.data && <Spinner label="Loading the tokens" />}
          {tokens.data && rows.length === 0 && (
            <EmptyState
              icon="key"
              title="No API tokens yet"
              action={
                <Button variant="primary" icon="plus" onClick={() => setCreating(true)}>
                  New token
                </Button>
              }
            >
              Give each person or system its own token, with the least role it needs, so it can be revoked alone.
            </EmptyState>
          )}
          {rows.length > 0 && (
            <div className="table-wrap">
              <table className="table stack-table tokens-table">
                <TableHead columns={['Name', 'Role', 'Last used', 'Expires', { label: 'Created', className: 'hide-sm' }]} actions />
                <tbody>
                  {rows.map((t) => {
                    const role = roleInfo(t.role);
                    return (
                      <tr key={t.id} data-token={t.name}>
                        <td>
                          <div className="token-name">{t.name}</div>
                          <div className="cell-sub mono">{t.id}</div>
                        </td>
                        <td data-label="Role" className="stack-full">
                          <Badge tone={role.tone}>{role.label}</Badge>
                        </td>
                        <td className="nowrap stack-full" data-label="Last used" title={t.last_used_at ? formatDateTime(t.last_used_at) : undefined}>
                          {t.last_used_at ? formatRelative(t.last_used_at) : <span className="muted">Never</span>}
                        </td>
                        <td className="nowrap stack-full" data-label="Expires">
                          <Expiry token={t} />
                        </td>
                        <td className="hide-sm">
                          <div className="nowrap">{formatDateTime(t.created_at)}</div>
                          {t.created_by && <div className="cell-sub">by {t.created_by}</div>}
                        </td>
                        <td className="col-actions">
                          <IconButton icon="trash" danger label={`Revoke ${t.name}`} title="Revoke" onClick={() => revocation.ask(t)} />
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
      <RolesCard />
      <CreateTokenDialog
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={() => tokens.reload()}
      />
      <ConfirmDialog open={!!toRevoke} title="Revoke this token?" confirmLabel="Revoke token" busy={revocation.busy} onConfirm={revocation.run} onClose={revocation.cancel}>
        {toRevoke && (
          <p>
            Anything that uses <strong>{toRevoke.name}</strong> is refused from now on, on every instance. This cannot be undone.
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}
