import { useMemo } from 'react';
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
import { createRule, getRule, replaceRule } from '../api/rules.js';
import { emptyForm, formFromRule } from '../utils/rule-form-model.js';
import { RuleForm } from './rule-form.jsx';

export function RuleEditPage({ ruleId }) {
  const editing = !!ruleId;
  useDocumentTitle(editing ? `Edit ${ruleId}` : 'New rule');
  const navigate = useNavigate();
  const toast = useToast();
  const canEdit = useCanEdit();
  const existing = useQuery(() => getRule(ruleId), [ruleId], { enabled: editing });
  const initial = useMemo(() => (editing ? existing.data && formFromRule(existing.data) : emptyForm()), [editing, existing.data]);

  const back = (
    <Link to={editing ? `/rules/${encodeURIComponent(ruleId)}` : '/rules'} className="back-link">
      <Icon name="arrowLeft" size={15} />
      {editing ? ruleId : 'Rules'}
    </Link>
  );

  const submit = async (rule) => {
    const saved = editing ? await replaceRule(ruleId, rule) : await createRule(rule);
    toast(editing ? `Rule ${ruleId} saved` : `Rule ${saved && saved.id ? saved.id : rule.id} created`);
    navigate(`/rules/${encodeURIComponent((saved && saved.id) || rule.id)}`);
  };
  const validate = (rule) => (editing ? replaceRule(ruleId, rule, { dryRun: true }) : createRule(rule, { dryRun: true }));

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
      {initial && <RuleForm initial={initial} editing={editing} canEdit={canEdit} onSubmit={submit} onValidate={validate} onCancel={() => navigate(editing ? `/rules/${encodeURIComponent(ruleId)}` : '/rules')} />}
    </>
  );
}
