export function Card({ title, subtitle, actions, children, className = '', bodyClassName = '', id }) {
  return (
    <section className={`card ${className}`} aria-labelledby={title && id ? `${id}-title` : undefined}>
      {(title || actions) && (
        <header className="card-header">
          <div>
            {title && (
              <h2 className="card-title" id={id ? `${id}-title` : undefined}>
                {title}
              </h2>
            )}
            {subtitle && <p className="card-subtitle">{subtitle}</p>}
          </div>
          {actions && <div className="card-actions">{actions}</div>}
        </header>
      )}
      <div className={`card-body ${bodyClassName}`}>{children}</div>
    </section>
  );
}
