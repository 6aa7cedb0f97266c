// Ask: a question about a catalog, answered by its champion (POST /catalogs/{name}/ask) or by RAG
// (POST /rag/{collection}/query, mode grounded, auto or generative); the answer, its cited records and fields, the time.
import * as api from '../api.js';
import { h, ms, replace, section, loading } from '../dom.js';

const MODES = [
  ['champion', 'the catalog’s champion'],
  ['grounded', 'the records only (grounded, with citations)'],
  ['auto', 'auto (the records when understood, else the model)'],
  ['generative', 'the model over retrieved chunks (generative)'],
];

export async function render(root, { signal, query }) {
  const [catalogReply, collectionReply] = await Promise.all([api.get('/catalogs', { signal }), api.get('/rag', { signal })]);
  const catalogs = catalogReply.catalogs.map((c) => c.name).sort();
  const collections = collectionReply.collections || [];
  const wanted = query.get('catalog');
  const catalogSelect = h('select', { id: 'ask-catalog', name: 'catalog' }, catalogs.map((c) => h('option', { value: c, selected: c === wanted }, c)));
  const modeSelect = h('select', { id: 'ask-mode', name: 'mode' }, MODES.map(([v, label]) => h('option', { value: v }, label)));
  const collectionSelect = h('select', { id: 'ask-collection', name: 'collection' });
  const championNote = h('span', { class: 'muted', id: 'champion-note' });
  const question = h('textarea', { id: 'question', name: 'question', required: true, maxlength: 2000, placeholder: 'e.g. Quel est le statut de FLORAMAP ? Qui gère 6Tzen et où le trouver ?' });
  const button = h('button', { type: 'submit', class: 'btn primary', id: 'ask-button' }, 'Ask');
  const answers = h('div', { id: 'answers' });
  const champions = new Map();

  const refresh = async () => {
    const catalog = catalogSelect.value;
    const mine = collections.filter((c) => c.catalog === catalog || c.collection === catalog || c.name === catalog);
    const names = (mine.length ? mine : collections).map((c) => c.collection || c.name).filter(Boolean);
    replace(collectionSelect, names.map((n) => h('option', { value: n, selected: n === catalog }, n)));
    if (!champions.has(catalog)) {
      const book = await api.get(`/catalogs/${encodeURIComponent(catalog)}/champion`, { signal }).catch((exc) => {
        if (exc.name === 'AbortError') throw exc;
        return {};
      });
      champions.set(catalog, book.aliases?.champion || null);
    }
    const champion = champions.get(catalog);
    championNote.textContent = champion ? `champion: ${champion.label || `${champion.kind}:${champion.id}`}` : 'no champion yet: RAG answers';
    modeSelect.querySelector('option[value="champion"]').disabled = !champion;
    if (!champion && modeSelect.value === 'champion') modeSelect.value = 'grounded';
    if (champion && !modeSelect.dataset.touched) modeSelect.value = 'champion';
    collectionSelect.disabled = modeSelect.value === 'champion';
  };
  modeSelect.addEventListener('change', () => {
    modeSelect.dataset.touched = '1';
    collectionSelect.disabled = modeSelect.value === 'champion';
  });
  catalogSelect.addEventListener('change', refresh);

  const form = h(
    'form',
    {
      class: 'ask-form',
      onsubmit: async (event) => {
        event.preventDefault();
        const text = question.value.trim();
        if (!text) return;
        button.disabled = true;
        const pending = h('div', { class: 'qa' }, h('p', h('strong', text)), loading('thinking…'));
        answers.prepend(pending);
        const started = performance.now();
        try {
          const catalog = catalogSelect.value;
          const mode = modeSelect.value;
          const reply =
            mode === 'champion'
              ? await api.post(`/catalogs/${encodeURIComponent(catalog)}/ask`, { question: text }, { signal })
              : await api.post(`/rag/${encodeURIComponent(collectionSelect.value || catalog)}/query`, { question: text, mode }, { signal });
          replace(pending, answerView(text, reply, mode, performance.now() - started));
        } catch (exc) {
          if (exc.name === 'AbortError') return;
          replace(pending, h('p', h('strong', text)), h('p', { class: 'error-text' }, `${exc.code ? `${exc.code}: ` : ''}${exc.message}`));
        } finally {
          button.disabled = false;
        }
      },
    },
    h('div', { class: 'form-grid' }, h('div', { class: 'field' }, h('label', { for: 'ask-catalog' }, 'catalog'), catalogSelect, championNote), h('div', { class: 'field' }, h('label', { for: 'ask-mode' }, 'answered by'), modeSelect), h('div', { class: 'field' }, h('label', { for: 'ask-collection' }, 'RAG collection'), collectionSelect)),
    h('div', { class: 'field' }, h('label', { for: 'question' }, 'question'), question),
    h('div', { class: 'row' }, button, h('span', { class: 'muted' }, 'Ctrl+Enter asks')),
  );
  question.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  root.append(h('div', { class: 'page-head' }, h('h1', 'Ask')), section('A question about a catalog', catalogs.length ? form : h('p', { class: 'empty' }, 'no catalog yet: upload one from "Start the workflow"')), answers);
  if (catalogs.length) await refresh();
}

function answerView(question, reply, mode, elapsedMs) {
  const sources = reply.sources || [];
  const citations = reply.citations || [];
  const serverMs = reply.timings?.total_ms ?? (reply.seconds !== undefined ? reply.seconds * 1000 : null);
  return [
    h('p', h('strong', question)),
    h('div', { class: 'answer', id: 'answer' }, reply.answer || '(no answer)'),
    citations.length
      ? h('div', h('h3', 'Cited records and fields'), h('div', { class: 'citations' }, citations.map((c) => h('span', { class: 'citation', dataset: { entity: c.entity_id || '', field: c.field || '' } }, `[${c.entity_id}] ${c.entity_name || ''}${c.field ? ` · ${c.field}` : ''}`))))
      : null,
    sources.length
      ? h('div', h('h3', 'Sources'), h('div', { class: 'citations' }, sources.map((s) => h('span', { class: 'citation source', dataset: { entity: s.entity_id || '' } }, `[${s.entity_id}] ${s.entity_name || ''}${s.cited ? ' ✓' : ''}`))))
      : null,
    h(
      'p',
      { class: 'muted timing' },
      `answered by ${mode === 'champion' ? `the champion (${reply.model || reply.champion?.kind || ''})` : `RAG in ${reply.mode || mode} mode`}`,
      ` · ${ms(elapsedMs)} in the browser`,
      serverMs !== null ? ` · ${ms(serverMs)} on the server` : '',
      reply.confidence !== undefined && reply.confidence !== null ? ` · confidence ${Number(reply.confidence).toFixed(2)}` : '',
    ),
    (reply.notes || []).length ? h('ul', { class: 'muted' }, reply.notes.map((n) => h('li', n))) : null,
  ];
}
