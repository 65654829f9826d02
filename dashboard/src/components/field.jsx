/*
 * A labelled form control with an optional hint and error. The control is
 * the child; it is given the id, aria-invalid and aria-describedby here.
 */
import { cloneElement, isValidElement, useId } from 'react';

export function Field({ label, hint, error, children, className = '', optional = false }) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [errorId, hintId].filter(Boolean).join(' ') || undefined;
  const control = isValidElement(children)
    ? cloneElement(children, {
        id: children.props.id || id,
        'aria-invalid': error ? 'true' : undefined,
        'aria-describedby': describedBy,
      })
    : children;
  return (
    <div className={`field ${error ? 'field-invalid' : ''} ${className}`}>
      <label htmlFor={(isValidElement(children) && children.props.id) || id}>
        {label}
        {optional && <span className="field-optional">optional</span>}
      </label>
      {control}
      {error && (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      )}
      {hint && !error && (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}
