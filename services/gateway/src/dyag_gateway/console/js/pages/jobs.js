// Jobs of every service, newest first, 50 a page.
import * as api from '../api.js';
import { badge, h, link, pager, progressBar, replace, route, table, when, loading } from '../dom.js';

const PAGE = 50;

export function jobTable(jobs) {
  return table(
    [
      { label: 'job', cell: (j) => link(route('jobs', j.id), j.id) },
      { label: 'kind', cell: (j) => h('code', j.kind) },
      { label: 'status', cell: (j) => badge(j.status) },
      { label: 'progress', cell: (j) => (j.status === 'running' ? progressBar(j.progress?.fraction, j.progress?.step) : j.error ? h('span', { class: 'error-text' }, j.error.slice(0, 140)) : '') },
      { label: 'created', cell: (j) => when(j.created_at) },
    ],
    jobs,
    { empty: 'no job yet' },
  );
}

export async function render(root, { signal, query, navigate }) {
  const page = Number(query.get('page') || 0);
  const status = query.get('status') || '';
  const kind = query.get('kind') || '';
  const list = h('div', loading());
  const statusSelect = h(
    'select',
    { id: 'job-status', onchange: () => navigate(`#/jobs${api.qs({ status: statusSelect.value, kind })}`) },
    ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => h('option', { value: s, selected: s === status }, s || 'every status')),
  );
  root.append(
    h('div', { class: 'page-head' }, h('h1', 'Jobs'), h('div', { class: 'row' }, h('label', { for: 'job-status' }, 'status'), statusSelect, kind ? h('span', { class: 'tag' }, `kind ${kind}`) : null)),
    h('section', { class: 'card' }, list),
  );
  const reply = await api.get(`/jobs${api.qs({ limit: (page + 1) * PAGE + 1, status, kind })}`, { signal });
  const rows = reply.jobs.slice(page * PAGE, (page + 1) * PAGE);
  const missing = Object.keys(reply.unavailable || {});
  replace(
    list,
    pager({ page, size: PAGE, hasMore: reply.jobs.length > (page + 1) * PAGE, label: 'jobs', onPage: (p) => navigate(`#/jobs${api.qs({ status, kind, page: p || '' })}`) }),
    jobTable(rows),
    missing.length ? h('p', { class: 'muted' }, `Not listed (the service did not answer): ${missing.join(', ')}`) : null,
  );
}
