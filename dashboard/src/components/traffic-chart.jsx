/*
 * Allowed, denied and (unless shadow is false) shadow-denied per second, live. Animation is
 * off: the chart is redrawn every second and must not wobble. notLiveSince
 * (a clock time) marks the figures as stopped: no update since then;
 * nothingReceived marks an empty chart as no reading at all.
 */
import { useMemo } from 'react';
import { Line } from 'react-chartjs-2';
import { Chart } from '../lib/chart.js';
import { formatClock, formatNumber } from '../utils/format.js';

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function TrafficChart({ points, height = 280, label = 'Requests per second', theme, notLiveSince = null, nothingReceived = false, shadow = true }) {
  const stale = !!notLiveSince || nothingReceived;
  const colors = useMemo(
    () => ({
      allowed: cssVar('--chart-allowed', '#3552d6'),
      allowedFill: cssVar('--chart-allowed-fill', 'rgba(53,82,214,0.10)'),
      denied: cssVar('--chart-denied', '#d03b36'),
      shadow: cssVar('--chart-shadow', '#c27c0e'),
      grid: cssVar('--chart-grid', '#eceef2'),
      text: cssVar('--text-muted', '#5b6475'),
    }),
    [theme], // eslint-disable-line react-hooks/exhaustive-deps
  );

  const data = useMemo(
    () => ({
      labels: points.map((p) => formatClock(p.t)),
      datasets: [
        {
          label: 'Allowed',
          data: points.map((p) => p.allowed),
          borderColor: colors.allowed,
          backgroundColor: colors.allowedFill,
          fill: 'origin',
          borderWidth: 1.6,
          pointRadius: 0,
          tension: 0.25,
        },
        {
          label: 'Denied',
          data: points.map((p) => p.denied),
          borderColor: colors.denied,
          backgroundColor: colors.denied,
          borderWidth: 1.6,
          pointRadius: 0,
          tension: 0.25,
        },
        ...(shadow
          ? [
              {
                label: 'Shadow denied',
                data: points.map((p) => p.shadow_denied),
                borderColor: colors.shadow,
                backgroundColor: colors.shadow,
                borderDash: [4, 3],
                borderWidth: 1.4,
                pointRadius: 0,
                tension: 0.25,
              },
            ]
          : []),
      ],
    }),
    [points, colors, shadow],
  );

  const options = useMemo(
    () => ({
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: {
          position: 'top',
          align: 'end',
          labels: {
            boxWidth: 10,
            boxHeight: 10,
            usePointStyle: true,
            pointStyle: 'rectRounded',
            color: colors.text,
            font: { size: 12 },
            // Each swatch in its line's colour: Allowed's faint area fill would read as a series switched off.
            generateLabels: (chart) =>
              Chart.defaults.plugins.legend.labels
                .generateLabels(chart)
                .map((item) => ({ ...item, fillStyle: item.strokeStyle })),
          },
        },
        tooltip: {
          callbacks: { label: (ctx) => ` ${ctx.dataset.label}: ${formatNumber(ctx.parsed.y)}/s` },
        },
      },
      scales: {
        x: {
          grid: { display: false },
          border: { color: colors.grid },
          // No maxTicksLimit: Chart.js then skips labels by their width, so they never overlap on a phone.
          ticks: { color: colors.text, maxRotation: 0, autoSkip: true, autoSkipPadding: 40, font: { size: 11 } },
        },
        y: {
          beginAtZero: true,
          suggestedMax: 5,
          grid: { color: colors.grid },
          border: { display: false },
          ticks: { color: colors.text, precision: 0, maxTicksLimit: 5, font: { size: 11 } },
        },
      },
    }),
    [colors],
  );

  const sums = points.reduce(
    (acc, p) => ({ allowed: acc.allowed + p.allowed, denied: acc.denied + p.denied }),
    { allowed: 0, denied: 0 },
  );

  return (
    <div
      className={`chart-box ${stale ? 'chart-stale' : ''}`}
      data-height={height}
      data-live={stale ? 'false' : 'true'}
      data-allowed-sum={sums.allowed}
      data-denied-sum={sums.denied}
      data-testid="traffic-chart"
    >
      <Line
        data={data}
        options={options}
        role="img"
        aria-label={`${label}: ${formatNumber(sums.allowed)} allowed and ${formatNumber(sums.denied)} denied in the window shown`}
      />
      {stale && (
        <div className="chart-stale-note" role="status">
          {nothingReceived ? 'Not live · no figures received yet' : `Not live · no update since ${notLiveSince}`}
        </div>
      )}
    </div>
  );
}
