// Models and exports: a catalog's champion and challenger, its lineage as a graph; the LoRA registry, hosted models,
// exports with their parity results.
import * as api from '../api.js';
import { badge, h, link, num, pager, pct, replace, route, section, short, svg, table, when, loading } from '../dom.js';

const PAGE = 50;
const KIND_COLOR = {
  catalog_version: '#0891b2',
  dataset: '#16a34a',
  training_job: '#d97706',
  model: '#9333ea',
  evaluation: '#2563eb',
  promoted: '#15803d',
  rejected: '#dc2626',
  rolled_back: '#b45309',
};

// A layered drawing of {nodes, edges}: a node's column is its longest path from a source.
export function lineageGraph(graph) {
  const nodes = graph.nodes || [];
  const edges = (graph.edges || []).filter((e) => nodes.some((n) => n.id === e.from) && nodes.some((n) => n.id === e.to));
  if (!nodes.length) return h('p', { class: 'empty' }, 'no lineage yet: a retraining, or a champion set by hand, records one');
  const depth = new Map(nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < nodes.length; round += 1) {
    let moved = false;
    for (const e of edges) {
      if (depth.get(e.to) < depth.get(e.from) + 1) {
        depth.set(e.to, depth.get(e.from) + 1);
        moved = true;
      }
    }
    if (!moved) break;
  }
  const columns = [];
  for (const n of nodes) (columns[depth.get(n.id)] ||= []).push(n);
  const W = 210;
  const H = 54;
  const GX = 70;
  const GY = 22;
  const pos = new Map();
  columns.forEach((col, c) => col.forEach((n, r) => pos.set(n.id, { x: 10 + c * (W + GX), y: 10 + r * (H + GY) })));
  const width = 20 + columns.length * (W + GX) - GX;
  const height = 20 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const defs = svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#94a3b8' })));
  const lines = edges.map((e) => {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    const x1 = a.x + W;
    const y1 = a.y + H / 2;
    const x2 = b.x;
    const y2 = b.y + H / 2;
    const mx = (x1 + x2) / 2;
    return svg(
      'g',
      { class: 'edge' },
      svg('path', { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, fill: 'none', stroke: '#94a3b8', 'stroke-width': 1.5, 'marker-end': 'url(#arrow)' }),
      svg('text', { x: mx, y: (y1 + y2) / 2 - 4, 'text-anchor': 'middle', fill: '#64748b', 'font-size': 10 }, e.kind),
    );
  });
  const boxes = nodes.map((n) => {
    const p = pos.get(n.id);
    const champion = graph.champion && n.id === graph.champion;
    const color = KIND_COLOR[n.kind] || '#475569';
    const detail = n.accuracy !== undefined ? `accuracy ${pct(n.accuracy)}` : n.version || n.reason || n.by || '';
    return svg(
      'g',
      { class: 'node', 'data-kind': n.kind },
      svg('title', {}, `${n.id}\n${Object.entries(n).filter(([k]) => k !== 'id').map(([k, v]) => `${k}: ${v}`).join('\n')}`),
      svg('rect', { x: p.x, y: p.y, width: W, height: H, rx: 8, fill: '#fff', stroke: champion ? '#15803d' : color, 'stroke-width': champion ? 3 : 1.5 }),
      svg('rect', { x: p.x, y: p.y, width: 6, height: H, rx: 3, fill: color }),
      svg('text', { x: p.x + 14, y: p.y + 18, fill: color, 'font-weight': 700 }, `${n.kind.replace(/_/g, ' ')}${champion ? ' · champion' : ''}`),
      svg('text', { x: p.x + 14, y: p.y + 33, fill: '#1f2933' }, short(n.id.replace(/^[a-z_]+:/, ''), 30)),
      svg('text', { x: p.x + 14, y: p.y + 47, fill: '#64748b', 'font-size': 11 }, short(String(detail), 32)),
    );
  });
  return h('div', { class: 'graph' }, svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'lineage graph' }, defs, lines, boxes));
}

function targetText(t) {
  if (!t) return '–';
  return `${t.kind}:${t.id}${t.catalog_version ? ` @ ${t.catalog_version}` : ''}`;
}

function aliasCards(book) {
  const names = ['champion', 'challenger', 'previous'];
  return h(
    'div',
    { class: 'stats' },
    names.map((name) =>
      h('div', { class: 'stat', dataset: { alias: name } }, h('div', { class: 'k' }, name), h('div', { class: 'v' }, book.aliases?.[name] ? book.aliases[name].label || targetText(book.aliases[name]) : h('span', { class: 'muted' }, 'none'))),
    ),
  );
}

export async function render(root, { signal, query, navigate }) {
  const catalogs = (await api.get('/catalogs', { signal })).catalogs.map((c) => c.name).sort();
  const catalog = query.get('catalog') || catalogs[0] || '';
  const select = h(
    'select',
    { id: 'models-catalog', onchange: () => navigate(`#/models${api.qs({ catalog: select.value })}`) },
    catalogs.map((c) => h('option', { value: c, selected: c === catalog }, c)),
  );
  const championBox = h('div', loading());
  const lineageBox = h('div', loading());
  const loraBox = h('div', loading());
  const hostedBox = h('div', loading());
  const exportsBox = h('div', loading());
  root.append(
    h('div', { class: 'page-head' }, h('h1', 'Models and exports'), h('div', { class: 'row' }, h('label', { for: 'models-catalog' }, 'catalog'), select)),
    section(`Champion and challenger${catalog ? ` of ${catalog}` : ''}`, championBox),
    section('Lineage', lineageBox),
    section('LoRA models (the registry)', loraBox),
    section('Exports (GGUF, Ollama) and their parity gate', exportsBox),
    section('Hosted fine-tuned models', hostedBox),
  );
  const tasks = [];
  if (catalog) {
    tasks.push(
      api.get(`/catalogs/${encodeURIComponent(catalog)}/champion`, { signal }).then((book) =>
        replace(
          championBox,
          aliasCards(book),
          book.candidates?.length ? [h('h3', 'Rejected candidates'), table([{ label: 'candidate', cell: (c) => targetText(c.target || c) }, { label: 'why', cls: 'wrap', cell: (c) => c.reason || '' }], book.candidates)] : null,
          h('h3', 'Promotion log'),
          table(
            [
              { label: '#', cls: 'num', cell: (e) => String(e.seq) },
              { label: 'when', cell: (e) => when(e.at) },
              { label: 'action', cell: (e) => badge(e.action) },
              { label: 'target', cell: (e) => targetText(e.target) },
              { label: 'replaced', cell: (e) => targetText(e.replaced) },
              { label: 'reason', cls: 'wrap', cell: (e) => e.reason || '' },
              { label: 'by', cell: (e) => e.by || '' },
            ],
            book.log || [],
            { empty: 'no promotion yet' },
          ),
        ),
      ),
      api.get(`/catalogs/${encodeURIComponent(catalog)}/lineage`, { signal }).then((graph) => replace(lineageBox, lineageGraph(graph))),
    );
  } else {
    replace(championBox, h('p', { class: 'empty' }, 'no catalog yet'));
    replace(lineageBox);
  }
  tasks.push(
    api.get('/models?limit=1000', { signal }).then((reply) => paged(loraBox, reply.models, loraTable)),
    api.get('/exports?limit=1000', { signal }).then((reply) => paged(exportsBox, reply.exports, exportTable)),
    api.get('/hosted/models', { signal, quiet: true }).then(
      (reply) => paged(hostedBox, reply.models, hostedTable),
      (exc) => {
        if (exc.name === 'AbortError') throw exc;
        replace(hostedBox, h('p', { class: 'muted' }, `not available: ${exc.message}`));
      },
    ),
  );
  await Promise.all(tasks);
}

function paged(box, rows, render, page = 0) {
  replace(box, rows.length > PAGE ? pager({ page, size: PAGE, total: rows.length, label: 'items', onPage: (p) => paged(box, rows, render, p) }) : null, render(rows.slice(page * PAGE, (page + 1) * PAGE)));
}

function loraTable(models) {
  return table(
    [
      { label: 'model', cell: (m) => [h('code', m.id), m.name ? h('div', { class: 'muted' }, m.name) : null] },
      { label: 'base model', cell: (m) => m.base_model_resolved || m.base_model },
      { label: 'lineage', cls: 'wrap', cell: (m) => [m.catalog ? link(route('catalogs', m.catalog), `${m.catalog}@${m.catalog_version}`) : null, m.dataset_id ? [' → ', link(route('datasets', m.dataset_id), m.dataset_id)] : null, m.job_id ? [' → ', link(route('jobs', m.job_id), 'training job')] : null, m.init_model_id ? h('div', { class: 'muted' }, `continued from ${m.init_model_id}`) : null] },
      { label: 'loss', cell: (m) => (m.metrics?.final_loss !== undefined ? `${Number(m.metrics.first_loss ?? NaN).toFixed(3)} → ${Number(m.metrics.final_loss).toFixed(3)}` : '–') },
      { label: 'steps', cls: 'num', cell: (m) => num(m.metrics?.steps ?? m.metrics?.global_step) },
      { label: 'hardware', cell: (m) => [m.hardware || '', m.precision ? h('div', { class: 'muted' }, `${m.precision} · ${m.backend || ''}`) : null] },
      { label: 'created', cell: (m) => when(m.created_at) },
    ],
    models,
    { empty: 'no LoRA model yet: a pipeline with the fine-tuning step makes one' },
  );
}

// One GGUF's parity: the teacher-forced measures beside their level's limits, then the greedy answers (information).
function parityFigures(p) {
  const l = p.limits || {};
  const num = (x, d) => (x === undefined ? '–' : Number(x).toFixed(d));
  return `KL divergence ${num(p.mean_kld, 4)} (≤ ${l.max_mean_kld}), p99 ${num(p.p99_kld, 3)} (≤ ${l.max_p99_kld}), ` +
    `top-1 ${pct(p.top1_agreement)} (≥ ${pct(l.min_top1_agreement)}), perplexity ×${num(p.perplexity_ratio, 3)} ` +
    `(≤ ${l.max_perplexity_ratio}) on ${p.scored_tokens} tokens; greedy answers alike ${pct(p.agreement)} of ${p.probes}`;
}

function exportTable(exports) {
  return table(
    [
      { label: 'export', cell: (e) => [h('code', e.id), e.name ? h('div', { class: 'muted' }, e.name) : null] },
      { label: 'status', cell: (e) => [badge(e.status), e.error ? h('div', { class: 'error-text' }, e.error) : null] },
      { label: 'model', cell: (e) => e.model_id || e.base_model },
      { label: 'quantizations', cell: (e) => (e.quantizations || []).join(', ') },
      {
        label: 'parity',
        cls: 'wrap',
        cell: (e) =>
          (e.parity || []).length
            ? h('ul', e.parity.map((p) => h('li', badge(p.passed ? 'pass' : 'fail', p.quantization), ' ', parityFigures(p), p.reason ? h('div', { class: 'muted' }, p.reason) : null)))
            : '–',
      },
      { label: 'Ollama', cell: (e) => e.ollama?.name || '–' },
      { label: 'created', cell: (e) => when(e.created_at) },
    ],
    exports,
    { empty: 'no export yet (dyag export MODEL)' },
  );
}

function hostedTable(models) {
  return table(
    [
      { label: 'model', cell: (m) => [h('code', m.id), m.target ? h('div', { class: 'muted' }, m.target) : null] },
      { label: 'base model', cell: (m) => m.base_model || '' },
      { label: 'lineage', cls: 'wrap', cell: (m) => [m.catalog ? link(route('catalogs', m.catalog), `${m.catalog}@${m.catalog_version}`) : null, m.dataset_id ? [' → ', link(route('datasets', m.dataset_id), m.dataset_id)] : m.dataset_name ? ` → ${m.dataset_name}` : null, m.job_id ? [' → ', link(route('jobs', m.job_id), 'training job')] : null] },
      { label: 'cost', cell: (m) => (m.cost?.actual_usd ? `$${Number(m.cost.actual_usd).toFixed(2)}` : m.cost?.estimated_usd ? `~$${Number(m.cost.estimated_usd).toFixed(2)} (estimated)` : '–') },
      { label: 'trained in', cell: (m) => (m.training_seconds ? `${Math.round(m.training_seconds)} s` : '–') },
      { label: 'created', cell: (m) => when(m.created_at) },
    ],
    models,
    { empty: 'no hosted fine-tuning yet (dyag hosted train)' },
  );
}
