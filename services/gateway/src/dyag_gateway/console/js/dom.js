// DOM helpers. Everything that comes from the API is put on the page as text (text nodes, textContent,
// setAttribute on plain attributes): never as HTML, so catalog content is always shown escaped.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(node, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(node, c);
  } else if (child instanceof Node) {
    node.append(child);
  } else {
    node.append(document.createTextNode(String(child)));
  }
}

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      node.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    } else if (key === 'style') {
      for (const [k, v] of Object.entries(value)) node.style.setProperty(k, String(v));
    } else if (key === 'value' || key === 'checked' || key === 'selected' || key === 'disabled') {
      node[key] = value;
    } else if (key === 'href') {
      node.setAttribute('href', safeHref(value));
    } else {
      if (/^on/i.test(key)) throw new Error(`refusing the attribute ${key}`);
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

// Only the console's own routes, its own files and API paths are links.
export function safeHref(value) {
  const text = String(value);
  return text.startsWith('#') || text.startsWith('/') ? text : '#';
}

export function h(tag, attrs, ...children) {
  if (attrs instanceof Node || typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (/^on/i.test(key)) throw new Error(`refusing the attribute ${key}`);
    node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function replace(node, ...children) {
  clear(node);
  append(node, children);
  return node;
}

// --- formatting ----------------------------------------------------------------------------------------------------

export function pct(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '–';
  return `${(Number(value) * 100).toFixed(digits)} %`;
}

export function ms(value) {
  if (value === null || value === undefined) return '–';
  const v = Number(value);
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 100) return `${Math.round(v)} ms`;
  return `${v.toFixed(1)} ms`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds === '') return '–';
  const s = Number(seconds);
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function when(value) {
  if (!value) return '–';
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function num(value) {
  if (value === null || value === undefined || value === '') return '–';
  const n = Number(value);
  return Number.isNaN(n) ? String(value) : n.toLocaleString();
}

export function short(text, max = 120) {
  const s = String(text ?? '');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// A value of a record (string, number, list of objects…) as readable text.
export function valueText(value) {
  if (value === null || value === undefined || value === '') return '–';
  if (Array.isArray(value)) {
    if (!value.length) return '–';
    return value.map((v) => (typeof v === 'object' && v !== null ? objectText(v) : String(v))).join(' ; ');
  }
  if (typeof value === 'object') return objectText(value);
  return String(value);
}

function objectText(obj) {
  return Object.entries(obj)
    .filter(([, v]) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(', ');
}

// --- small components ----------------------------------------------------------------------------------------------

const STATUS_CLASS = {
  ok: 'ok', succeeded: 'ok', serving: 'ok', connected: 'ok', ready: 'ok', pass: 'ok', passed: 'ok', promoted: 'ok',
  running: 'run', queued: 'wait', pending: 'wait',
  failed: 'bad', interrupted: 'bad', disconnected: 'bad', not_ready: 'bad', fail: 'bad', rejected: 'bad',
  cancelled: 'off', skipped: 'off', blocked: 'off', warn: 'warn',
};

export function badge(status, text) {
  const s = String(status ?? '');
  const cls = STATUS_CLASS[s] || (s.startsWith('unreachable') || s.startsWith('not_serving') ? 'bad' : 'neutral');
  return h('span', { class: ['badge', `b-${cls}`], dataset: { status: s } }, text ?? s.replace(/_/g, ' '));
}

export function progressBar(fraction, label) {
  const f = Math.max(0, Math.min(1, Number(fraction) || 0));
  return h(
    'div',
    { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(f * 100) },
    h('div', { class: 'progress-fill', style: { width: `${(f * 100).toFixed(1)}%` } }),
    h('span', { class: 'progress-label' }, label ?? `${Math.round(f * 100)} %`),
  );
}

// Horizontal bars drawn with CSS: a label, a bar, a value (cheap, no chart library).
export function bars(rows, { max, format = (v) => String(v), cls = '' } = {}) {
  const top = max ?? Math.max(1e-9, ...rows.map((r) => Number(r.value) || 0));
  return h(
    'div',
    { class: ['bars', cls] },
    rows.map((r) =>
      h(
        'div',
        { class: 'bar-row', title: `${r.label}: ${format(r.value)}` },
        h('span', { class: 'bar-label' }, r.label),
        h('span', { class: 'bar-track' }, h('span', { class: ['bar-fill', r.cls], style: { width: `${Math.min(100, (100 * (Number(r.value) || 0)) / top).toFixed(1)}%` } })),
        h('span', { class: 'bar-value' }, format(r.value)),
      ),
    ),
  );
}

// A table: columns [{label, cell: (row) => node|text, cls}], rows.
export function table(columns, rows, { empty = 'nothing yet', cls = '', rowAttrs } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: cls },
      h('thead', h('tr', columns.map((c) => h('th', { class: c.cls }, c.label)))),
      h('tbody', rows.map((row, i) => h('tr', rowAttrs ? rowAttrs(row, i) : {}, columns.map((c) => h('td', { class: c.cls }, c.cell(row, i)))))),
    ),
  );
}

// Key/value pairs as a definition list.
export function kv(pairs, cls = '') {
  return h(
    'dl',
    { class: ['kv', cls] },
    pairs.filter(Boolean).map(([k, v]) => [h('dt', k), h('dd', v instanceof Node ? v : valueText(v))]),
  );
}

// Pages of `size`: a bar with the range shown and previous / next buttons. `total` may be null when unknown
// (then `hasMore` says whether a next page exists).
export function pager({ page, size = 50, total = null, hasMore = false, onPage, label = 'items' }) {
  const first = page * size + 1;
  const pages = total === null ? null : Math.max(1, Math.ceil(total / size));
  const last = total === null ? null : Math.min(total, (page + 1) * size);
  const more = total === null ? hasMore : page + 1 < pages;
  const text =
    total === null
      ? `${label} ${first}–${first + size - 1}`
      : total === 0
        ? `no ${label}`
        : `${label} ${first}–${last} of ${num(total)}`;
  return h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', class: 'btn small', disabled: page === 0, onclick: () => onPage(page - 1), 'data-page': 'prev' }, '‹ previous'),
    h('span', { class: 'pager-text' }, text, pages ? ` (page ${page + 1} of ${pages})` : ''),
    h('button', { type: 'button', class: 'btn small', disabled: !more, onclick: () => onPage(page + 1), 'data-page': 'next' }, 'next ›'),
  );
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', title), ...children);
}

export function link(route, text) {
  return h('a', { href: route }, text);
}

export function route(...parts) {
  return `#/${parts.map((p) => encodeURIComponent(String(p))).join('/')}`;
}

export function loading(text = 'loading…') {
  return h('p', { class: 'loading' }, text);
}
