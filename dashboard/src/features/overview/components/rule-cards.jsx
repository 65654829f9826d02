import { Link } from '../../../lib/router.jsx';
import { Badge } from '../../../components/badge.jsx';
import { Sparkline } from '../../../components/sparkline.jsx';
import { EmptyState } from '../../../components/empty-state.jsx';
import { formatCompact, capitalize } from '../../../utils/format.js';

const MODE_TONE = { enforce: 'green', shadow: 'amber', off: 'gray' };

function sum(points, key) {
  let n = 0;
  for (const p of points) n += p[key];
  return n;
}

/*
 * One card per rule: its mode, and its last windowS seconds as figures and a
 * sparkline. In the Rules page's order (priority, then ID), which the live
 * counts do not change: a card stays where it is under the pointer. known:
 * false while no figure has been received at all (shown as —, not as 0).
 */
export function RuleCards({ rules, series, windowS, known = true }) {
  const figure = (n) => (known ? formatCompact(n) : '—');
  if (!rules.length) {
    return (
      <EmptyState
        icon="rules"
        title="No rules yet"
        action={
          <Link to="/rules/new" className="btn btn-primary">
            Create a rule
          </Link>
        }
      >
        Rules decide which requests are limited. Traffic per rule appears here once you have one.
      </EmptyState>
    );
  }
  const rows = rules.map((rule) => {
    const points = series(rule.id).slice(-windowS);
    return {
      rule,
      points,
      allowed: sum(points, 'allowed'),
      denied: sum(points, 'denied') + sum(points, 'shadow_denied'),
    };
  });
  rows.sort((a, b) => (a.rule.priority ?? 0) - (b.rule.priority ?? 0) || a.rule.id.localeCompare(b.rule.id));
  return (
    <ul className="rule-cards">
      {rows.map(({ rule, points, allowed, denied }) => (
        <li key={rule.id} className="rule-card" data-testid={`rule-card-${rule.id}`}>
          <div className="rule-card-head">
            <Link to={`/rules/${encodeURIComponent(rule.id)}`} className="rule-card-name" title={rule.id}>
              {rule.id}
            </Link>
            <Badge tone={MODE_TONE[rule.mode] || 'gray'}>{capitalize(rule.mode)}</Badge>
          </div>
          <div className="rule-card-figures">
            <span>
              <strong>{figure(allowed)}</strong> allowed
            </span>
            <span className={denied ? 'text-danger' : ''}>
              <strong>{figure(denied)}</strong> {rule.mode === 'shadow' ? 'would deny' : 'denied'}
            </span>
          </div>
          <Sparkline points={points} />
        </li>
      ))}
    </ul>
  );
}
