// Evaluation runs, 50 a page; runs side by side: accuracy per question type, hallucinations, abstention, the latency
// distribution as charts, the decision table (POST /evaluations/compare), every question's answers.
import * as api from '../api.js';
import { badge, h, ms, pager, pct, replace, section, short, table, when, loading } from '../dom.js';
import { renderComparison, runCharts, runResults } from '../comparison.js';

const PAGE = 50;

function targetLabel(run) {
  const t = run.target || {};
  const what = t.collection || t.model || '';
  return `${t.kind || '?'}${t.rag_mode ? ` (${t.rag_mode})` : ''}${what ? `:${what}` : ''}`;
}

export async function render(root, { signal, query, navigate }) {
  const page = Number(query.get('page') || 0);
  const chosen = (query.get('runs') || '').split(',').filter(Boolean);
  const selected = new Set(chosen);
  const list = h('div', loading());
  const side = h('div', { id: 'side-by-side' });
  const compareButton = h(
    'button',
    { type: 'button', class: 'btn primary', id: 'compare-runs', onclick: () => navigate(`#/evaluations${api.qs({ runs: [...selected].join(','), page: page || '' })}`) },
    'Side by side',
  );
  const count = h('span', { class: 'muted' });
  const refreshCount = () => {
    count.textContent = `${selected.size} selected`;
    compareButton.disabled = !selected.size;
  };
  refreshCount();
  root.append(
    h('div', { class: 'page-head' }, h('h1', 'Evaluations'), h('div', { class: 'row' }, count, compareButton)),
    side,
    section('Runs, newest first', list),
  );
  const reply = await api.get(`/evaluations${api.qs({ limit: (page + 1) * PAGE + 1 })}`, { signal });
  const runs = reply.evaluations.slice(page * PAGE, (page + 1) * PAGE);
  replace(
    list,
    pager({ page, size: PAGE, hasMore: reply.evaluations.length > (page + 1) * PAGE, label: 'runs', onPage: (p) => navigate(`#/evaluations${api.qs({ runs: chosen.join(','), page: p || '' })}`) }),
    table(
      [
        {
          label: '',
          cell: (r) =>
            h('input', {
              type: 'checkbox',
              'aria-label': `select ${r.id}`,
              checked: selected.has(r.id),
              disabled: r.status !== 'succeeded',
              onchange: (event) => {
                if (event.target.checked) selected.add(r.id);
                else selected.delete(r.id);
                refreshCount();
              },
            }),
        },
        { label: 'run', cell: (r) => [h('strong', r.name || r.id), h('div', { class: 'muted mono' }, r.id)] },
        { label: 'target', cell: (r) => [targetLabel(r), r.model ? h('div', { class: 'muted' }, r.model) : null] },
        { label: 'status', cell: (r) => badge(r.status) },
        { label: 'accuracy', cls: 'num', cell: (r) => pct(r.summary?.accuracy) },
        { label: 'halluc.', cls: 'num', cell: (r) => pct(r.summary?.hallucination_rate) },
        { label: 'abstention', cls: 'num', cell: (r) => pct(r.summary?.abstention_rate) },
        { label: 'p50', cls: 'num', cell: (r) => ms(r.summary?.latency_p50_ms) },
        { label: 'questions', cls: 'num', cell: (r) => String(r.summary?.questions ?? '–') },
        { label: 'test set', cell: (r) => [r.test_set || '', r.dataset_id ? h('div', { class: 'muted' }, r.dataset_id) : null] },
        { label: 'when', cell: (r) => when(r.created_at) },
      ],
      runs,
      { empty: 'no evaluation yet: a pipeline evaluates its targets', cls: 'runs' },
    ),
  );
  if (chosen.length) await sideBySide(side, chosen, signal);
}

async function sideBySide(box, runIds, signal) {
  const body = h('div', loading('loading the runs…'));
  replace(box, h('section', { class: 'card' }, h('h2', `Side by side: ${runIds.length} run${runIds.length > 1 ? 's' : ''}`), body));
  const runs = await Promise.all(runIds.map((id) => api.get(`/evaluations/${encodeURIComponent(id)}`, { signal })));
  const names = runs.map((r) => r.name || r.id);
  replace(body);
  let compared = false;
  try {
    const comparison = await api.post('/evaluations/compare', { run_ids: runIds }, { signal, quiet: true });
    await renderComparison(body, comparison.comparison, { runIds, names: comparison.names?.length ? comparison.names : names, signal });
    compared = true;
  } catch (exc) {
    if (exc.name === 'AbortError') throw exc;
    body.append(h('p', { class: 'muted' }, `No decision table: ${exc.message}`));
  }
  const results = await runResults(runIds, signal);
  if (!compared) body.append(runCharts(names, results));
  body.append(h('h3', 'Every question'), questionTable(names, results));
}

function questionTable(names, results) {
  const byId = new Map();
  results.forEach((r, i) => {
    for (const q of r?.results || []) {
      const key = q.id || q.question;
      if (!byId.has(key)) byId.set(key, { question: q.question, expected: q.expected, type: q.type, answers: [] });
      byId.get(key).answers[i] = q;
    }
  });
  const rows = [...byId.values()];
  const box = h('div');
  const show = (page) =>
    replace(
      box,
      pager({ page, size: PAGE, total: rows.length, label: 'questions', onPage: show }),
      table(
        [
          { label: 'question', cls: 'wrap', cell: (r) => [h('strong', r.question), h('div', { class: 'muted' }, `expected: ${short(r.expected, 300)}`), h('span', { class: 'tag' }, r.type || '')] },
          ...names.map((name, i) => ({
            label: name,
            cls: 'wrap',
            cell: (r) => {
              const a = r.answers[i];
              if (!a) return h('span', { class: 'muted' }, 'not asked');
              return [
                badge(a.correct ? 'pass' : 'fail', a.correct ? 'correct' : a.reason_code || 'wrong'),
                ' ',
                h('span', { class: 'muted' }, ms(a.latency_ms)),
                h('div', short(a.got || a.error || '', 400)),
                (a.hallucinations || []).length ? h('div', { class: 'error-text' }, `hallucinations: ${a.hallucinations.map((x) => (typeof x === 'string' ? x : x.rule || JSON.stringify(x))).join(', ')}`) : null,
              ];
            },
          })),
        ],
        rows.slice(page * PAGE, (page + 1) * PAGE),
        { cls: 'questions' },
      ),
    );
  show(0);
  return box;
}
