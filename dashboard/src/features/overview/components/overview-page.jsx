import { useMemo } from 'react';
import { useQuery } from '../../../hooks/use-query.js';
import { CHECKS, useLiveTraffic } from '../../../hooks/use-live-traffic.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Card } from '../../../components/card.jsx';
import { Stat } from '../../../components/stat.jsx';
import { Alert } from '../../../components/alert.jsx';
import { LiveIndicator } from '../../../components/live-indicator.jsx';
import { TrafficChart } from '../../../components/traffic-chart.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { formatClock, formatNumber, formatUptime } from '../../../utils/format.js';
import { useTheme } from '../../../lib/theme.jsx';
import { useServerState } from '../../../lib/server-state.jsx';
import { listRules } from '../api/overview.js';
import { RuleCards } from './rule-cards.jsx';

const STORE_NAMES = { memory: 'In-memory', redis: 'Redis', 'redis-cluster': 'Redis Cluster' };
const RULE_CARD_WINDOW_S = 120;

function totalsOf(points) {
  const t = { allowed: 0, denied: 0, shadow_denied: 0, errors: 0 };
  for (const p of points) {
    t.allowed += p.allowed;
    t.denied += p.denied;
    t.shadow_denied += p.shadow_denied;
    t.errors += p.errors;
  }
  return t;
}

// A check is allowed, denied or answered by the fail mode (errors): each request once.
const checksIn = (c) => c.allowed + c.denied + c.errors;

export function OverviewPage() {
  useDocumentTitle('Overview');
  const { theme } = useTheme();
  const server = useServerState();
  const rules = useQuery(listRules, []);
  const ruleList = useMemo(() => (rules.data && rules.data.rules) || [], [rules.data]);
  const ruleIds = useMemo(() => ruleList.map((r) => r.id), [ruleList]);

  const live = useLiveTraffic({
    ruleIds,
    totals: true,
    onRuleChange: () => {
      rules.reload();
      server.reload();
    },
  });

  // Checks count each request once, however many rules decided it.
  const points = live.series(CHECKS);
  const checks = totalsOf(points);
  const total = checksIn(checks);
  // Shadow would-denies are rule decisions: a request two shadow rules would deny counts twice.
  const decisions = totalsOf(live.series('total'));
  // The last complete second received: the figures "now" are of that second.
  const last = points[points.length - 1] || { allowed: 0, denied: 0, shadow_denied: 0, errors: 0 };
  const deniedShare = total ? ((checks.denied / total) * 100).toFixed(1) : '0.0';
  const unreachable = server.state === 'unreachable';
  // Figures that stopped coming are shown as such, never as a drop to no traffic.
  const notLive = unreachable || live.status === 'offline';
  // Nothing received at all: there is no time to name, and the zeros are not a reading.
  const since = live.received ? formatClock(live.latestT) : null;
  const unknown = notLive && !since;
  const figure = (n) => (unknown ? '—' : formatNumber(n));
  const d = server.info;

  return (
    <>
      <PageHeader title="Overview" description="Checks across every ratekit instance, updated each second." actions={<LiveIndicator status={live.status} />} />
      {unreachable && (
        <Alert title="Cannot reach the ratekit server" onRetry={server.reload}>
          {since ? `The figures below are the last received, at ${since}; they are not live.` : 'No figures yet: the server cannot be reached.'}
        </Alert>
      )}

      <div className="stats-grid" aria-label="Last 5 minutes">
        <Stat
          label="Checks · 5 min"
          value={figure(total)}
          detail={notLive ? (since ? `Not live · last at ${since}` : 'Not live · none received') : `${formatNumber(checksIn(last))} in the last second`}
          testId="stat-checks"
        />
        <Stat label="Allowed" value={figure(checks.allowed)} tone="blue" testId="stat-allowed" detail={notLive ? 'Not live' : `${formatNumber(last.allowed)}/s now`} />
        <Stat label="Denied" value={figure(checks.denied)} tone="red" testId="stat-denied" detail={unknown ? 'Not live' : `${deniedShare}% of checks`} />
        <Stat label="Shadow denied" value={figure(decisions.shadow_denied)} tone="amber" testId="stat-shadow" detail="Rule decisions that would deny; not enforced" />
      </div>
      {!unknown && checks.errors > 0 && (
        <p className="muted small stats-note" data-testid="checks-errors">
          {formatNumber(checks.errors)} {checks.errors === 1 ? 'check was' : 'checks were'} answered by a rule's fail mode while the store failed.
        </p>
      )}

      <Card title="Checks per second" subtitle="Last 5 minutes, each request once" className="chart-card">
        <TrafficChart points={points} theme={theme} label="Checks per second" shadow={false} notLiveSince={notLive ? since : null} nothingReceived={unknown} />
      </Card>

      <section className="system-strip" aria-label="Server">
        <div className="system-item">
          <span className="system-label">Store</span>
          <span className="system-value" data-testid="store-health">
            {d ? (
              <>
                <span className={`health-dot ${unreachable || d.store_healthy === false ? 'health-bad' : 'health-ok'}`} aria-hidden="true" />
                {STORE_NAMES[d.store] || d.store} · {unreachable ? 'server unreachable' : d.store_healthy === false ? 'unreachable' : 'healthy'}
              </>
            ) : (
              '—'
            )}
          </span>
        </div>
        <div className="system-item">
          <span className="system-label">Ruleset version</span>
          <span className="system-value" data-testid="ruleset-version">{d ? formatNumber(d.ruleset_version) : '—'}</span>
        </div>
        <div className="system-item">
          <span className="system-label">Live instances</span>
          <span className="system-value">{d ? formatNumber(d.instances) : '—'}</span>
        </div>
        <div className="system-item">
          <span className="system-label">Uptime</span>
          <span className="system-value">{d ? formatUptime(d.uptime_s) : '—'}</span>
        </div>
      </section>

      <div className="section-heading">
        <h2>Rules</h2>
        <span className="muted">Last {RULE_CARD_WINDOW_S / 60} minutes per rule</span>
      </div>
      {rules.loading && !rules.data ? (
        <Spinner label="Loading rules" />
      ) : rules.error && !rules.data ? (
        <Alert error={rules.error} title="Cannot load the rules" onRetry={rules.reload} />
      ) : (
        <RuleCards rules={ruleList} series={live.series} windowS={RULE_CARD_WINDOW_S} known={!unknown} />
      )}
    </>
  );
}
