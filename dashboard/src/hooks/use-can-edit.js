/* Whether the signed-in token may change things: viewers see the controls disabled, not refused after a click. */
import { useServerState } from '../lib/server-state.jsx';
import { canEdit } from '../utils/roles.js';

export function useCanEdit() {
  return canEdit(useServerState().role);
}
