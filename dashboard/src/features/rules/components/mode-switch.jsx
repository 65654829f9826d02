import { VIEWER_TITLE } from '../../../utils/roles.js';

/* Enforce / shadow / off in one click; disabled shows the mode only (a viewer's token). */
const MODES = [
  { id: 'enforce', label: 'Enforce' },
  { id: 'shadow', label: 'Shadow' },
  { id: 'off', label: 'Off' },
];

export function ModeSwitch({ ruleId, mode, onChange, busy, disabled = false }) {
  return (
    <div className={`segmented mode-${mode}`} role="group" aria-label={`Mode of ${ruleId}`} aria-busy={busy || undefined}>
      {MODES.map((m) => (
        <button
          key={m.id}
          type="button"
          className={`segment ${mode === m.id ? `active active-${m.id}` : ''}`}
          aria-pressed={mode === m.id}
          disabled={busy || disabled}
          title={disabled ? VIEWER_TITLE : undefined}
          onClick={() => mode !== m.id && onChange(m.id)}
        >
          {m.label}
        </button>
      ))}
    </div>
  );
}
