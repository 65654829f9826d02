import { useMemo, useRef } from 'react';
import { Link, useNavigate } from '../../../lib/router.jsx';
import { useQuery } from '../../../hooks/use-query.js';
import { useDocumentTitle } from '../../../hooks/use-document-title.js';
import { PageHeader } from '../../../components/page-header.jsx';
import { Spinner } from '../../../components/spinner.jsx';
import { Alert } from '../../../components/alert.jsx';
import { Icon } from '../../../components/icon.jsx';
import { useToast } from '../../../components/toast.jsx';
import { RoleNotice } from '../../../components/role-notice.jsx';
import { useCanEdit } from '../../../hooks/use-can-edit.js';
import { createRule, getRule, patchRule } from '../api/rules.js';
import { emptyForm, formFromRule, ruleFromForm } from '../utils/rule-form-model.js';
import { changedFields, fieldLabel, rulePatch } from '../utils/rule-changes.js';
import { useRuleChangedSince } from '../hooks/use-rule-changed-since.js';
import { RuleForm } from './rule-form.jsx';
import { RuleChangedNotice } from './rule-changed-notice.jsx';
import { listOf } from '../../../utils/format.js';

/*
 * Creates a rule, or edits one: an edit sends only the fields changed in the
 * form (a PATCH, merged onto the rule as stored), so a change made meanwhile
 * by someone else to another field stays. A change of the same field is
 * saved only once the user has been told and saves again.
 */
export function RuleEditPage({ ruleId }) {
  const editing = !!ruleId;
  useDocumentTitle(editing ? `Edit ${ruleId}` : 'New rule');
  const navigate = useNavigate();
  const toast = useToast();
  const canEdit = useCanEdit();
  const existing = useQuery(() => getRule(ruleId), [ruleId], { enabled: editing });
  const base = editing ? existing.data : null;
  const initial = useMemo(() => (editing ? base && formFromRule(base) : emptyForm()), [editing, base]);
  const since = useRuleChangedSince(editing ? ruleId : null, base ? base.version : null);
  // The overwrite the user was warned of: saving again with the same one goes ahead.
  const warnedOf = useRef('');

  const back = (
    <Link to={editing ? `/rules/${encodeURIComponent(ruleId)}` : '/rules'} className="back-link">
      <Icon name="arrowLeft" size={15} />
      {editing ? ruleId : 'Rules'}
    </Link>
  );

  const patchOf = (rule) => rulePatch(ruleFromForm(initial).rule, rule);

  const saveEdit = async (rule) => {
    const patch = patchOf(rule);
    const latest = await since.refresh();
    if (latest && latest.deleted) throw new Error('This rule was deleted since you opened it: there is nothing to save onto.');
    const theirs = latest ? changedFields(base, latest) : [];
    const overlap = Object.keys(patch).filter((field) => theirs.includes(field));
    const warning = overlap.length ? `${latest.version}:${overlap.join(',')}` : '';
    if (warning && warnedOf.current !== warning) {
      warnedOf.current = warning;
      const names = listOf(overlap.map(fieldLabel));
      throw new Error(`${names} ${overlap.length === 1 ? 'was' : 'were'} also changed by someone else since you opened the form. Save again to replace their ${names} with yours, or reload the form to start from theirs.`);
    }
    if (!Object.keys(patch).length) {
      toast(`Nothing to save: ${ruleId} is as you found it`);
    } else {
      await patchRule(ruleId, patch);
      toast(`Rule ${ruleId} saved`);
    }
    navigate(`/rules/${encodeURIComponent(ruleId)}`);
  };

  const submit = async (rule) => {
    if (editing) return saveEdit(rule);
    const saved = await createRule(rule);
    toast(`Rule ${saved && saved.id ? saved.id : rule.id} created`);
    navigate(`/rules/${encodeURIComponent((saved && saved.id) || rule.id)}`);
    return undefined;
  };
  const validate = (rule) => (editing ? patchRule(ruleId, patchOf(rule), { dryRun: true }) : createRule(rule, { dryRun: true }));

  return (
    <>
      <PageHeader
        back={back}
        title={editing ? `Edit ${ruleId}` : 'New rule'}
        description={editing ? 'Changes apply on every instance within a second.' : 'A rule says which requests it covers, whom it counts them by and how many it allows.'}
      />
      {!canEdit && <RoleNotice action={editing ? 'change rules' : 'create rules'} />}
      {editing && existing.loading && <Spinner label="Loading the rule" />}
      {editing && existing.error && <Alert error={existing.error} title="Cannot load this rule" onRetry={existing.reload} />}
      {since.latest && base && <RuleChangedNotice latest={since.latest} changed={changedFields(base, since.latest)} onReload={existing.reload} />}
      {initial && (
        <RuleForm
          key={base ? base.version : 'new'}
          initial={initial}
          editing={editing}
          canEdit={canEdit}
          onSubmit={submit}
          onValidate={validate}
          onCancel={() => navigate(editing ? `/rules/${encodeURIComponent(ruleId)}` : '/rules')}
        />
      )}
    </>
  );
}
