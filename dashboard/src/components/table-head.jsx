/*
 * A table's header row: each column a label, or {label, className} (hide-sm,
 * num...); with actions, a last column for the row buttons, named for screen
 * readers only.
 */
export function TableHead({ columns, actions = false }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => {
          const { label, className } = typeof c === 'string' ? { label: c } : c;
          return (
            <th key={label} scope="col" className={className}>
              {label}
            </th>
          );
        })}
        {actions && (
          <th scope="col" className="col-actions">
            <span className="sr-only">Actions</span>
          </th>
        )}
      </tr>
    </thead>
  );
}
