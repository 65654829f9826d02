/* A tiny SVG trend of allowed (line) and denied (red) per second. */
export function Sparkline({ points, width = 240, height = 44 }) {
  const max = Math.max(1, ...points.map((p) => Math.max(p.allowed, p.denied + p.shadow_denied)));
  const step = points.length > 1 ? width / (points.length - 1) : width;
  const y = (v) => (height - 2 - (v / max) * (height - 4)).toFixed(1);
  const line = (key) => points.map((p, i) => `${(i * step).toFixed(1)},${y(key(p))}`).join(' ');
  const area = `0,${height} ${line((p) => p.allowed)} ${width},${height}`;
  return (
    <svg className="sparkline" viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" aria-hidden="true" focusable="false">
      <polygon className="spark-area" points={area} />
      <polyline className="spark-allowed" points={line((p) => p.allowed)} />
      <polyline className="spark-denied" points={line((p) => p.denied + p.shadow_denied)} />
    </svg>
  );
}
