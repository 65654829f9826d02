/* The frame of every signed-in page: left navigation, the server's state, sign out. */
import { useEffect, useState } from 'react';
import { Link, useRouter } from '../lib/router.jsx';
import { useAuth } from '../lib/auth.jsx';
import { useServerState } from '../lib/server-state.jsx';
import { Icon } from '../components/icon.jsx';
import { useTheme } from '../lib/theme.jsx';

const NAV = [
  { to: '/', label: 'Overview', icon: 'overview', match: (p) => p === '/' },
  { to: '/rules', label: 'Rules', icon: 'rules', match: (p) => p.startsWith('/rules') },
  { to: '/violations', label: 'Violations', icon: 'violations', match: (p) => p.startsWith('/violations') },
  { to: '/lists', label: 'Allow & deny lists', icon: 'lists', match: (p) => p.startsWith('/lists') },
  { to: '/counters', label: 'Counters', icon: 'counters', match: (p) => p.startsWith('/counters') },
  { to: '/tokens', label: 'API tokens', icon: 'token', match: (p) => p.startsWith('/tokens') },
];

const STORE_NAMES = { memory: 'In-memory store', redis: 'Redis', 'redis-cluster': 'Redis Cluster' };

function ServerStatus() {
  const { info: data, state } = useServerState();
  // What the server said last is not news of it now: while it is away, say only that.
  if (state === 'unreachable') {
    return (
      <div className="server-status" data-testid="server-status">
        <div className="server-status-row">
          <span className="health-dot health-bad" aria-hidden="true" />
          <span>Server unreachable</span>
        </div>
        <div className="server-status-meta">Retrying every few seconds</div>
      </div>
    );
  }
  if (!data) return <div className="server-status muted">Connecting…</div>;
  const healthy = data.store_healthy !== false;
  return (
    <div className="server-status" data-testid="server-status">
      <div className="server-status-row">
        <span className={`health-dot ${healthy ? 'health-ok' : 'health-bad'}`} aria-hidden="true" />
        <span>
          {STORE_NAMES[data.store] || data.store} {healthy ? 'healthy' : 'unreachable'}
        </span>
      </div>
      <div className="server-status-meta">ratekit {data.version}</div>
      {data.role ? (
        <div className="server-status-meta" data-testid="signed-in-role">
          Signed in as {data.role}
        </div>
      ) : null}
    </div>
  );
}

export function AppLayout({ children }) {
  const { pathname } = useRouter();
  const { signOut } = useAuth();
  const { theme, toggle } = useTheme();
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => setMenuOpen(false), [pathname]);

  return (
    <div className={`shell ${menuOpen ? 'menu-open' : ''}`}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <button
          type="button"
          className="icon-btn"
          aria-label={menuOpen ? 'Close menu' : 'Open menu'}
          aria-expanded={menuOpen}
          aria-controls="sidebar"
          onClick={() => setMenuOpen((o) => !o)}
        >
          <Icon name={menuOpen ? 'close' : 'menu'} size={20} />
        </button>
        <Link to="/" className="brand brand-small">
          <span className="brand-mark" aria-hidden="true" />
          ratekit
        </Link>
      </header>
      <aside className="sidebar" id="sidebar">
        <Link to="/" className="brand">
          <span className="brand-mark" aria-hidden="true" />
          ratekit
        </Link>
        <nav aria-label="Main">
          <ul className="nav">
            {NAV.map((item) => {
              const active = item.match(pathname);
              return (
                <li key={item.to}>
                  <Link to={item.to} className={`nav-link ${active ? 'active' : ''}`} aria-current={active ? 'page' : undefined}>
                    <Icon name={item.icon} />
                    {item.label}
                  </Link>
                </li>
              );
            })}
          </ul>
        </nav>
        <div className="sidebar-footer">
          <ServerStatus />
          <div className="sidebar-actions">
            <button type="button" className="btn btn-ghost btn-sm" onClick={toggle} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
              <Icon name={theme === 'dark' ? 'sun' : 'moon'} size={15} />
              {theme === 'dark' ? 'Light' : 'Dark'}
            </button>
            <button type="button" className="btn btn-ghost btn-sm" onClick={() => signOut()}>
              <Icon name="logout" size={15} />
              Sign out
            </button>
          </div>
        </div>
      </aside>
      <div className="scrim" aria-hidden="true" onClick={() => setMenuOpen(false)} />
      <main className="main" id="main" tabIndex={-1}>
        <div className="content">{children}</div>
      </main>
    </div>
  );
}
