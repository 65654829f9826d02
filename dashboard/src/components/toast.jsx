/* Short-lived confirmations in the corner ("Rule saved"). */
import { createContext, useCallback, useContext, useMemo, useState } from 'react';
import { Icon } from './icon.jsx';

const ToastContext = createContext(() => {});
let nextId = 1;
/* tone: success | error | info (a calm note, such as a role refusal). */
const TOAST_ICONS = { success: 'check', error: 'alert', info: 'shield' };

export function ToastProvider({ children }) {
  const [toasts, setToasts] = useState([]);

  const dismiss = useCallback((id) => setToasts((all) => all.filter((t) => t.id !== id)), []);

  const show = useCallback(
    (message, tone = 'success') => {
      const id = nextId++;
      setToasts((all) => [...all.slice(-3), { id, message, tone }]);
      setTimeout(() => dismiss(id), tone === 'success' ? 4000 : 7000);
    },
    [dismiss],
  );

  const value = useMemo(() => show, [show]);
  return (
    <ToastContext.Provider value={value}>
      {children}
      <div className="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.tone}`}>
            <Icon name={TOAST_ICONS[t.tone] || 'check'} size={17} />
            <span>{t.message}</span>
            <button type="button" className="icon-btn" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              <Icon name="close" size={15} />
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

export function useToast() {
  return useContext(ToastContext);
}
