import { useQuery } from '../../../hooks/use-query.js';
import { Card } from '../../../components/card.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { formatNumber } from '../../../utils/format.js';
import { getTopKeys } from '../api/rule-detail.js';

/* The keys this rule denied most in the last five minutes, refreshed every 5 s. */
export function TopKeys({ ruleId }) {
  const top = useQuery(() => getTopKeys(ruleId, 300), [ruleId], { pollMs: 5000 });
  const rows = (top.data && top.data.top) || [];
  const max = Math.max(1, ...rows.map((r) => r.denied));
  return (
    <Card title="Top limited keys" subtitle="Last 5 minutes">
      {top.loading && !top.data && <Spinner />}
      {top.error && !top.data && <Alert error={top.error} title="Cannot load the top keys" onRetry={top.reload} />}
      {top.data && rows.length === 0 && (
        <EmptyState icon="shield" title="Nobody limited">
          No key was denied by this rule in the last 5 minutes.
        </EmptyState>
      )}
      {rows.length > 0 && (
        <ol className="top-keys">
          {rows.slice(0, 10).map((r) => (
            <li key={r.key}>
              <div className="top-key-row">
                <code className="top-key" title={r.key}>
                  {r.key}
                </code>
                <span className="top-count">{formatNumber(r.denied)}</span>
              </div>
              <progress className="bar" max={max} value={r.denied} aria-label={`${r.key}: ${r.denied} denied`} />
            </li>
          ))}
        </ol>
      )}
    </Card>
  );
}
