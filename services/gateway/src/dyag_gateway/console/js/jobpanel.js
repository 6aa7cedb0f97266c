// One job: status, progress, metrics, result, artifacts and its logs, live (GET /jobs/{id}/events) until it ends.
import * as api from './api.js';
import { badge, duration, h, kv, progressBar, replace, when } from './dom.js';
import { liveLines } from './charts.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export function metricChips(metrics) {
  const entries = Object.entries(metrics || {}).filter(([, v]) => v !== null && v !== undefined && typeof v !== 'object');
  if (!entries.length) return null;
  return h(
    'div',
    { class: 'metrics' },
    entries.map(([k, v]) => h('span', { class: 'metric' }, `${k.replace(/_/g, ' ')} ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v}`)),
  );
}

export function artifactList(artifacts) {
  if (!artifacts || !artifacts.length) return null;
  return h(
    'ul',
    { class: 'artifacts' },
    artifacts.map((a) => h('li', h('code', a.name), ' ', h('span', { class: 'muted' }, `${Number(a.size || 0).toLocaleString()} bytes · ${a.digest?.slice(0, 19)}…`))),
  );
}

// A loss curve fed with {step, loss, eval_loss} as progress reports them.
// The progress keeps the last evaluation's loss at every later step: a point is drawn where it changes only.
export function lossCurve({ title = 'Training loss' } = {}) {
  const curve = liveLines(['loss', 'eval loss'], { title, xLabel: 'step' });
  curve.box.classList.add('loss-curve');
  let lastEval = null;
  return {
    box: curve.box,
    count: curve.count,
    feed(metrics) {
      if (!metrics || metrics.step === undefined || metrics.step === null) return;
      const values = {};
      if (typeof metrics.loss === 'number') values.loss = metrics.loss;
      if (typeof metrics.eval_loss === 'number' && metrics.eval_loss !== lastEval) {
        lastEval = metrics.eval_loss;
        values['eval loss'] = metrics.eval_loss;
      }
      if (Object.keys(values).length) curve.push(Number(metrics.step), values);
    },
    // A finished training's whole curve, from its model's record (loss_history).
    history(points) {
      for (const p of points || []) this.feed(p);
    },
  };
}

// The curve of a training that ended, read once from its model; false when there is none to draw.
export async function loadLossHistory(curve, modelId, { signal } = {}) {
  if (!modelId) return false;
  try {
    const model = await api.get(`/models/${encodeURIComponent(modelId)}`, { signal, quiet: true });
    curve.history(model.loss_history);
  } catch (exc) {
    if (exc.name === 'AbortError') throw exc;
  }
  return curve.count() >= 2;
}

// The panel; `job` may be given (a pipeline step's mirror of it) or is fetched.
export function jobPanel(jobId, { signal, withLogs = true } = {}) {
  const head = h('div', h('p', { class: 'loading' }, 'loading the job…'));
  const logs = h('pre', { class: 'logs mono' }, '…');
  const live = h('span', { class: 'live', dataset: { state: 'connecting' } }, '');
  let curve = null;
  let historyAsked = false;
  const curveBox = h('div');
  const box = h(
    'div',
    { class: 'job-panel', dataset: { job: jobId } },
    h('div', { class: 'row' }, h('a', { href: `#/jobs/${encodeURIComponent(jobId)}` }, jobId), live),
    head,
    curveBox,
    withLogs ? [h('h3', 'Logs'), logs] : null,
  );
  let lastLogs = 0;
  const refreshLogs = async (force = false) => {
    if (!withLogs) return;
    const now = Date.now();
    if (!force && now - lastLogs < 2500) return;
    lastLogs = now;
    try {
      const reply = await api.get(`/jobs/${encodeURIComponent(jobId)}/logs?tail=300`, { signal, quiet: true });
      logs.textContent = reply.lines.length ? reply.lines.map((l) => `${l.time ? `${l.time.slice(11, 19)} ` : ''}${l.level ? `${l.level} ` : ''}${l.message}`).join('\n') : '(no log line)';
      logs.scrollTop = logs.scrollHeight;
    } catch (exc) {
      if (exc.name !== 'AbortError') logs.textContent = `logs unavailable: ${exc.message}`;
    }
  };
  const show = (job) => {
    if (job.kind === 'train.lora' && !curve) {
      curve = lossCurve();
      curveBox.append(curve.box);
    }
    if (curve) {
      if (job.status === 'running') curve.feed(job.progress?.metrics);
      if (TERMINAL.has(job.status) && curve.count() < 2 && !historyAsked) {
        historyAsked = true; // the run ended before this page followed it: its model keeps the curve
        loadLossHistory(curve, job.result?.model_id, { signal }).then((drawn) => { curve.box.hidden = !drawn; }, () => {});
      }
      curve.box.hidden = TERMINAL.has(job.status) && curve.count() < 2;
    }
    replace(
      head,
      h('div', { class: 'row' }, badge(job.status), h('code', job.kind), h('span', { class: 'muted' }, `on ${job.service}`), job.attempts > 1 ? h('span', { class: 'tag' }, `attempt ${job.attempts}`) : null),
      job.status === 'running' || job.status === 'queued' ? progressBar(job.progress?.fraction, `${job.progress?.step || job.status}${job.progress?.eta_seconds > 0 ? ` · ${duration(job.progress.eta_seconds)} left` : ''}`) : null,
      metricChips(job.progress?.metrics),
      job.error ? h('p', { class: 'error-text' }, job.error) : null,
      kv([
        ['created', when(job.created_at)],
        ['updated', when(job.updated_at)],
        job.result && Object.keys(job.result).length ? ['result', h('details', h('summary', 'show'), h('pre', JSON.stringify(job.result, null, 2)))] : null,
        job.artifacts?.length ? ['artifacts', artifactList(job.artifacts)] : null,
      ]),
    );
  };
  (async () => {
    try {
      const job = await api.get(`/jobs/${encodeURIComponent(jobId)}`, { signal });
      show(job);
      refreshLogs(true);
      if (TERMINAL.has(job.status)) {
        live.dataset.state = 'ended';
        return;
      }
      await api.stream(
        `/jobs/${encodeURIComponent(jobId)}/events`,
        (name, data) => {
          if (name === 'job') {
            show(data);
            refreshLogs(TERMINAL.has(data.status));
          }
        },
        {
          signal,
          onState: (state) => {
            live.dataset.state = state;
            live.textContent = state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : '';
          },
        },
      );
      refreshLogs(true);
    } catch (exc) {
      if (exc.name !== 'AbortError') replace(head, h('p', { class: 'error-text' }, exc.message));
    }
  })();
  return box;
}
