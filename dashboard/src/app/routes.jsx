import { matchPath, useRouter } from '../lib/router.jsx';
import { OverviewPage } from '../features/overview/components/overview-page.jsx';
import { RulesPage } from '../features/rules/components/rules-page.jsx';
import { RuleEditPage } from '../features/rules/components/rule-edit-page.jsx';
import { RuleDetailPage } from '../features/rule-detail/components/rule-detail-page.jsx';
import { ViolationsPage } from '../features/violations/components/violations-page.jsx';
import { ListsPage } from '../features/lists/components/lists-page.jsx';
import { CountersPage } from '../features/counters/components/counters-page.jsx';
import { TokensPage } from '../features/tokens/components/tokens-page.jsx';
import { EmptyState } from '../components/empty-state.jsx';
import { Link } from '../lib/router.jsx';

const ROUTES = [
  ['/', () => <OverviewPage />],
  ['/rules', () => <RulesPage />],
  ['/rules/new', () => <RuleEditPage />],
  ['/rules/:id/edit', (p) => <RuleEditPage key={p.id} ruleId={p.id} />],
  ['/rules/:id', (p) => <RuleDetailPage key={p.id} ruleId={p.id} />],
  ['/violations', () => <ViolationsPage />],
  ['/lists', () => <ListsPage />],
  ['/counters', () => <CountersPage />],
  ['/tokens', () => <TokensPage />],
];

export function AppRoutes() {
  const { pathname } = useRouter();
  for (const [pattern, render] of ROUTES) {
    const params = matchPath(pattern, pathname);
    if (params) return render(params);
  }
  return (
    <EmptyState icon="alert" title="Page not found" action={<Link to="/" className="btn btn-secondary">Go to overview</Link>}>
      There is no page at {pathname}.
    </EmptyState>
  );
}
