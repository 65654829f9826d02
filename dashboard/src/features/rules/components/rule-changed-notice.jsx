/*
 * Says that the rule being edited changed on the server since the form was
 * opened, and what: saving sends only the fields edited here, so the other
 * changes stay unless one of those fields is edited too. Offers to reload
 * the form onto the stored rule.
 */
import { Alert } from '../../../components/alert.jsx';
import { Button } from '../../../components/button.jsx';
import { describeChange } from '../utils/rule-changes.js';

export function RuleChangedNotice({ latest, changed, onReload }) {
  if (latest.deleted) {
    return (
      <Alert tone="error" title="This rule was deleted since you opened it">
        Saving would find no rule to change. Restore it from its history first, or create it again.
      </Alert>
    );
  }
  return (
    <div className="rule-changed" data-testid="rule-changed-notice">
      <Alert tone="warning" title={`This rule was changed since you opened it (now version ${latest.version})`}>
        {changed.length > 0 && (
          <ul className="change-list">
            {changed.map((field) => (
              <li key={field}>{describeChange(field, latest)}</li>
            ))}
          </ul>
        )}
        <span>Saving changes only the fields you edited here; the form does not show the changes above until you reload it, which drops your edits.</span>
        <div className="rule-changed-actions">
          <Button size="sm" icon="refresh" onClick={onReload}>
            Reload the form
          </Button>
        </div>
      </Alert>
    </div>
  );
}
