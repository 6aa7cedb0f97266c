// Home: the stack's health (each service, NATS), recent pipelines and jobs, the catalogs.
import * as api from '../api.js';
import { badge, h, link, num, route, section, table, when, replace, loading } from '../dom.js';
import { pipelineTable } from './pipelines.js';
import { jobTable } from './jobs.js';

export async function render(root, { signal }) {
  const health = h('div', loading());
  const pipelines = h('div', loading());
  const jobs = h('div', loading());
  const catalogs = h('div', loading());
  root.append(
    h('div', { class: 'page-head' }, h('h1', 'Dyag'), h('span', { class: 'sub' }, 'from an application catalog to a measured question-answering assistant')),
    h('div', { class: 'grid' }, section('Stack health', health), section('Catalogs', catalogs, h('p', link('#/start', 'Upload a catalog and start the workflow →')))),
    section('Recent pipelines', pipelines, h('p', link('#/pipelines', 'All pipelines →'))),
    section('Recent jobs', jobs, h('p', link('#/jobs', 'All jobs →'))),
  );
  await Promise.all([
    api.get('/readyz', { signal, accept: [503] }).then((ready) => replace(health, healthView(ready))),
    api.get('/pipelines?limit=10', { signal }).then((r) => replace(pipelines, pipelineTable(r.pipelines))),
    api.get('/jobs?limit=10', { signal }).then((r) => replace(jobs, jobTable(r.jobs), unavailable(r.unavailable))),
    api.get('/catalogs', { signal }).then((r) => replace(catalogs, catalogTable(r.catalogs))),
  ].map((p) => p.catch((exc) => { if (exc.name === 'AbortError') throw exc; })));
}

function healthView(ready) {
  const rows = Object.entries(ready.services || {}).map(([name, state]) => ({ name, state }));
  rows.push({ name: 'NATS JetStream', state: ready.nats });
  return [
    h('p', badge(ready.status === 'ready' ? 'ready' : 'not_ready', ready.status === 'ready' ? 'ready' : 'not ready'), ' ', h('span', { class: 'muted' }, `${rows.length - 1} services behind the gateway`)),
    table(
      [
        { label: 'service', cell: (r) => r.name },
        { label: 'state', cell: (r) => badge(r.state) },
      ],
      rows,
      { cls: 'health' },
    ),
  ];
}

export function catalogTable(catalogs) {
  return table(
    [
      { label: 'catalog', cell: (c) => link(route('catalogs', c.name), c.name) },
      { label: 'applications', cls: 'num', cell: (c) => num(c.entity_count) },
      { label: 'version', cell: (c) => h('code', c.version) },
      { label: 'stored', cell: (c) => when(c.created_at) },
    ],
    catalogs,
    { empty: 'no catalog yet: upload one from "Start the workflow"' },
  );
}

function unavailable(services) {
  const names = Object.keys(services || {});
  return names.length ? h('p', { class: 'muted' }, `Not listed (the service did not answer): ${names.join(', ')}`) : null;
}
