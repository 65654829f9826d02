/*
 * What differs between two versions of a rule, field by field: the PATCH
 * that carries only the fields a form changed, and the fields another
 * client changed while the form was open, named as the form labels them.
 */
import { formatDuration, formatNumber } from '../../../utils/format.js';
import { algorithmName } from '../../../utils/algorithm-names.js';

/* The rule's own fields, in the form's order, with their labels. */
const FIELDS = [
  ['mode', 'Mode'],
  ['description', 'Description'],
  ['priority', 'Priority'],
  ['fail_mode', 'When the store fails'],
  ['algorithm', 'Algorithm'],
  ['limit', 'Limit'],
  ['window_ms', 'Window'],
  ['burst', 'Burst'],
  ['shape', 'Shape traffic'],
  ['match', 'Match'],
  ['key', 'Key'],
  ['plans', 'Plans'],
];

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/*
 * The merge patch from before to after (both as ruleFromForm builds them):
 * each field that changed with its new value, null for one emptied (the
 * server's default, as PATCH reads null).
 */
export function rulePatch(before, after) {
  const patch = {};
  for (const [field] of FIELDS) {
    if (!same(before[field], after[field])) patch[field] = after[field] === undefined ? null : after[field];
  }
  return patch;
}

/* The fields whose stored values differ between two versions of a rule. */
export function changedFields(before, after) {
  return FIELDS.map(([field]) => field).filter((field) => !same(before[field], after[field]));
}

export function fieldLabel(field) {
  const found = FIELDS.find(([f]) => f === field);
  return found ? found[1] : field;
}

/* "Mode is now off", "Limit is now 999": a changed field of a stored rule, for people. */
export function describeChange(field, rule) {
  const v = rule[field];
  const now = (text) => `${fieldLabel(field)} is now ${text}`;
  if (v === null || v === undefined || v === '') return `${fieldLabel(field)} was cleared`;
  switch (field) {
    case 'mode':
    case 'fail_mode':
      return now(v);
    case 'limit':
    case 'burst':
    case 'priority':
      return now(formatNumber(v));
    case 'window_ms':
      return now(formatDuration(v));
    case 'algorithm':
      return now(algorithmName(v));
    case 'description':
      return now(`“${v}”`);
    case 'shape':
      return now(v ? 'on' : 'off');
    default:
      return `${fieldLabel(field)} changed`;
  }
}
