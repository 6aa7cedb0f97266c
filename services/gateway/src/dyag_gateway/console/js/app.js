// The console's shell: the key gate, the navigation, the error banner and a tiny hash router (#/page/param?query).
import * as api from './api.js';
import { h, replace } from './dom.js';

const PAGES = {
  '': { module: './pages/home.js', nav: 'home', title: 'Home' },
  start: { module: './pages/start.js', nav: 'start', title: 'Start the workflow' },
  pipelines: { module: './pages/pipelines.js', nav: 'pipelines', title: 'Pipelines' },
  'pipelines/:id': { module: './pages/pipeline.js', nav: 'pipelines', title: 'Pipeline' },
  catalogs: { module: './pages/catalogs.js', nav: 'catalogs', title: 'Catalogs' },
  'catalogs/:name': { module: './pages/catalog.js', nav: 'catalogs', title: 'Catalog' },
  datasets: { module: './pages/datasets.js', nav: 'datasets', title: 'Datasets' },
  'datasets/:id': { module: './pages/dataset.js', nav: 'datasets', title: 'Dataset' },
  models: { module: './pages/models.js', nav: 'models', title: 'Models and exports' },
  evaluations: { module: './pages/evaluations.js', nav: 'evaluations', title: 'Evaluations' },
  ask: { module: './pages/ask.js', nav: 'ask', title: 'Ask' },
  jobs: { module: './pages/jobs.js', nav: 'jobs', title: 'Jobs' },
  'jobs/:id': { module: './pages/job.js', nav: 'jobs', title: 'Job' },
};

const NAV = [
  ['home', '#/', 'Home'],
  ['start', '#/start', 'Start the workflow'],
  ['pipelines', '#/pipelines', 'Pipelines'],
  ['catalogs', '#/catalogs', 'Catalogs'],
  ['datasets', '#/datasets', 'Datasets'],
  ['models', '#/models', 'Models and exports'],
  ['evaluations', '#/evaluations', 'Evaluations'],
  ['ask', '#/ask', 'Ask'],
  ['jobs', '#/jobs', 'Jobs'],
];

const view = document.getElementById('view');
const banner = document.getElementById('banner');
const nav = document.getElementById('nav');
const keyBox = document.getElementById('key');
let current = null; // {controller}

function parse(hash) {
  const text = hash.replace(/^#\/?/, '');
  const [path, query = ''] = text.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const [pattern, page] of Object.entries(PAGES)) {
    const want = pattern ? pattern.split('/') : [];
    if (want.length !== parts.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(':') ? ((params[w.slice(1)] = parts[i]), true) : w === parts[i]))) {
      return { page, params, query: new URLSearchParams(query), pattern };
    }
  }
  return null;
}

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

// --- the banner: API errors, as the gateway worded them -------------------------------------------------------------
function showError(error, path) {
  const code = error.code ? `${error.code}: ` : '';
  const item = h(
    'div',
    { class: 'banner-item', role: 'alert', dataset: { code: error.code || '', status: error.status ?? '' } },
    h('strong', error.status ? `Error ${error.status}` : 'Error'),
    ' ',
    h('span', { class: 'banner-message' }, `${code}${error.message}`),
    path ? h('span', { class: 'banner-path' }, ` (${path.split('?')[0]})`) : null,
    error.status === 401 ? h('button', { type: 'button', class: 'btn small', onclick: () => gate('The gateway refused the key: enter another one.') }, 'Enter another key') : null,
    h('button', { type: 'button', class: 'banner-close', 'aria-label': 'dismiss', onclick: () => item.remove() }, '×'),
  );
  banner.append(item);
  while (banner.children.length > 4) banner.firstElementChild.remove();
}

api.on('error', showError);

// --- the key gate -------------------------------------------------------------------------------------------------
function renderKey() {
  const info = api.keyInfo();
  if (!api.getKey()) {
    replace(keyBox);
    return;
  }
  replace(
    keyBox,
    h('span', { class: 'key-name', title: 'the API key this browser session uses' }, info && info.name ? `key: ${info.name}${info.id ? ` (${info.id})` : ''}` : 'API key set'),
    info && info.scopes && info.scopes.length ? h('span', { class: 'key-scopes' }, ` · ${info.scopes.join(', ')}`) : null,
    h('button', { type: 'button', class: 'btn small ghost', onclick: () => gate() }, 'Change key'),
  );
}

function gate(message = '') {
  if (current) current.controller.abort();
  current = null;
  api.forgetKey();
  renderKey();
  replace(banner);
  nav.hidden = true;
  const input = h('input', { type: 'password', id: 'api-key', name: 'api-key', autocomplete: 'off', required: true, placeholder: 'the API key', size: 48 });
  const note = h('p', { class: 'gate-message', id: 'gate-message', role: 'status' }, message);
  const form = h(
    'form',
    {
      class: 'card gate',
      onsubmit: async (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        button.disabled = true;
        note.className = 'gate-message';
        note.textContent = 'checking the key…';
        try {
          const verdict = await api.useKey(key);
          if (verdict.accepted) {
            start();
            return;
          }
          note.className = 'gate-message error-text';
          note.textContent = `The gateway refused this key — ${verdict.error?.message || 'it is not a key it accepts'} (${verdict.error?.code || 'invalid_api_key'}).`;
        } catch (exc) {
          note.className = 'gate-message error-text';
          note.textContent = `The gateway did not answer: ${exc.message}`;
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h1', 'Dyag console'),
    h('p', 'Enter an API key. It is kept for this browser session only (sessionStorage) and sent with every request, as every client sends it (X-API-Key).'),
    h('p', { class: 'muted' }, '`dyag up` writes one to DYAG_HOME/api-key (~/.dyag/api-key); an admin creates others with `dyag keys create`.'),
    h('label', { for: 'api-key' }, 'API key'),
    h('div', { class: 'row' }, input, null),
    note,
  );
  const button = h('button', { type: 'submit', class: 'btn primary', id: 'use-key' }, 'Use this key');
  form.querySelector('.row').append(button);
  replace(view, form);
  document.body.dataset.page = 'gate';
  document.body.dataset.ready = 'gate';
  input.focus();
}

// --- the router ---------------------------------------------------------------------------------------------------
async function show() {
  if (!api.getKey()) {
    gate();
    return;
  }
  nav.hidden = false;
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { controller };
  replace(banner);
  const match = parse(location.hash || '#/');
  for (const a of nav.querySelectorAll('a')) {
    if (match && a.dataset.nav === match.page.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  delete document.body.dataset.ready;
  if (!match) {
    document.body.dataset.page = 'not-found';
    replace(view, h('section', { class: 'card' }, h('h1', 'No such page'), h('p', 'This address is not a page of the console. '), h('a', { href: '#/' }, 'Home')));
    document.body.dataset.ready = 'not-found';
    return;
  }
  document.title = `${match.page.title} · Dyag`;
  document.body.dataset.page = match.page.nav;
  const root = h('div', { class: 'page' });
  replace(view, root);
  const started = performance.now();
  try {
    const module = await import(match.page.module);
    await module.render(root, {
      params: match.params,
      query: match.query,
      signal: controller.signal,
      navigate,
      setTitle: (title) => {
        document.title = `${title} · Dyag`;
      },
    });
  } catch (exc) {
    if (exc.name === 'AbortError' || controller.signal.aborted) return;
    if (!(exc instanceof api.ApiError)) showError(new api.ApiError(0, 'console_error', exc.message || String(exc)));
    root.append(h('p', { class: 'error-text' }, `This page could not be shown: ${exc.message}`));
  }
  if (controller.signal.aborted) return;
  performance.mark(`dyag:ready:${match.pattern || 'home'}`, { detail: { ms: performance.now() - started } });
  document.body.dataset.ready = match.page.nav;
}

function start() {
  renderKey();
  show();
}

replace(
  nav,
  NAV.map(([id, href, text]) => h('a', { href, dataset: { nav: id } }, text)),
);
window.addEventListener('hashchange', show);
api.on('unauthorized', () => renderKey());
start();
