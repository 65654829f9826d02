/* Formatting of numbers, durations and times, one way everywhere. */

const numberFormat = new Intl.NumberFormat('en-US');
const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

export function formatNumber(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return numberFormat.format(n);
}

export function formatCompact(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return Math.abs(n) < 10000 ? numberFormat.format(n) : compactFormat.format(n);
}

const UNITS = [
  ['d', 86400000],
  ['h', 3600000],
  ['m', 60000],
  ['s', 1000],
  ['ms', 1],
];

/* 60000 -> "1m", 90000 -> "1m30s", 1500 -> "1500ms": the form rules are written in. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || ms === '') return '';
  ms = Number(ms);
  if (!Number.isFinite(ms)) return '';
  if (ms === 0) return '0s';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms;
  let out = '';
  for (const [unit, size] of UNITS.slice(0, 4)) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

/* The forms a duration is typed in, as the API takes them. */
const DURATION_FORMS = '500ms, 30s, 1m, 1h or 1d';

/*
 * "1m", "30s", "1h30m", "500ms", "1d" -> ms; null when unreadable. A bare
 * number is unreadable: its unit is unsaid, and the API refuses "60" too.
 */
export function parseDuration(text) {
  const s = String(text ?? '').trim().toLowerCase();
  if (!s) return null;
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNITS.find(([u]) => u === m[2])[1];
    matched = re.lastIndex;
  }
  if (matched !== s.length || matched === 0) return null;
  return Math.round(total);
}

/* Why a typed duration cannot be read, for the field's error; null when it can be. */
export function durationProblem(text) {
  const s = String(text ?? '').trim();
  if (/^\d+(\.\d+)?$/.test(s)) return `Add a unit: ${s} alone is not a duration. Use ${DURATION_FORMS}.`;
  return parseDuration(s) === null ? `Use a duration such as ${DURATION_FORMS}.` : null;
}

/* A wait in milliseconds for people: "0 ms", "850 ms", "4.2 s", "3 min". */
export function formatWait(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  if (ms < 3600000) return `${Math.round(ms / 60000)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

export function formatUptime(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m`;
  return `${Math.floor(seconds)}s`;
}

function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  const d = typeof value === 'number' ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

const dateTimeFormat = new Intl.DateTimeFormat('en-GB', {
  year: 'numeric',
  month: 'short',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

export function formatDateTime(value) {
  const d = toDate(value);
  return d ? dateTimeFormat.format(d) : '—';
}

export function formatClock(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  return d.toLocaleTimeString('en-GB', { hour12: false });
}

export function formatRelative(value) {
  const d = toDate(value);
  if (!d) return '—';
  const diff = (d.getTime() - Date.now()) / 1000;
  const abs = Math.abs(diff);
  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  if (abs < 60) return rtf.format(Math.round(diff), 'second');
  if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour');
  return rtf.format(Math.round(diff / 86400), 'day');
}

/* A value for <input type="datetime-local"> from a Date, in local time. */
export function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(
    date.getMinutes(),
  )}`;
}

/* "Limit", "Mode and Limit", "ID, Limit and Window". */
export function listOf(names) {
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names.join('');
}

export function pluralize(n, one, many = `${one}s`) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

export function capitalize(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : '';
}
