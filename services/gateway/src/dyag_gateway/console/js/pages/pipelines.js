// Pipelines, newest first, 50 a page, by status.
import * as api from '../api.js';
import { badge, duration, h, link, pager, progressBar, replace, route, table, when, loading } from '../dom.js';

const PAGE = 50;

export function stepDots(steps) {
  return h(
    'span',
    { class: 'tags' },
    Object.entries(steps || {}).map(([name, status]) => h('span', { title: `${name}: ${status}` }, badge(status, name.replace(/_/g, ' ')))),
  );
}

export function pipelineTable(pipelines) {
  return table(
    [
      { label: 'pipeline', cell: (p) => [link(route('pipelines', p.id), p.name || p.id), p.name ? h('div', { class: 'muted mono' }, p.id) : null] },
      { label: 'catalog', cell: (p) => (p.catalog ? link(route('catalogs', p.catalog), p.catalog) : '–') },
      { label: 'status', cell: (p) => badge(p.status) },
      { label: 'progress', cell: (p) => (p.status === 'running' ? progressBar(p.progress?.fraction, p.progress?.step) : stepDots(p.steps)) },
      { label: 'started', cell: (p) => when(p.created_at) },
      { label: 'took', cls: 'num', cell: (p) => duration(p.elapsed_s) },
    ],
    pipelines,
    { empty: 'no pipeline yet: start one from "Start the workflow"' },
  );
}

export async function render(root, { signal, query, navigate }) {
  const page = Number(query.get('page') || 0);
  const status = query.get('status') || '';
  const list = h('div', loading());
  const select = h(
    'select',
    {
      id: 'status-filter',
      onchange: () => navigate(`#/pipelines${api.qs({ status: select.value })}`),
    },
    ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => h('option', { value: s, selected: s === status }, s || 'every status')),
  );
  root.append(
    h('div', { class: 'page-head' }, h('h1', 'Pipelines'), h('div', { class: 'row' }, h('label', { for: 'status-filter' }, 'status'), select, h('a', { class: 'btn primary', href: '#/start' }, 'Start a pipeline'))),
    h('section', { class: 'card' }, list),
  );
  const load = async () => {
    const reply = await api.get(`/pipelines${api.qs({ limit: (page + 1) * PAGE + 1, status })}`, { signal });
    const rows = reply.pipelines.slice(page * PAGE, (page + 1) * PAGE);
    const go = (p) => navigate(`#/pipelines${api.qs({ status, page: p || '' })}`);
    replace(list, pager({ page, size: PAGE, hasMore: reply.pipelines.length > (page + 1) * PAGE, onPage: go, label: 'pipelines' }), pipelineTable(rows));
  };
  await load();
}
