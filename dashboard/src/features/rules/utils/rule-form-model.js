/*
 * The rule form's state and its translation to and from the rule JSON of the
 * API. Numbers stay strings while edited; durations are typed as "1m".
 */
import { durationProblem, formatDuration, parseDuration } from '../../../utils/format.js';
import { BURST_ALGORITHMS } from './algorithms.js';

const SIMPLE_KEYS = new Set(['ip', 'user', 'api_key', 'route', 'global']);

export function keyPartFromString(s) {
  if (SIMPLE_KEYS.has(s)) return { kind: s, arg: '' };
  if (!s.includes('+')) {
    if (s.startsWith('header:')) return { kind: 'header', arg: s.slice(7) };
    if (s.startsWith('jwt:')) return { kind: 'jwt', arg: s.slice(4) };
  }
  return { kind: 'custom', arg: s };
}

export function keyPartToString(part) {
  if (part.kind === 'header') return `header:${part.arg.trim()}`;
  if (part.kind === 'jwt') return `jwt:${part.arg.trim()}`;
  if (part.kind === 'custom') return part.arg.trim();
  return part.kind;
}

const str = (v) => (v === null || v === undefined ? '' : String(v));

export function emptyForm() {
  return {
    id: '',
    description: '',
    algorithm: 'token_bucket',
    limit: '100',
    window: '1m',
    burst: '',
    shape: false,
    mode: 'enforce',
    priority: '100',
    fail_mode: '',
    methods: [],
    path: '',
    hosts: '',
    headers: [],
    key: [{ kind: 'ip', arg: '' }],
    plans: [],
  };
}

export function formFromRule(rule) {
  const match = rule.match || {};
  return {
    id: rule.id || '',
    description: rule.description || '',
    algorithm: rule.algorithm || 'token_bucket',
    limit: str(rule.limit),
    window: formatDuration(rule.window_ms),
    burst: str(rule.burst),
    shape: !!rule.shape,
    mode: rule.mode || 'enforce',
    priority: str(rule.priority),
    fail_mode: rule.fail_mode || '',
    methods: Array.isArray(match.methods) ? match.methods : [],
    path: match.path || '',
    hosts: Array.isArray(match.hosts) ? match.hosts.join(', ') : '',
    headers: Object.entries(match.headers || {}).map(([name, value]) => ({ name, value: str(value) })),
    key: (Array.isArray(rule.key) && rule.key.length ? rule.key : ['ip']).map(keyPartFromString),
    plans: Object.entries(rule.plans || {}).map(([name, p]) => ({
      name,
      limit: str(p && p.limit),
      burst: str(p && p.burst),
      window: p && p.window_ms ? formatDuration(p.window_ms) : '',
    })),
  };
}

/* A number typed in a field: sent as a number when it reads as one, as typed otherwise (the server says why). */
function numberOrRaw(s) {
  const t = String(s).trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

/*
 * Builds the rule document. Answers {rule, errors}: errors are the client's
 * own findings (a duration that cannot be read), keyed like the server's.
 */
export function ruleFromForm(form) {
  const errors = {};
  const rule = { id: form.id.trim(), description: form.description.trim(), algorithm: form.algorithm };
  const limit = numberOrRaw(form.limit);
  if (limit !== undefined) rule.limit = limit;
  const windowMs = parseDuration(form.window);
  if (form.window.trim() === '') errors.window_ms = 'Enter a window, such as 1m or 30s.';
  else if (windowMs === null) errors.window_ms = durationProblem(form.window);
  else rule.window_ms = windowMs;
  /* the other algorithms ignore a burst, and the server refuses one */
  const withBurst = BURST_ALGORITHMS.has(form.algorithm);
  const burst = numberOrRaw(form.burst);
  if (withBurst && burst !== undefined) rule.burst = burst;
  if (form.algorithm === 'leaky_bucket') rule.shape = !!form.shape;
  rule.mode = form.mode;
  const priority = numberOrRaw(form.priority);
  if (priority !== undefined) rule.priority = priority;
  rule.fail_mode = form.fail_mode || null;

  const headers = {};
  for (const h of form.headers) if (h.name.trim()) headers[h.name.trim()] = h.value;
  rule.match = {
    methods: form.methods,
    path: form.path.trim(),
    hosts: form.hosts
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean),
    headers,
  };
  rule.key = form.key.map(keyPartToString);

  const plans = {};
  form.plans.forEach((p, i) => {
    const name = p.name.trim();
    if (!name) {
      if (p.limit || (withBurst && p.burst) || p.window) errors[`plans[${i}]`] = 'Give the plan a name.';
      return;
    }
    const plan = {};
    const pl = numberOrRaw(p.limit);
    if (pl !== undefined) plan.limit = pl;
    const pb = numberOrRaw(p.burst);
    if (withBurst && pb !== undefined) plan.burst = pb;
    if (p.window.trim()) {
      const w = parseDuration(p.window);
      if (w === null) errors[`plans.${name}.window_ms`] = durationProblem(p.window);
      else plan.window_ms = w;
    }
    plans[name] = plan;
  });
  rule.plans = plans;
  return { rule, errors };
}

const UNIT_NAMES = { ms: 'ms', s: 'second', m: 'minute', h: 'hour', d: 'day' };
const UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };

/* What the form holds for a duration field the server names ("window_ms", "plans.gold.window_ms"). */
function typedDuration(form, field) {
  if (!form) return '';
  if (field === 'window_ms') return form.window;
  const plan = /^plans\.(.+)\.window_ms$/.exec(field);
  const p = plan && form.plans.find((x) => x.name.trim() === plan[1]);
  return p ? p.window : '';
}

/*
 * The server bounds durations in milliseconds ("must be an integer between 1
 * and 604800000 (ms)"); said again in the unit the user typed ("30d" -> "must
 * be at most 7 days"). Any other message is kept as it is.
 */
function durationMessage(message, typed) {
  const bounds = /between (\d+) and (\d+) \(ms\)/.exec(message);
  const ms = parseDuration(typed);
  if (!bounds || ms === null) return message;
  const unit = (/(ms|s|m|h|d)\s*$/.exec(String(typed).trim().toLowerCase()) || [])[1] || 'ms';
  const inUnit = (bound) => {
    const n = Number(bound) / UNIT_MS[unit];
    const name = UNIT_NAMES[unit];
    // A bound that is not a whole number of that unit is given as the API writes durations.
    if (!Number.isInteger(n)) return formatDuration(Number(bound));
    return `${n} ${n === 1 || unit === 'ms' ? name : `${name}s`}`;
  };
  if (ms > Number(bounds[2])) return `must be at most ${inUnit(bounds[2])}`;
  if (ms < Number(bounds[1])) return `must be at least ${inUnit(bounds[1])}`;
  return message;
}

/*
 * The server's [{field, message}] as {field: message}; "window" is shown at
 * window_ms. form: what was sent, to word duration bounds in the typed unit.
 */
export function errorsByField(list, form) {
  const out = {};
  for (const e of list || []) {
    if (!e) continue;
    const field = e.field === 'window' ? 'window_ms' : e.field || '';
    const message = /window_ms$/.test(field) ? durationMessage(e.message, typedDuration(form, field)) : e.message;
    out[field] = out[field] ? `${out[field]} ${message}` : message;
  }
  return out;
}

/* The form's label of each error path, in the form's order. */
const FIELD_LABELS = [
  [/^id$/, 'Rule ID'],
  [/^mode$/, 'Mode'],
  [/^description$/, 'Description'],
  [/^priority$/, 'Priority'],
  [/^fail_mode$/, 'When the store fails'],
  [/^algorithm$/, 'Algorithm'],
  [/^limit$/, 'Limit'],
  [/^window_ms$/, 'Window'],
  [/^burst$/, 'Burst'],
  [/^shape$/, 'Shape traffic'],
  [/^match\.methods/, 'Methods'],
  [/^match\.path/, 'Path'],
  [/^match\.hosts/, 'Hosts'],
  [/^match\.headers/, 'Required headers'],
  [/^key/, 'Key'],
  [/^plans/, 'Plans'],
];

/* The distinct fields in error, named as the form labels them; a path no field shows is named as is. */
export function fieldLabels(errors) {
  const named = Object.keys(errors).map((field) => {
    const i = FIELD_LABELS.findIndex(([re]) => re.test(field));
    return [i < 0 ? FIELD_LABELS.length : i, i < 0 ? field || 'Rule' : FIELD_LABELS[i][1]];
  });
  named.sort((a, b) => a[0] - b[0]);
  return [...new Set(named.map(([, label]) => label))];
}

const SHOWN = [
  /^(id|description|algorithm|limit|window_ms|burst|shape|mode|priority|fail_mode|key|plans)$/,
  /^match\.(methods|path|hosts|headers)/,
  /^key\[\d+\]$/,
  /^plans[.[]/,
];

/* Errors that no field of the form displays: shown at the top instead. */
export function unplacedErrors(errors) {
  return Object.entries(errors).filter(([field]) => !SHOWN.some((re) => re.test(field)));
}

/* The first message under a path prefix: "match.headers" also takes "match.headers.X-Foo". */
export function errorUnder(errors, prefix) {
  for (const [field, message] of Object.entries(errors)) {
    if (field === prefix || field.startsWith(`${prefix}.`) || field.startsWith(`${prefix}[`)) return message;
  }
  return undefined;
}
