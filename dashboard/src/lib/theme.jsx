/* Light by default; dark on request, remembered in localStorage. */
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';

const ThemeContext = createContext({ theme: 'light', toggle: () => {} });
const KEY = 'ratekit.theme';

export function ThemeProvider({ children }) {
  // Set on <html> before the first render, so charts read the right colours.
  const [theme, setTheme] = useState(() => {
    let initial = 'light';
    try {
      initial = localStorage.getItem(KEY) === 'dark' ? 'dark' : 'light';
    } catch {
      /* storage unavailable: light */
    }
    document.documentElement.dataset.theme = initial;
    return initial;
  });

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    try {
      localStorage.setItem(KEY, theme);
    } catch {
      /* private mode: the choice lasts for this page only */
    }
  }, [theme]);

  const toggle = useCallback(() => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    setTheme(next);
  }, []);
  const value = useMemo(() => ({ theme, toggle }), [theme, toggle]);
  return <ThemeContext.Provider value={value}>{children}</ThemeContext.Provider>;
}

export function useTheme() {
  return useContext(ThemeContext);
}
