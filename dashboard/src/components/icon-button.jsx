/* A table row's icon action (aria-label: label); with canEdit false, disabled under the viewer's tooltip. */
import { VIEWER_TITLE } from '../utils/roles.js';
import { Icon } from './icon.jsx';

export function IconButton({ icon, label, title, danger = false, canEdit = true, onClick }) {
  return (
    <button
      type="button"
      className={danger ? 'icon-btn icon-btn-danger' : 'icon-btn'}
      aria-label={label}
      title={canEdit ? title : VIEWER_TITLE}
      disabled={!canEdit}
      onClick={onClick}
    >
      <Icon name={icon} size={17} />
    </button>
  );
}
