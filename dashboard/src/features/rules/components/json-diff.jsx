/*
 * Before and after of a rule, side by side, one top-level field per block;
 * the fields that changed are highlighted.
 */
const NOISE = new Set(['version', 'updated_at', 'created_at']);

const ORDER = ['id', 'description', 'match', 'key', 'algorithm', 'limit', 'window_ms', 'burst', 'shape', 'mode', 'priority', 'fail_mode', 'plans', 'version', 'created_at', 'updated_at'];

/* The fields of both documents in the order a rule is read, unknown ones last. */
function fieldsOf(a, b) {
  const keys = [];
  for (const k of Object.keys(a || {})) keys.push(k);
  for (const k of Object.keys(b || {})) if (!keys.includes(k)) keys.push(k);
  const rank = (k) => (ORDER.includes(k) ? ORDER.indexOf(k) : ORDER.length);
  return keys.sort((x, y) => rank(x) - rank(y));
}

export function changedFields(before, after) {
  return fieldsOf(before, after).filter((k) => !NOISE.has(k) && JSON.stringify((before || {})[k]) !== JSON.stringify((after || {})[k]));
}

function Side({ title, doc, other, changed, tone }) {
  if (!doc) {
    return (
      <div className="diff-side">
        <div className="diff-title">{title}</div>
        <div className="diff-none">{tone === 'before' ? 'The rule did not exist.' : 'The rule was deleted.'}</div>
      </div>
    );
  }
  const keys = fieldsOf(doc, other);
  return (
    <div className="diff-side">
      <div className="diff-title">{title}</div>
      <pre className="diff-code">
        {'{\n'}
        {keys
          .filter((k) => k in doc)
          .map((k, i, all) => (
            <span key={k} className={`diff-line ${changed.includes(k) ? `diff-changed diff-${tone}` : ''}`}>
              {`  ${JSON.stringify(k)}: ${JSON.stringify(doc[k], null, 2).replace(/\n/g, '\n  ')}${i < all.length - 1 ? ',' : ''}\n`}
            </span>
          ))}
        {'}'}
      </pre>
    </div>
  );
}

export function JsonDiff({ before, after }) {
  const changed = changedFields(before, after);
  return (
    <div className="diff">
      <Side title="Before" doc={before} other={after} changed={changed} tone="before" />
      <Side title="After" doc={after} other={before} changed={changed} tone="after" />
    </div>
  );
}
