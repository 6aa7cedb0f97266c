// Built datasets, newest first, 50 a page.
import * as api from '../api.js';
import { h, link, num, pager, replace, route, section, table, when, loading } from '../dom.js';

const PAGE = 50;

export function datasetTable(datasets) {
  return table(
    [
      { label: 'dataset', cell: (d) => link(route('datasets', d.id), d.id) },
      { label: 'catalog', cell: (d) => link(route('catalogs', d.catalog), d.catalog) },
      { label: 'version', cell: (d) => h('code', d.catalog_version) },
      { label: 'train', cls: 'num', cell: (d) => num(d.split_counts?.train) },
      { label: 'validation', cls: 'num', cell: (d) => num(d.split_counts?.validation) },
      { label: 'test', cls: 'num', cell: (d) => num(d.split_counts?.test) },
      { label: 'built', cell: (d) => when(d.created_at) },
      { label: '', cell: (d) => (d.base_dataset_id ? h('span', { class: 'tag' }, `incremental from ${d.base_dataset_id}`) : '') },
    ],
    datasets,
    { empty: 'no dataset yet: a pipeline builds one' },
  );
}

export async function render(root, { signal, query, navigate }) {
  const page = Number(query.get('page') || 0);
  const catalog = query.get('catalog') || '';
  const list = h('div', loading());
  root.append(h('div', { class: 'page-head' }, h('h1', 'Datasets'), catalog ? h('span', { class: 'tag' }, `catalog ${catalog}`) : null), section('Built datasets, newest first', list));
  const reply = await api.get(`/datasets${api.qs({ catalog })}`, { signal });
  const rows = reply.datasets;
  replace(
    list,
    pager({ page, size: PAGE, total: rows.length, label: 'datasets', onPage: (p) => navigate(`#/datasets${api.qs({ catalog, page: p || '' })}`) }),
    datasetTable(rows.slice(page * PAGE, (page + 1) * PAGE)),
  );
}
