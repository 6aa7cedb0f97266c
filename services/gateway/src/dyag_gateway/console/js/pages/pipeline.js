// A pipeline: its step timeline, live over GET /pipelines/{id}/events; each step's job (progress, logs, metrics); the
// loss curve while the training runs; at the end, the comparison.
import * as api from '../api.js';
import { badge, duration, h, kv, link, progressBar, replace, route, section, when, loading } from '../dom.js';
import { artifactList, jobPanel, loadLossHistory, lossCurve, metricChips } from '../jobpanel.js';
import { renderComparison } from '../comparison.js';

const ENDED = new Set(['succeeded', 'failed', 'cancelled']);

function resultText(value) {
  if (Array.isArray(value)) return value.every((v) => typeof v !== 'object') ? value.join(' ; ') : JSON.stringify(value);
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.every(([, v]) => v === null || typeof v !== 'object')) return entries.map(([k, v]) => `${k.replace(/_/g, ' ')} ${v ?? '–'}`).join(' · ');
    return JSON.stringify(value);
  }
  return String(value);
}

function resultPairs(result) {
  return Object.entries(result || {})
    .filter(([k, v]) => k !== 'markdown' && v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => [k.replace(/_/g, ' '), resultText(v)]);
}

function stepHead(step) {
  const active = step.status === 'running' || step.status === 'queued';
  return [
    h('span', { class: 'step-num' }, String(step.number ?? '')),
    h('span', { class: 'step-title' }, step.title || step.name, h('small', `${step.name} · ${step.service || 'gateway'}`)),
    h('span', { class: 'step-status' }, badge(step.status)),
    h(
      'span',
      { class: 'step-progress' },
      active && step.job_id
        ? progressBar(step.progress?.fraction, `${step.progress?.step || step.status}${step.progress?.eta_seconds > 0 ? ` · ${duration(step.progress.eta_seconds)} left` : ''}`)
        : step.error
          ? h('span', { class: 'error-text' }, step.error)
          : h('span', { class: 'step-note' }, step.note || ''),
    ),
    h('span', { class: 'step-time' }, step.elapsed_s !== null && step.elapsed_s !== undefined ? duration(step.elapsed_s) : ''),
  ];
}

export async function render(root, { params, signal, setTitle }) {
  const id = params.id;
  const head = h('div', { class: 'page-head' }, h('h1', id));
  const summary = h('div', loading());
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const lossBox = h('div');
  const comparisonBox = h('div', { id: 'comparison' });
  const logsBox = h('pre', { class: 'logs mono' });
  const paramsBox = h('div');
  const live = h('span', { class: 'live', id: 'live', dataset: { state: 'connecting' } }, 'connecting…');
  root.append(
    head,
    h('section', { class: 'card' }, summary, h('div', { class: 'row' }, live)),
    section('Steps', timeline),
    lossBox,
    comparisonBox,
    h('div', { class: 'grid-2' }, section('Pipeline log', logsBox), section('Parameters', paramsBox)),
  );

  const steps = new Map(); // name -> {li, headRow, body, status, panel}
  let curve = null;
  let historyAsked = false;
  let comparisonShown = false;
  let cancelButton = null;

  const ensureCurve = (pipeline) => {
    const train = pipeline.steps.find((s) => s.name === 'train');
    if (!train || train.status === 'skipped' || curve) return;
    curve = lossCurve({ title: '' });
    replace(
      lossBox,
      section(
        'Training loss',
        h('p', { class: 'muted' }, 'Drawn while the training runs, from the job’s progress (each logging step).'),
        curve.box,
        h('div', { class: 'loss-final' }),
      ),
    );
  };

  const updateStep = (step) => {
    let entry = steps.get(step.name);
    if (!entry) {
      const headRow = h('div', { class: 'step-head' });
      const body = h('div', { class: 'step-body' });
      const details = h('details', { class: 'step-details' }, h('summary', 'details'), body);
      const li = h('li', { class: 'step', dataset: { step: step.name } }, headRow, details);
      entry = { li, headRow, body, details, status: null, panel: null };
      details.addEventListener('toggle', () => {
        if (details.open && entry.jobId && !entry.panel) {
          entry.panel = jobPanel(entry.jobId, { signal });
          entry.body.append(entry.panel);
        }
      });
      steps.set(step.name, entry);
      timeline.append(li);
    }
    entry.li.dataset.status = step.status;
    replace(entry.headRow, stepHead(step));
    if (entry.status !== step.status || entry.jobId !== step.job_id) {
      entry.status = step.status;
      entry.jobId = step.job_id;
      const panel = entry.panel;
      replace(
        entry.body,
        kv([
          ['started', when(step.started_at)],
          ['ended', when(step.ended_at)],
          step.queued_s ? ['queued', duration(step.queued_s)] : null,
          step.job_id ? ['job', link(route('jobs', step.job_id), step.job_id)] : null,
          ...resultPairs(step.result),
        ]),
        metricChips(step.progress?.metrics),
        step.job_id ? null : artifactList(step.artifacts), // a job's panel lists them
        panel,
      );
      if (!step.job_id) entry.details.hidden = !Object.keys(step.result || {}).length && !step.started_at;
      else entry.details.hidden = false;
    }
    if (step.name === 'train' && curve) {
      if (step.status === 'running') curve.feed(step.progress?.metrics);
      const metrics = step.result?.metrics;
      const final = lossBox.querySelector('.loss-final');
      if (final && metrics) replace(final, metricChips(metrics));
      const over = !['pending', 'queued', 'running'].includes(step.status);
      if (over && curve.count() < 2 && !historyAsked) {
        historyAsked = true; // ended before this page followed it: the model keeps the whole curve
        const note = lossBox.querySelector('.muted');
        curve.box.hidden = true;
        loadLossHistory(curve, step.result?.model_id, { signal }).then(
          (drawn) => {
            curve.box.hidden = !drawn;
            if (note) note.textContent = drawn ? 'The whole run, from the model’s record (each logging step and evaluation).' : 'No curve was recorded for this run. This run:';
          },
          () => {},
        );
      }
    }
  };

  const show = async (pipeline) => {
    setTitle(pipeline.name || pipeline.id);
    root.dataset.status = pipeline.status;
    replace(
      head,
      h('div', h('h1', pipeline.name || pipeline.id), h('span', { class: 'sub mono' }, pipeline.name ? pipeline.id : '')),
      h('div', { class: 'row' }, badge(pipeline.status), pipeline.stalled ? badge('warn', 'stalled: waiting for a gateway to resume it') : null, cancelButton),
    );
    replace(
      summary,
      h(
        'div',
        { class: 'stats' },
        stat('catalog', pipeline.catalog ? link(route('catalogs', pipeline.catalog), pipeline.catalog) : '–'),
        stat('version', h('code', pipeline.catalog_version || '–')),
        stat('started', when(pipeline.created_at)),
        stat(ENDED.has(pipeline.status) ? 'took' : 'running for', duration(pipeline.elapsed_s)),
        pipeline.attempts > 1 ? stat('attempts', String(pipeline.attempts)) : null,
      ),
      ENDED.has(pipeline.status) ? null : progressBar(pipeline.progress?.fraction, pipeline.progress?.step),
      pipeline.error ? h('p', { class: 'error-text' }, `${pipeline.failed_step ? `step ${pipeline.failed_step}: ` : ''}${pipeline.error}`) : null,
    );
    ensureCurve(pipeline);
    for (const step of pipeline.steps) updateStep(step);
    logsBox.textContent = (pipeline.logs || []).map((l) => `${(l.time || '').slice(11, 19)} ${l.message}`).join('\n') || '(nothing yet)';
    if (!Object.keys(paramsBox.dataset).length) {
      paramsBox.dataset.shown = '1';
      replace(paramsBox, kv(Object.entries(pipeline.params || {}).map(([k, v]) => [k.replace(/_/g, ' '), v === null ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v)])));
    }
    if (!ENDED.has(pipeline.status) && !cancelButton) {
      cancelButton = h(
        'button',
        {
          type: 'button',
          class: 'btn danger',
          onclick: async () => {
            cancelButton.disabled = true;
            try {
              await api.post(`/pipelines/${encodeURIComponent(id)}/cancel`, {});
            } catch {
              cancelButton.disabled = false;
            }
          },
        },
        'Cancel',
      );
    }
    if (ENDED.has(pipeline.status)) cancelButton?.remove();
    if (pipeline.report && !comparisonShown) {
      comparisonShown = true;
      await showComparison(pipeline);
    }
  };

  const showComparison = async (pipeline) => {
    const body = h('div', loading('loading the comparison…'));
    const download = h(
      'button',
      {
        type: 'button',
        class: 'btn small',
        onclick: async () => {
          const blob = await api.get(`/pipelines/${encodeURIComponent(id)}/report.html`, { as: 'blob' });
          const a = h('a', { download: `${id}-comparison.html` });
          a.href = URL.createObjectURL(blob);
          a.click();
          setTimeout(() => URL.revokeObjectURL(a.href), 5000);
        },
      },
      'Download the HTML report',
    );
    const runs = pipeline.report.run_ids || [];
    replace(
      comparisonBox,
      h(
        'section',
        { class: 'card', id: 'comparison-card' },
        h('div', { class: 'page-head' }, h('h2', 'Comparison'), h('div', { class: 'row' }, runs.length ? h('a', { class: 'btn small', href: `#/evaluations${api.qs({ runs: runs.join(',') })}` }, 'Open in Evaluations') : null, download)),
        body,
      ),
    );
    try {
      const report = await api.get(`/pipelines/${encodeURIComponent(id)}/report.json`, { signal });
      replace(body);
      await renderComparison(body, report, { runIds: runs, names: pipeline.report.names || [], signal });
    } catch (exc) {
      if (exc.name === 'AbortError') throw exc;
      replace(body, h('p', { class: 'error-text' }, `the comparison could not be loaded: ${exc.message}`));
    }
  };

  const first = await api.get(`/pipelines/${encodeURIComponent(id)}`, { signal });
  await show(first);
  if (ENDED.has(first.status)) {
    live.dataset.state = 'ended';
    live.textContent = '';
    return;
  }
  // Live: the stream starts with the current view, then one each time a step or its job changes, until the end.
  let pending = Promise.resolve();
  api
    .stream(
      `/pipelines/${encodeURIComponent(id)}/events`,
      (name, data) => {
        if (name === 'pipeline') pending = pending.then(() => show(data)).catch(() => {});
      },
      {
        signal,
        onState: (state) => {
          live.dataset.state = state;
          live.textContent = { live: 'live', reconnecting: 'reconnecting…', ended: '', stopped: 'not live' }[state] ?? '';
        },
      },
    )
    .catch(() => {});
}

function stat(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'k' }, label), h('div', { class: 'v' }, value));
}
