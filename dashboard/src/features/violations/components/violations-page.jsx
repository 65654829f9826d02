import { useState } from 'react';
import { Link } from '../../../lib/router.jsx';
import { useQuery } from '../../../hooks/use-query.js';
import { useRuleIds } from '../../../hooks/use-rule-ids.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Button } from '../../../components/button.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Badge } from '../../../components/badge.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { useToast } from '../../../components/toast.jsx';
import { formatDateTime, formatNumber, formatRelative } from '../../../utils/format.js';
import { downloadViolationsCsv, listViolations } from '../api/violations.js';
import { ViolationFilters, queryOf } from './violation-filters.jsx';
import { TableHead } from '../../../components/table-head.jsx';

const PAGE_SIZE = 50;
const START = { rule: '', key: '', range: '24h', from: '', to: '' };

export function ViolationsPage() {
  useDocumentTitle('Violations');
  const toast = useToast();
  const { ids } = useRuleIds();
  const [filters, setFilters] = useState(START);
  const [query, setQuery] = useState(() => queryOf(START));
  const [cursors, setCursors] = useState([null]);
  const [downloading, setDownloading] = useState(false);
  const page = cursors.length - 1;
  const cursor = cursors[page];

  const result = useQuery(() => listViolations(query, cursor, PAGE_SIZE), [query, cursor]);
  const rows = (result.data && result.data.violations) || [];
  const next = result.data && result.data.next_cursor;

  const apply = (f) => {
    setFilters(f);
    setQuery(queryOf(f));
    setCursors([null]);
  };

  const download = async () => {
    setDownloading(true);
    try {
      await downloadViolationsCsv(query);
    } catch (err) {
      toast(`Download failed: ${err.message}`, 'error');
    } finally {
      setDownloading(false);
    }
  };

  return (
    <>
      <PageHeader
        title="Violations"
        description="Every request a rule denied, or would have denied in shadow mode."
        actions={
          <Button icon="download" onClick={download} loading={downloading}>
            Download CSV
          </Button>
        }
      />
      <div className="card">
        <ViolationFilters initial={filters} ruleIds={ids} onApply={apply} />
        {result.error && (
          <div className="card-pad">
            <Alert error={result.error} title="Cannot load violations" onRetry={result.reload} />
          </div>
        )}
        {result.loading && !result.data && <Spinner label="Loading violations" />}
        {result.data && rows.length === 0 && (
          <EmptyState icon="shield" title={page === 0 ? 'No violations' : 'No more violations'}>
            {page === 0 ? 'No request was denied for these filters. Widen the time range, or pick another rule.' : 'This is the end of the list.'}
          </EmptyState>
        )}
        {rows.length > 0 && (
          <div className="table-wrap">
            <table className="table violations-table stack-table">
              <TableHead columns={['Time', 'Rule', 'Key', 'Outcome', { label: 'Limit', className: 'num hide-sm' }, { label: 'Cost', className: 'num hide-sm' }]} />
              <tbody>
                {rows.map((v) => (
                  <tr key={v.id}>
                    <td className="nowrap stack-full stack-order-4" title={formatDateTime(v.at)}>
                      {formatDateTime(v.at)}
                      <div className="cell-sub">{formatRelative(v.at)}</div>
                    </td>
                    <td className="stack-order-1">
                      <Link to={`/rules/${encodeURIComponent(v.rule)}`} className="rule-link">
                        {v.rule}
                      </Link>
                    </td>
                    <td className="stack-full stack-order-3">
                      <code className="code-soft break">{v.key}</code>
                    </td>
                    <td className="stack-order-2 nowrap">
                      {v.mode === 'shadow' ? <Badge tone="amber">Would deny</Badge> : <Badge tone="red">Denied</Badge>}
                      {v.count > 1 && (
                        <span className="violation-count" title={`${formatNumber(v.count)} requests in this second`}>
                          × {formatNumber(v.count)}
                        </span>
                      )}
                    </td>
                    <td className="num hide-sm">{formatNumber(v.limit)}</td>
                    <td className="num hide-sm">{formatNumber(v.cost)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {(page > 0 || next) && (
          <div className="pager">
            <Button size="sm" disabled={page === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>
              Newer
            </Button>
            <span className="muted small">Page {page + 1}</span>
            <Button size="sm" disabled={!next} onClick={() => setCursors((c) => [...c, next])}>
              Older
            </Button>
          </div>
        )}
      </div>
    </>
  );
}
