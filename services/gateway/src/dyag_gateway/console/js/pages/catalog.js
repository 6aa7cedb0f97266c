// A catalog: its profile (fill rate per field, statuses, domains), versions, the diff between two versions (added,
// changed, removed; changed fields highlighted), and its records, 50 a page, searchable.
import * as api from '../api.js';
import { bars, h, kv, num, pager, pct, replace, route, section, short, table, valueText, when, loading } from '../dom.js';

const PAGE = 50;

export function recordView(record) {
  const pairs = Object.entries(record || {})
    .filter(([k]) => k !== 'extra')
    .map(([k, v]) => [k.replace(/_/g, ' '), valueText(v)]);
  for (const [k, v] of Object.entries(record?.extra || {})) pairs.push([`${k} (extra)`, valueText(v)]);
  return kv(pairs, 'record');
}

function fillClass(rate) {
  if (rate === 0) return 'none';
  return rate < 0.5 ? 'low' : '';
}

export async function render(root, { params, query, signal, setTitle }) {
  const name = params.name;
  setTitle(name);
  const version = query.get('version') || '';
  const head = h('div', { class: 'page-head' }, h('h1', name));
  const profileBox = h('div', loading());
  const statusBox = h('div', loading());
  const versionsBox = h('div', loading());
  const diffBox = h('div', { id: 'diff' });
  const recordsBox = h('div', { id: 'records' }, loading());
  root.append(
    head,
    h('div', { class: 'grid-2' }, section('Fill rate per field', profileBox), section('Statuses and domains', statusBox)),
    section('Versions', versionsBox, diffBox),
    section('Records', recordsBox),
  );

  const [catalog, versions, profile] = await Promise.all([
    api.get(`/catalogs/${encodeURIComponent(name)}${api.qs({ version })}`, { signal }),
    api.get(`/catalogs/${encodeURIComponent(name)}/versions`, { signal }),
    api.get(`/catalogs/${encodeURIComponent(name)}/profile${api.qs({ version })}`, { signal }),
  ]);
  const latest = versions.versions[0]?.version;
  replace(
    head,
    h('div', h('h1', name), h('span', { class: 'sub' }, `${num(catalog.entity_count)} applications · version `, h('code', catalog.version), catalog.version === latest ? ' (latest)' : ' (an older version)', ` · ${catalog.source_format || ''} · stored ${when(catalog.created_at)}`)),
    h('div', { class: 'row' }, h('a', { class: 'btn', href: `#/ask${api.qs({ catalog: name })}` }, 'Ask this catalog'), h('a', { class: 'btn primary', href: `#/start${api.qs({ catalog: name })}` }, 'Start a pipeline on it')),
  );

  // --- profile ---
  replace(
    profileBox,
    bars(
      profile.fields.map((f) => ({ label: f.field, value: f.rate, cls: fillClass(f.rate) })),
      { max: 1, format: (v) => pct(v, 0), cls: 'fill-rates' },
    ),
    profile.warnings?.length ? h('ul', { class: 'muted' }, profile.warnings.map((w) => h('li', w))) : null,
    h('details', h('summary', 'By role (the fields Dyag reads)'), bars(profile.roles.map((f) => ({ label: f.field, value: f.rate, cls: fillClass(f.rate) })), { max: 1, format: (v) => pct(v, 0) })),
  );
  const statuses = Object.entries(profile.status_distribution || {}).sort((a, b) => b[1] - a[1]);
  const domains = Object.entries(profile.domain_distribution || {}).sort((a, b) => b[1] - a[1]);
  replace(
    statusBox,
    h('h3', 'Statuses'),
    bars(statuses.map(([label, value]) => ({ label, value })), { format: num, cls: 'statuses' }),
    h('h3', 'Domains'),
    bars(domains.slice(0, 15).map(([label, value]) => ({ label, value })), { format: num }),
    domains.length > 15 ? h('p', { class: 'muted' }, `and ${domains.length - 15} more domains`) : null,
  );

  // --- versions and the diff ---
  const pick = { from: versions.versions[1]?.version || '', to: versions.versions[0]?.version || '' };
  const radios = (which, v) =>
    h('input', {
      type: 'radio',
      name: `diff-${which}`,
      value: v,
      checked: pick[which] === v,
      'aria-label': `${which} ${v}`,
      onchange: () => {
        pick[which] = v;
      },
    });
  replace(
    versionsBox,
    table(
      [
        { label: 'from', cell: (v) => radios('from', v.version) },
        { label: 'to', cell: (v) => radios('to', v.version) },
        { label: 'version', cell: (v) => h('a', { href: `${route('catalogs', name)}?version=${encodeURIComponent(v.version)}` }, h('code', v.version)) },
        { label: 'stored', cell: (v) => when(v.created_at) },
        { label: 'applications', cls: 'num', cell: (v) => num(v.entity_count) },
        { label: 'against the previous', cell: (v) => h('span', { class: 'tags' }, h('span', { class: 'tag diff-added' }, `+${v.added.length}`), h('span', { class: 'tag diff-field-changed' }, `~${v.changed.length}`), h('span', { class: 'tag diff-removed' }, `−${v.removed.length}`)) },
        { label: 'warnings', cls: 'wrap', cell: (v) => (v.warnings || []).join(' ; ') },
      ],
      versions.versions,
    ),
    h(
      'div',
      { class: 'row' },
      h(
        'button',
        {
          type: 'button',
          class: 'btn primary',
          id: 'compare-versions',
          onclick: () => showDiff(pick.from, pick.to, '', 0),
        },
        'Compare the two versions',
      ),
      h('span', { class: 'muted' }, versions.versions.length < 2 ? 'one version only: the diff shows every record as added' : 'pick “from” and “to” above'),
    ),
  );

  const showDiff = async (from, to, kind, page) => {
    replace(diffBox, loading('comparing…'));
    const diff = await api.get(`/catalogs/${encodeURIComponent(name)}/diff${api.qs({ from, to, kind, offset: page * PAGE, limit: PAGE })}`, { signal });
    const tab = (k, label, count) =>
      h('button', { type: 'button', role: 'tab', 'aria-selected': String(kind === k), onclick: () => showDiff(from, to, k, 0) }, `${label} (${num(count)})`);
    const c = diff.counts;
    replace(
      diffBox,
      h('h3', 'Diff ', h('code', diff.from || '(nothing)'), ' → ', h('code', diff.to)),
      h('div', { class: 'tabs', role: 'tablist' }, tab('', 'all', c.added + c.changed + c.removed), tab('added', 'added', c.added), tab('changed', 'changed', c.changed), tab('removed', 'removed', c.removed)),
      pager({ page, size: PAGE, total: diff.total, label: 'changes', onPage: (p) => showDiff(from, to, kind, p) }),
      diff.changes.length ? h('div', { class: 'changes' }, diff.changes.map(changeView)) : h('p', { class: 'empty' }, 'no change'),
    );
  };

  // --- records ---
  const statusSelect = h('select', { id: 'record-status', 'aria-label': 'status' }, h('option', { value: '' }, 'every status'), statuses.map(([s]) => h('option', { value: s }, s)));
  const search = h('input', { type: 'search', id: 'record-search', placeholder: 'search names, long names, descriptions', size: 36 });
  const list = h('div');
  const loadRecords = async (page) => {
    const reply = await api.get(
      `/catalogs/${encodeURIComponent(name)}/entities${api.qs({ version: catalog.version, q: search.value.trim(), status: statusSelect.value, offset: page * PAGE, limit: PAGE })}`,
      { signal },
    );
    replace(
      list,
      pager({ page, size: PAGE, total: reply.total, label: 'records', onPage: (p) => loadRecords(p) }),
      table(
        [
          { label: 'id', cell: (r) => h('code', String(r.id)) },
          { label: 'name', cell: (r) => h('details', { class: 'record-details' }, h('summary', h('span', { class: 'record-name' }, r.name || '–')), recordView(r)) },
          { label: 'long name', cls: 'wrap', cell: (r) => r.long_name || '' },
          { label: 'status', cell: (r) => r.status || '–' },
          { label: 'description', cls: 'wrap', cell: (r) => short(r.description || '', 140) },
        ],
        reply.entities,
        { empty: 'no record matches', cls: 'records' },
      ),
    );
  };
  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => loadRecords(0), 250);
  });
  statusSelect.addEventListener('change', () => loadRecords(0));
  replace(recordsBox, h('div', { class: 'row' }, search, statusSelect), list);
  await loadRecords(0);
}

function changeView(change) {
  const title = h('div', { class: 'row' }, h('span', { class: ['change-kind', `diff-${change.kind === 'changed' ? 'field-changed' : change.kind}`] }, change.kind), h('code', String(change.id)), h('strong', change.name || ''), change.long_name ? h('span', { class: 'muted' }, change.long_name) : null);
  if (change.kind !== 'changed') {
    return h('div', { class: ['change', `diff-${change.kind}`], dataset: { kind: change.kind, id: change.id } }, title, h('details', h('summary', 'the record'), recordView(change.record)));
  }
  return h(
    'div',
    { class: 'change', dataset: { kind: 'changed', id: change.id } },
    title,
    table(
      [
        { label: 'field', cell: (f) => h('strong', f.field.replace(/_/g, ' ')) },
        { label: 'before', cls: 'wrap', cell: (f) => h('span', { class: 'diff-before' }, valueText(f.before)) },
        { label: 'after', cls: 'wrap', cell: (f) => h('span', { class: 'diff-after' }, valueText(f.after)) },
      ],
      change.fields,
      { cls: 'field-diff', rowAttrs: () => ({ class: 'diff-field-changed' }) },
    ),
  );
}
