import { useMemo } from 'react';
import { Link } from '../../../lib/router.jsx';
import { useTheme } from '../../../lib/theme.jsx';
import { useQuery } from '../../../hooks/use-query.js';
import { useLiveTraffic } from '../../../hooks/use-live-traffic.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Card } from '../../../components/card.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Badge } from '../../../components/badge.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { Icon } from '../../../components/icon.jsx';
import { Stat } from '../../../components/stat.jsx';
import { LiveIndicator } from '../../../components/live-indicator.jsx';
import { TrafficChart } from '../../../components/traffic-chart.jsx';
import { formatClock, formatDateTime, formatDuration, formatNumber, capitalize } from '../../../utils/format.js';
import { useServerState } from '../../../lib/server-state.jsx';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { Button } from '../../../components/button.jsx';
import { VIEWER_TITLE } from '../../../utils/roles.js';
import { algorithmName } from '../../../utils/algorithm-names.js';
import { matchSummary } from '../../../utils/match-summary.js';
import { getRule, listOverrides } from '../api/rule-detail.js';
import { TopKeys } from './top-keys.jsx';
import { TryIt } from './try-it.jsx';
import { Overrides } from './overrides.jsx';

const MODE_TONE = { enforce: 'green', shadow: 'amber', off: 'gray' };
export function RuleDetailPage({ ruleId }) {
  useDocumentTitle(ruleId);
  const { theme } = useTheme();
  const rule = useQuery(() => getRule(ruleId), [ruleId]);
  const overrides = useQuery(() => listOverrides(ruleId), [ruleId]);
  const ids = useMemo(() => [ruleId], [ruleId]);
  const onRuleChange = (e) => {
    if (!e || e.rule !== ruleId) return;
    rule.reload();
    overrides.reload();
  };
  const live = useLiveTraffic({ ruleIds: ids, totals: false, onRuleChange });
  const points = live.series(ruleId);
  const server = useServerState();
  const canEdit = useCanEdit();
  const notLive = server.state === 'unreachable' || live.status === 'offline';
  const sums = points.reduce((a, p) => ({ allowed: a.allowed + p.allowed, denied: a.denied + p.denied, shadow: a.shadow + p.shadow_denied }), { allowed: 0, denied: 0, shadow: 0 });
  const r = rule.data;

  const back = (
    <Link to="/rules" className="back-link">
      <Icon name="arrowLeft" size={15} />
      Rules
    </Link>
  );

  if (rule.error && !r) {
    return (
      <>
        <PageHeader back={back} title={ruleId} />
        <Alert error={rule.error} title={rule.error.status === 404 ? 'This rule does not exist' : 'Cannot load this rule'} onRetry={rule.error.status === 404 ? undefined : rule.reload} />
      </>
    );
  }

  return (
    <>
      <PageHeader
        back={back}
        title={
          <span className="title-with-badge">
            {ruleId}
            {r && <Badge tone={MODE_TONE[r.mode] || 'gray'}>{capitalize(r.mode)}</Badge>}
          </span>
        }
        description={r ? r.description || 'No description.' : ' '}
        actions={
          <>
            <LiveIndicator status={live.status} />
            <Link to={`/rules?history=${encodeURIComponent(ruleId)}`} className="btn btn-secondary">
              <Icon name="history" size={17} />
              History
            </Link>
            {canEdit ? (
              <Link to={`/rules/${encodeURIComponent(ruleId)}/edit`} className="btn btn-primary">
                <Icon name="edit" size={17} />
                Edit
              </Link>
            ) : (
              <Button variant="primary" icon="edit" disabled title={VIEWER_TITLE}>
                Edit
              </Button>
            )}
          </>
        }
      />
      {!r && <Spinner label="Loading the rule" />}
      {r && (
        <dl className="facts">
          <div>
            <dt>Algorithm</dt>
            <dd>{algorithmName(r.algorithm)}</dd>
          </div>
          <div>
            <dt>Limit</dt>
            <dd>
              {formatNumber(r.limit)} per {formatDuration(r.window_ms)}
              {r.burst ? `, burst ${formatNumber(r.burst)}` : ''}
            </dd>
          </div>
          <div>
            <dt>Covers</dt>
            <dd>
              <code className="code-soft break" data-testid="rule-covers">
                {matchSummary(r.match)}
              </code>
            </dd>
          </div>
          <div>
            <dt>Key</dt>
            <dd className="key-inline">{(r.key || []).join(' → ') || '—'}</dd>
          </div>
          <div>
            <dt>Version</dt>
            <dd>
              v{r.version} <span className="muted small">· {formatDateTime(r.updated_at)}</span>
            </dd>
          </div>
        </dl>
      )}

      <div className="stats-grid stats-grid-3">
        <Stat label="Allowed" value={formatNumber(sums.allowed)} tone="blue" detail="Last 5 minutes" />
        <Stat label="Denied" value={formatNumber(sums.denied)} tone="red" detail="Last 5 minutes" />
        <Stat label="Shadow denied" value={formatNumber(sums.shadow)} tone="amber" detail="Last 5 minutes" />
      </div>

      <Card title="Requests per second" subtitle="Last 5 minutes" className="chart-card">
        <TrafficChart points={points} theme={theme} label={`Requests per second for ${ruleId}`} notLiveSince={notLive && live.received ? formatClock(live.latestT) : null} nothingReceived={notLive && !live.received} />
      </Card>

      <div className="two-col">
        <TryIt ruleId={ruleId} keyChain={r ? r.key : undefined} />
        <TopKeys ruleId={ruleId} />
      </div>

      {r && <Overrides rule={r} overrides={overrides} />}
    </>
  );
}
