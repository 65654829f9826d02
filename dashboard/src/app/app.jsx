import { AuthProvider, useAuth } from '../lib/auth.jsx';
import { RouterProvider } from '../lib/router.jsx';
import { ToastProvider } from '../components/toast.jsx';
import { ThemeProvider } from '../lib/theme.jsx';
import { AppLayout } from './layout.jsx';
import { AppRoutes } from './routes.jsx';
import { SignInPage } from '../features/auth/components/sign-in-page.jsx';

function Gate() {
  const { token } = useAuth();
  if (!token) return <SignInPage />;
  return (
    <AppLayout>
      <AppRoutes />
    </AppLayout>
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
