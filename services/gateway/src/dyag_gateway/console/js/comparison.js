// The comparison of evaluation runs (a pipeline's report, or POST /evaluations/compare): the recommendation, the
// guide's 6.2 table with deltas, charts (accuracy, hallucinations, abstention; accuracy per question type; the latency
// distribution) and the 7.2 decision table.
import * as api from './api.js';
import { badge, h, ms, pct, table } from './dom.js';
import { histogram, rateBars, valueBars } from './charts.js';

function delta(value) {
  if (value === null || value === undefined) return '';
  const pts = value * 100;
  return `${pts >= 0 ? '+' : ''}${pts.toFixed(1)} pts`;
}

// Each run's full result (results.json: by type, every question's latency), fetched in parallel.
export async function runResults(runIds, signal) {
  return Promise.all(runIds.map((id) => (id ? api.get(`/evaluations/${encodeURIComponent(id)}/report.json`, { signal }).catch((exc) => { if (exc.name === 'AbortError') throw exc; return null; }) : null)));
}

export function summaryTable(comparison, names) {
  const latency = {
    label: 'Latency (mean)',
    latency: true,
    values: comparison.average_generation_time_ms || [],
    improvements: comparison.latency_improvement || [],
  };
  const cell = (r, i) => {
    if (r.latency) {
      const gain = r.improvements[i];
      const note = gain === null || gain === undefined ? null : `${gain >= 0 ? '−' : '+'}${Math.abs(gain * 100).toFixed(1)} %`;
      return [ms(r.values[i]), note ? h('div', { class: 'muted' }, note) : null];
    }
    const d = r.deltas ? r.deltas[i] : null;
    return [pct(r.values[i]), d === null || d === undefined ? null : h('div', { class: 'muted' }, delta(d))];
  };
  return table(
    [{ label: 'metric', cell: (r) => r.label }, ...names.map((name, i) => ({ label: name, cls: 'num', cell: (r) => cell(r, i) }))],
    [...(comparison.table || []), latency],
    { cls: 'comparison-table' },
  );
}

export function decisionTable(rows) {
  return table(
    [
      { label: 'situation', cell: (r) => [r.situation, r.this_catalog ? h('div', badge('ok', 'this catalog')) : null] },
      { label: 'guide advice', cls: 'wrap', cell: (r) => [r.guide_advice, r.details ? h('div', { class: 'muted' }, r.details) : null] },
      { label: 'approach', cell: (r) => h('code', r.approach) },
      {
        label: 'measured',
        cell: (r) =>
          r.measured
            ? h('span', `${pct(r.measured.accuracy)} accuracy · ${pct(r.measured.hallucination_rate)} hallucinations · p50 ${ms(r.measured.latency_p50_ms)}`)
            : h('span', { class: 'muted' }, 'not measured'),
      },
    ],
    rows || [],
    { cls: 'decision-table' },
  );
}

// Charts of N runs' results: rates per target, accuracy per question type, latency distribution.
export function runCharts(names, results, approaches = []) {
  const charts = [];
  const have = results.map((r, i) => [names[i], r]).filter(([, r]) => r);
  if (!have.length && !approaches.length) return h('p', { class: 'empty' }, 'no results to chart');
  const labels = have.map(([n]) => n);
  const rate = (key) => have.map(([, r]) => r[key] ?? null);
  if (have.length) {
    charts.push(
      rateBars(
        ['accuracy', 'key facts', 'hallucinations', 'abstention (negatives)'],
        have.map(([name, r]) => ({ label: name, values: [r.accuracy, r.fact_accuracy, r.hallucination_rate, r.abstention_rate] })),
        { title: 'Accuracy, hallucinations and abstention', height: 260 },
      ),
    );
    const types = [...new Set(have.flatMap(([, r]) => Object.keys(r.by_type || {})))].sort();
    if (types.length) {
      charts.push(
        rateBars(
          types.map((t) => t.replace(/_/g, ' ')),
          have.map(([name, r]) => ({ label: name, values: types.map((t) => (r.by_type?.[t] ? r.by_type[t].accuracy : null)) })),
          { title: 'Accuracy per question type', height: Math.max(260, 22 * types.length * Math.max(1, have.length * 0.6)), horizontal: true },
        ),
      );
    }
    charts.push(
      histogram(
        have.map(([name, r]) => ({ label: name, values: (r.results || []).map((q) => q.latency_ms).filter((v) => typeof v === 'number') })),
        { title: 'Latency distribution (per question)', height: 260 },
      ),
    );
    charts.push(
      valueBars(labels, [
        { label: 'p50', values: rate('latency_p50_ms').map((v) => (v === null ? null : Math.round(v))) },
        { label: 'p95', values: rate('latency_p95_ms').map((v) => (v === null ? null : Math.round(v))) },
      ], { title: 'Latency p50 / p95', unit: 'ms', height: 220 }),
    );
  }
  return h('div', { class: 'grid-2 charts' }, charts);
}

// The whole comparison block.
export async function renderComparison(container, comparison, { runIds = [], names = [], signal } = {}) {
  const labels = names.length ? names : (comparison.targets || []).map((t) => t.name);
  const tableNode = summaryTable(comparison, labels);
  const chartsBox = h('div', h('p', { class: 'loading' }, 'loading the runs’ results…'));
  container.append(
    h(
      'div',
      { class: 'comparison' },
      h('p', { class: 'recommendation' }, comparison.meets_success_criteria ? badge('ok', 'meets the success criteria') : badge('warn', 'short of the success criteria'), ' ', h('strong', comparison.recommended ? `Recommended: ${comparison.recommended}. ` : ''), comparison.recommendation || ''),
      (comparison.success_shortfalls || []).length ? h('ul', (comparison.success_shortfalls || []).map((s) => h('li', s))) : null,
      (comparison.warnings || []).length ? h('ul', { class: 'muted' }, comparison.warnings.map((w) => h('li', w))) : null,
      h('h3', 'The guide’s 6.2 table (Δ against the baseline)'),
      tableNode,
      h('h3', 'Charts'),
      chartsBox,
      h('h3', 'The guide’s 7.2 decision table, with measured figures'),
      decisionTable(comparison.decision_table),
    ),
  );
  const results = await runResults(runIds, signal);
  chartsBox.replaceChildren(runCharts(labels, results, comparison.approaches));
}
