/*
 * A modal on the native <dialog>: focus is trapped, Esc closes it, the page
 * behind is inert. Rendered only while open. Once closed, the focus goes back
 * to what opened it (or, when that is gone with what the dialog removed, to
 * the page's main region), not to the top of the page.
 */
import { useEffect, useRef } from 'react';
import { Icon } from './icon.jsx';
import { Button } from './button.jsx';

/* closeOnBackdrop: false where a stray click must not lose what is shown (a secret). */
export function Dialog({ open, title, onClose, children, footer, size = 'md', closeOnBackdrop = true }) {
  const ref = useRef(null);

  // Declared before the effect that opens the dialog: it notes the opener while it still has the focus.
  useEffect(() => {
    if (!open) return undefined;
    const opener = document.activeElement;
    return () => returnFocus(opener);
  }, [open]);

  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    if (open && !el.open) el.showModal();
    if (!open && el.open) el.close();
    return undefined;
  }, [open]);

  if (!open) return null;
  return (
    <dialog
      ref={ref}
      className={`dialog dialog-${size}`}
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      onClick={(e) => {
        if (closeOnBackdrop && e.target === ref.current) onClose();
      }}
    >
      <div className="dialog-inner">
        <header className="dialog-header">
          <h2 id="dialog-title">{title}</h2>
          <button type="button" className="icon-btn" onClick={onClose} aria-label="Close">
            <Icon name="close" />
          </button>
        </header>
        <div className="dialog-body">{children}</div>
        {footer && <footer className="dialog-footer">{footer}</footer>}
      </div>
    </dialog>
  );
}

function returnFocus(opener) {
  const target = opener && opener !== document.body && opener.isConnected ? opener : document.getElementById('main');
  if (target && typeof target.focus === 'function') target.focus({ preventScroll: true });
}

export function ConfirmDialog({ open, title, children, confirmLabel = 'Confirm', tone = 'danger', busy, onConfirm, onClose }) {
  return (
    <Dialog
      open={open}
      title={title}
      onClose={onClose}
      size="sm"
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant={tone === 'danger' ? 'danger' : 'primary'} loading={busy} onClick={onConfirm}>
            {confirmLabel}
          </Button>
        </>
      }
    >
      {children}
    </Dialog>
  );
}
