import { AuthProvider, useAuth } from '../lib/auth.jsx';
import { RouterProvider } from '../lib/router.jsx';
import { ToastProvider } from '../components/toast.jsx';
import { ThemeProvider } from '../lib/theme.jsx';
import { ServerStateProvider } from '../lib/server-state.jsx';
import { AppLayout } from './layout.jsx';
import { AppRoutes } from './routes.jsx';
import { SignInPage } from '../features/auth/components/sign-in-page.jsx';

function Gate() {
  const { token } = useAuth();
  if (!token) return <SignInPage />;
  return (
    <ServerStateProvider>
      <AppLayout>
        <AppRoutes />
      </AppLayout>
    </ServerStateProvider>
  );
}

export function App() {
  return (
    <ThemeProvider>
      <RouterProvider>
        <AuthProvider>
          <ToastProvider>
            <Gate />
          </ToastProvider>
        </AuthProvider>
      </RouterProvider>
    </ThemeProvider>
  );
}
