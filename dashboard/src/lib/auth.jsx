/*
 * The signed-in state: the API token lives in sessionStorage (gone when the
 * tab closes). A 401 from any request signs the user out with a message.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { clearToken, getToken, setUnauthorizedListener, storeToken } from './api-client.js';

const AuthContext = createContext(null);

export function AuthProvider({ children }) {
  const [token, setTokenState] = useState(() => getToken());
  const [notice, setNotice] = useState(null);

  const signIn = useCallback((value) => {
    storeToken(value);
    setNotice(null);
    setTokenState(value);
  }, []);

  const signOut = useCallback((message = null) => {
    clearToken();
    setNotice(message);
    setTokenState(null);
  }, []);

  useEffect(() => {
    setUnauthorizedListener(() => signOut('Your token is no longer accepted. Sign in again.'));
    return () => setUnauthorizedListener(null);
  }, [signOut]);

  const value = useMemo(() => ({ token, signIn, signOut, notice }), [token, signIn, signOut, notice]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth() {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error('useAuth outside AuthProvider');
  return ctx;
}
