// Catalogs: each at its latest version.
import * as api from '../api.js';
import { h, pager, replace, section, loading } from '../dom.js';
import { catalogTable } from './home.js';

const PAGE = 50;

export async function render(root, { signal, query, navigate }) {
  const page = Number(query.get('page') || 0);
  const list = h('div', loading());
  root.append(
    h('div', { class: 'page-head' }, h('h1', 'Catalogs'), h('a', { class: 'btn primary', href: '#/start' }, 'Upload a catalog')),
    section('Every catalog, at its latest version', list),
  );
  const reply = await api.get('/catalogs', { signal });
  const catalogs = reply.catalogs.slice().sort((a, b) => a.name.localeCompare(b.name));
  replace(
    list,
    catalogs.length > PAGE ? pager({ page, size: PAGE, total: catalogs.length, label: 'catalogs', onPage: (p) => navigate(`#/catalogs${api.qs({ page: p || '' })}`) }) : null,
    catalogTable(catalogs.slice(page * PAGE, (page + 1) * PAGE)),
  );
}
