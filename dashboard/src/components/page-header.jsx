export function PageHeader({ title, description, actions, back }) {
  return (
    <header className="page-header">
      <div className="page-header-text">
        {back}
        <h1>{title}</h1>
        {description && <p className="page-description">{description}</p>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </header>
  );
}
