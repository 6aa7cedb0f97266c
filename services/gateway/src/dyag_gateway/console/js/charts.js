// Charts with the vendored Chart.js (console/vendor, no CDN), loaded on the first page that draws one.
import { h } from './dom.js';

let loading = null;

export function loadChartJs() {
  if (window.Chart) return Promise.resolve(window.Chart);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = new URL('../vendor/chart.umd.min.js', import.meta.url).pathname;
      script.onload = () => resolve(window.Chart);
      script.onerror = () => {
        loading = null;
        reject(new Error('the chart library (console/vendor/chart.umd.min.js) did not load'));
      };
      document.head.append(script);
    });
  }
  return loading;
}

export const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#4b5563', '#db2777'];

// A chart in a box of fixed height; the canvas is drawn once the library is loaded. Returns the box; the chart is
// on box.chart once drawn (and box.dataset.chart === 'drawn').
export function chart(config, { height = 260, title = '', label = '' } = {}) {
  const canvas = h('canvas', { role: 'img', 'aria-label': label || title || 'chart' });
  const box = h('figure', { class: 'chart' }, title ? h('figcaption', title) : null, h('div', { class: 'chart-area', style: { height: `${height}px` } }, canvas));
  loadChartJs()
    .then((Chart) => {
      box.chart = new Chart(canvas, withDefaults(config));
      box.dataset.chart = 'drawn';
    })
    .catch((exc) => {
      box.append(h('p', { class: 'error-text' }, exc.message));
      box.dataset.chart = 'failed';
    });
  return box;
}

function withDefaults(config) {
  const options = config.options || {};
  return {
    ...config,
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      ...options,
      plugins: { legend: { display: (config.data.datasets || []).length > 1 }, ...(options.plugins || {}) },
    },
  };
}

const percentAxis = { min: 0, max: 100, ticks: { callback: (v) => `${v} %` } };

// Grouped bars of rates (0..1) shown as percentages: labels on x, one dataset per series.
export function rateBars(labels, series, { title, height, horizontal = false } = {}) {
  const config = {
    type: 'bar',
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.values.map((v) => (v === null || v === undefined ? null : Math.round(v * 1000) / 10)),
        backgroundColor: s.color || PALETTE[i % PALETTE.length],
      })),
    },
    options: {
      indexAxis: horizontal ? 'y' : 'x',
      scales: horizontal ? { x: percentAxis } : { y: percentAxis },
      plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.formattedValue} %` } } },
    },
  };
  return chart(config, { title, height });
}

// Plain bars of values with a unit.
export function valueBars(labels, series, { title, height, unit = '' } = {}) {
  return chart(
    {
      type: 'bar',
      data: {
        labels,
        datasets: series.map((s, i) => ({ label: s.label, data: s.values, backgroundColor: s.color || PALETTE[i % PALETTE.length] })),
      },
      options: {
        scales: { y: { beginAtZero: true, ticks: { callback: (v) => `${v}${unit ? ` ${unit}` : ''}` } } },
      },
    },
    { title, height },
  );
}

// A histogram of values (latencies in ms) per series, on shared bins.
export function histogram(series, { title, height, bins = 12, unit = 'ms' } = {}) {
  const all = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const width = hi > lo ? (hi - lo) / bins : 1;
  const edges = Array.from({ length: bins }, (_, i) => lo + i * width);
  const fmt = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ${unit}`);
  const labels = edges.map((e) => `${fmt(e)}–${fmt(e + width)}`);
  const datasets = series.map((s, i) => {
    const counts = new Array(bins).fill(0);
    for (const v of s.values) {
      if (!Number.isFinite(v)) continue;
      counts[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1;
    }
    return { label: s.label, data: counts, backgroundColor: s.color || PALETTE[i % PALETTE.length] };
  });
  return chart(
    {
      type: 'bar',
      data: { labels, datasets },
      options: {
        scales: { y: { beginAtZero: true, title: { display: true, text: 'questions' }, ticks: { precision: 0 } }, x: { ticks: { maxRotation: 60, autoSkip: true } } },
      },
    },
    { title, height },
  );
}

// A line chart that grows: returns {box, push(x, values)}; values keyed by series label.
export function liveLines(seriesLabels, { title, height = 260, xLabel = 'step' } = {}) {
  const box = chart(
    {
      type: 'line',
      data: {
        labels: [],
        datasets: seriesLabels.map((label, i) => ({ label, data: [], borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length], spanGaps: true, pointRadius: 2, tension: 0 })),
      },
      options: {
        plugins: { legend: { display: true } },
        scales: { x: { title: { display: true, text: xLabel } }, y: { title: { display: true, text: 'loss' } } },
      },
    },
    { title, height },
  );
  const points = new Map(); // x -> {label: value}
  const redraw = () => {
    if (!box.chart) return;
    const xs = [...points.keys()].sort((a, b) => a - b);
    box.chart.data.labels = xs;
    box.chart.data.datasets.forEach((d) => {
      d.data = xs.map((x) => points.get(x)[d.label] ?? null);
    });
    box.chart.update('none');
  };
  const waitDrawn = loadChartJs().then(() => new Promise((resolve) => setTimeout(resolve, 0)));
  return {
    box,
    count: () => points.size,
    push(x, values) {
      const current = points.get(x) || {};
      points.set(x, { ...current, ...values });
      waitDrawn.then(redraw);
    },
  };
}
