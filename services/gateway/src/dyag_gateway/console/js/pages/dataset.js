// A dataset: counts per split, question type and application; the validator's report and checklist; its examples,
// 50 a page, each with its provenance (applications, fields, template, key facts).
import * as api from '../api.js';
import { badge, bars, h, kv, link, num, pager, replace, route, section, table, when, loading } from '../dom.js';

const PAGE = 50;

function jsonl(text) {
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line));
}

// Names of a catalog version's records, asked for by id, kept for the page.
function nameBook(catalog, version, signal) {
  const names = new Map();
  return {
    names,
    async load(ids) {
      const missing = [...new Set(ids.map(String))].filter((id) => !names.has(id));
      for (let i = 0; i < missing.length; i += 100) {
        const chunk = missing.slice(i, i + 100); // ids= holds at most 4,500 characters
        const reply = await api.get(`/catalogs/${encodeURIComponent(catalog)}/entities${api.qs({ version, ids: chunk.join(','), limit: 500 })}`, { signal, quiet: true }).catch(() => ({ entities: [] }));
        for (const id of chunk) names.set(id, id);
        for (const e of reply.entities) names.set(String(e.id), e.name || String(e.id));
      }
    },
    name: (id) => names.get(String(id)) || String(id),
  };
}

export async function render(root, { params, signal, setTitle }) {
  const id = params.id;
  setTitle(id);
  const dataset = await api.get(`/datasets/${encodeURIComponent(id)}`, { signal });
  const book = nameBook(dataset.catalog, dataset.catalog_version, signal);
  const splits = ['train', 'validation', 'test'].filter((s) => dataset.split_counts?.[s]);
  const entityBox = h('div', loading());
  const validatorBox = h('div', { id: 'validator' });
  const examplesBox = h('div', { id: 'examples' });
  const types = Object.entries(dataset.type_counts || {}).sort((a, b) => b[1] - a[1]);
  root.append(
    h(
      'div',
      { class: 'page-head' },
      h('div', h('h1', id), h('span', { class: 'sub' }, 'from ', link(route('catalogs', dataset.catalog), dataset.catalog), ' version ', h('code', dataset.catalog_version), ` · built ${when(dataset.created_at)}`)),
    ),
    dataset.warnings?.length ? h('section', { class: 'card' }, h('h2', 'Warnings'), h('ul', dataset.warnings.map((w) => h('li', w)))) : null,
    h(
      'div',
      { class: 'grid' },
      section(
        'Per split',
        bars(['train', 'validation', 'test'].map((s) => ({ label: s, value: dataset.split_counts?.[s] || 0 })), { format: num }),
        h('p', { class: 'muted' }, `${num(dataset.split_counts?.all)} examples in all`),
        dataset.plan?.formula ? h('p', { class: 'muted' }, `plan: ${dataset.plan.formula}`) : null,
        dataset.base_dataset_id ? h('p', 'incremental build from ', link(route('datasets', dataset.base_dataset_id), dataset.base_dataset_id), `: ${num(dataset.regenerated_examples)} examples made anew`) : null,
      ),
      section('Per question type', bars(types.map(([label, value]) => ({ label: label.replace(/_/g, ' '), value })), { format: num })),
      section('Per application', entityBox),
    ),
    section('Validator', validatorBox),
    section('Examples', examplesBox),
  );

  // --- the validator: POST /datasets/{id}/validate (the guide's checks on one split, against the catalog) ---
  const splitSelect = h('select', { id: 'validate-split', 'aria-label': 'split' }, splits.map((s) => h('option', { value: s }, s)));
  const report = h('div');
  const run = h(
    'button',
    {
      type: 'button',
      class: 'btn primary',
      id: 'run-validator',
      onclick: async () => {
        run.disabled = true;
        replace(report, loading('validating…'));
        try {
          const result = await api.post(`/datasets/${encodeURIComponent(id)}/validate${api.qs({ split: splitSelect.value })}`, undefined, { signal });
          replace(report, validationView(result));
        } catch (exc) {
          if (exc.name !== 'AbortError') replace(report, h('p', { class: 'error-text' }, exc.message));
        } finally {
          run.disabled = false;
        }
      },
    },
    'Run the validator',
  );
  replace(validatorBox, h('div', { class: 'row' }, h('label', { for: 'validate-split' }, 'split'), splitSelect, run, h('span', { class: 'muted' }, 'format, tokens, duplicates, coverage of the catalog, personal data, cost, and the guide’s checklist')), report);

  // --- examples, with their provenance ---
  const files = {};
  const readSplit = async (split) => {
    if (!files[split]) {
      const [chat, manifest] = await Promise.all([
        api.get(`/datasets/${encodeURIComponent(id)}/files/${split}/openai`, { signal, as: 'text' }),
        api.get(`/datasets/${encodeURIComponent(id)}/files/${split}/manifest`, { signal, as: 'text' }),
      ]);
      const rows = jsonl(chat);
      const provenance = jsonl(manifest);
      files[split] = rows.map((row, i) => {
        const messages = row.messages || [];
        return {
          line: i + 1,
          question: messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n'),
          answer: messages.filter((m) => m.role === 'assistant').map((m) => m.content).join('\n'),
          ...(provenance[i] || {}),
        };
      });
    }
    return files[split];
  };
  const state = { split: splits[0] || 'train', type: '', q: '', page: 0 };
  const typeSelect = h('select', { id: 'example-type', 'aria-label': 'question type' }, h('option', { value: '' }, 'every type'), types.map(([t]) => h('option', { value: t }, t.replace(/_/g, ' '))));
  const search = h('input', { type: 'search', id: 'example-search', placeholder: 'search questions and answers', size: 30 });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const list = h('div');
  const showExamples = async () => {
    replace(tabs, splits.map((s) => h('button', { type: 'button', role: 'tab', 'aria-selected': String(s === state.split), onclick: () => Object.assign(state, { split: s, page: 0 }) && showExamples() }, `${s} (${num(dataset.split_counts[s])})`)));
    replace(list, loading());
    const all = await readSplit(state.split);
    const words = state.q.toLowerCase();
    const selected = all.filter((e) => (!state.type || e.type === state.type) && (!words || `${e.question}\n${e.answer}`.toLowerCase().includes(words)));
    const shown = selected.slice(state.page * PAGE, (state.page + 1) * PAGE);
    await book.load(shown.flatMap((e) => e.entity_ids || []));
    replace(
      list,
      pager({ page: state.page, size: PAGE, total: selected.length, label: 'examples', onPage: (p) => { state.page = p; showExamples(); } }),
      h('div', { class: 'examples' }, shown.map((e) => exampleView(e, book, dataset.catalog))),
    );
  };
  typeSelect.addEventListener('change', () => Object.assign(state, { type: typeSelect.value, page: 0 }) && showExamples());
  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => Object.assign(state, { q: search.value.trim(), page: 0 }) && showExamples(), 250);
  });
  replace(examplesBox, tabs, h('div', { class: 'row' }, typeSelect, search), list);
  await showExamples();

  // --- per application: from the whole dataset's provenance ---
  try {
    const manifest = jsonl(await api.get(`/datasets/${encodeURIComponent(id)}/files/all/manifest`, { signal, as: 'text' }));
    const counts = new Map();
    for (const row of manifest) for (const e of new Set(row.entity_ids || [])) counts.set(String(e), (counts.get(String(e)) || 0) + 1);
    const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    const showEntities = async (page) => {
      const shown = ranked.slice(page * 15, (page + 1) * 15);
      await book.load(shown.map(([e]) => e));
      replace(
        entityBox,
        h('p', { class: 'muted' }, `${num(ranked.length)} applications asked about`),
        bars(shown.map(([e, n]) => ({ label: book.name(e), value: n })), { format: num, max: ranked[0]?.[1] || 1 }),
        ranked.length > 15 ? pager({ page, size: 15, total: ranked.length, label: 'applications', onPage: showEntities }) : null,
      );
    };
    await showEntities(0);
  } catch (exc) {
    if (exc.name === 'AbortError') throw exc;
    replace(entityBox, h('p', { class: 'muted' }, `no provenance file: ${exc.message}`));
  }
}

function exampleView(e, book, catalog) {
  return h(
    'div',
    { class: 'example', dataset: { line: e.line, type: e.type || '' } },
    h('div', { class: 'q' }, e.question),
    h('div', { class: 'a' }, e.answer),
    h(
      'div',
      { class: 'tags' },
      h('span', { class: 'tag' }, `#${e.line}`),
      e.type ? h('span', { class: 'tag' }, `type ${e.type}`) : null,
      e.negative ? badge('warn', 'negative') : null,
      (e.entity_ids || []).map((id) => h('a', { class: 'tag', href: `${route('catalogs', catalog)}`, title: `record ${id}` }, `${book.name(id)} (${id})`)),
      (e.fields || []).map((f) => h('span', { class: 'tag' }, `field ${f}`)),
      e.template ? h('span', { class: 'tag' }, `template ${e.template}`) : null,
    ),
    e.key_facts?.length ? h('div', { class: 'muted' }, `key facts: ${e.key_facts.join(' · ')}`) : null,
  );
}

export function validationView(result) {
  const r = result.report || {};
  return h(
    'div',
    { class: 'validation' },
    h('p', badge(result.blocking?.length ? 'failed' : 'succeeded', `verdict: ${result.verdict}`), ' ', `${num(r.examples)} examples, ${num(r.invalid_lines)} invalid lines, coverage ${r.coverage?.percent ?? '–'} %`),
    result.blocking?.length ? h('div', h('h3', 'Blocking'), h('ul', result.blocking.map((b) => h('li', { class: 'error-text' }, typeof b === 'string' ? b : JSON.stringify(b))))) : null,
    h('h3', 'Checklist'),
    table(
      [
        { label: 'check', cls: 'wrap', cell: (c) => c.label },
        { label: 'expected', cell: (c) => c.expected },
        { label: 'measured', cls: 'wrap', cell: (c) => c.measured },
        { label: '', cell: (c) => badge(c.status === 'pass' ? 'pass' : c.status === 'warn' ? 'warn' : 'fail', c.status) },
      ],
      r.checklist || [],
      { cls: 'checklist' },
    ),
    r.recommendations?.length ? [h('h3', 'Recommendations'), h('ul', r.recommendations.map((x) => h('li', x)))] : null,
    kv([
      r.pii ? ['personal data', r.pii.verdict] : null,
      r.duplicates ? ['duplicates', `${num(r.duplicates.exact_duplicates)} exact, ${num(r.duplicates.near_duplicates)} near, ${num(r.duplicates.question_duplicates)} repeated questions`] : null,
      r.tokens?.per_example ? ['tokens per example', `mean ${Math.round(r.tokens.per_example.mean)} · p95 ${Math.round(r.tokens.per_example.p95)} · max ${r.tokens.per_example.max}`] : null,
      r.cost ? ['hosted training cost', r.cost.cost_usd !== null && r.cost.cost_usd !== undefined ? `$${Number(r.cost.cost_usd).toFixed(2)} (${r.cost.model}, ${r.cost.epochs} epochs)` : '–'] : null,
    ]),
    result.text ? h('details', h('summary', 'The report as text'), h('pre', result.text)) : null,
  );
}
