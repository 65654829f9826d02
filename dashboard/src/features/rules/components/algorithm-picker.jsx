import { ALGORITHMS } from '../utils/algorithms.js';

/* Radio cards: each algorithm with the one line that tells them apart. */
export function AlgorithmPicker({ value, onChange, error }) {
  return (
    <fieldset className={`fieldset ${error ? 'field-invalid' : ''}`} aria-describedby={error ? 'algorithm-error' : undefined}>
      <legend>Algorithm</legend>
      <div className="algo-grid">
        {ALGORITHMS.map((a) => (
          <label key={a.id} className={`algo-option ${value === a.id ? 'selected' : ''}`}>
            <input type="radio" name="algorithm" value={a.id} checked={value === a.id} onChange={() => onChange(a.id)} />
            <span className="algo-name">{a.name}</span>
            <span className="algo-text">{a.text}</span>
          </label>
        ))}
      </div>
      {error && (
        <p className="field-error" id="algorithm-error">
          {error}
        </p>
      )}
    </fieldset>
  );
}
