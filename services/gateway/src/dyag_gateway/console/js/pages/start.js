// Start the workflow: upload a catalog (POST /catalogs) or pick a stored one, then start `dyag run`'s pipeline with its
// main options (POST /pipelines) and follow it.
import * as api from '../api.js';
import { h, kv, num, replace, route, section } from '../dom.js';

const TARGETS = [
  ['base', 'base model'],
  ['fine_tuned', 'fine-tuned model'],
  ['rag', 'RAG'],
  ['grounded', 'grounded answers (the records)'],
  ['hybrid', 'hybrid (RAG context, fine-tuned model)'],
];
const SKIPS = [
  ['validate', 'validate'],
  ['train', 'fine-tune'],
  ['index', 'index for RAG'],
  ['evaluate', 'evaluate'],
  ['report', 'compare'],
];

function field(id, label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', hint) : null);
}

function numberInput(id, { min = 0, max, placeholder = 'default' } = {}) {
  return h('input', { type: 'number', id, name: id, min, max, placeholder, inputmode: 'numeric' });
}

function checks(name, options, checked) {
  return h(
    'div',
    { class: 'checks' },
    options.map(([value, label]) => h('label', h('input', { type: 'checkbox', name, value, checked: checked.includes(value) }), label)),
  );
}

export async function render(root, { signal, query, navigate }) {
  const stored = (await api.get('/catalogs', { signal })).catalogs.map((c) => c.name).sort();
  const file = h('input', { type: 'file', id: 'catalog-file', name: 'file', accept: '.json,.jsonl,.csv,application/json,text/csv' });
  const name = h('input', { type: 'text', id: 'catalog-name', name: 'name', placeholder: 'from the file name', pattern: '[a-z0-9][a-z0-9_.-]*' });
  const uploadResult = h('div', { id: 'upload-result', role: 'status' });
  const upload = h('button', { type: 'button', class: 'btn primary', id: 'upload' }, 'Upload');
  const pick = h('select', { id: 'stored-catalog', name: 'catalog' }, h('option', { value: '' }, stored.length ? '— choose —' : 'none stored yet'), stored.map((c) => h('option', { value: c, selected: c === query.get('catalog') }, c)));
  const chosen = h('p', { id: 'chosen-catalog', class: 'muted' });
  const state = { catalog: query.get('catalog') || '', version: '' };
  const showChosen = () => {
    chosen.textContent = state.catalog ? `The pipeline runs on ${state.catalog}${state.version ? ` version ${state.version}` : ' (its latest version)'}.` : 'Upload a catalog or choose a stored one.';
    startButton.disabled = !state.catalog;
    showCli(); // defined below; called once the page is built
  };
  pick.addEventListener('change', () => {
    Object.assign(state, { catalog: pick.value, version: '' });
    showChosen();
  });
  file.addEventListener('change', () => {
    const f = file.files[0];
    if (f && !name.value) name.placeholder = f.name.replace(/\.[^.]+$/, '').toLowerCase().replace(/[^a-z0-9_.-]+/g, '_');
  });
  upload.addEventListener('click', async () => {
    const f = file.files[0];
    if (!f) {
      replace(uploadResult, h('p', { class: 'error-text' }, 'choose a file first'));
      return;
    }
    const form = new FormData();
    form.append('file', f, f.name);
    if (name.value.trim()) form.append('name', name.value.trim());
    upload.disabled = true;
    replace(uploadResult, h('p', { class: 'loading' }, `uploading ${f.name}…`));
    try {
      const version = await api.request('POST', '/catalogs', { body: form, signal });
      Object.assign(state, { catalog: version.name, version: version.version });
      if (![...pick.options].some((o) => o.value === version.name)) pick.append(h('option', { value: version.name }, version.name));
      pick.value = version.name;
      replace(
        uploadResult,
        h('p', h('strong', version.unchanged ? 'Already stored: ' : 'Stored: '), h('a', { href: route('catalogs', version.name) }, version.name), ' version ', h('code', version.version)),
        kv([
          ['applications', num(version.entity_count)],
          ['against the previous version', `+${version.added.length} added, ~${version.changed.length} changed, −${version.removed.length} removed`],
          ['format', version.source_format],
          version.warnings?.length ? ['warnings', version.warnings.join(' ; ')] : null,
        ]),
      );
      showChosen();
    } catch (exc) {
      if (exc.name !== 'AbortError') replace(uploadResult, h('p', { class: 'error-text' }, `${exc.code}: ${exc.message}`));
    } finally {
      upload.disabled = false;
    }
  });

  const options = {
    name: h('input', { type: 'text', id: 'opt-name', maxlength: 200, placeholder: 'a label for the pipeline' }),
    num_questions: numberInput('opt-num-questions', { min: 1, max: 100000, placeholder: '1000' }),
    max_steps: numberInput('opt-max-steps', { placeholder: '16 on a CPU' }),
    epochs: numberInput('opt-epochs', { min: 1, max: 100, placeholder: 'the preset’s' }),
    max_eval_questions: numberInput('opt-max-eval', { placeholder: '30 on a CPU' }),
    preset: h('select', { id: 'opt-preset' }, ['auto', 'small', 'medium', 'large', 'knowledge'].map((p) => h('option', { value: p }, p))),
    base_model: h('input', { type: 'text', id: 'opt-base-model', value: 'default' }),
    rag_mode: h('select', { id: 'opt-rag-mode' }, ['auto', 'grounded', 'generative'].map((p) => h('option', { value: p }, p))),
    device: h('select', { id: 'opt-device' }, ['auto', 'cpu', 'cuda'].map((p) => h('option', { value: p }, p))),
    model_id: h('input', { type: 'text', id: 'opt-model-id', placeholder: 'lora-… (with fine-tune skipped)' }),
    rag_llm: h('input', { type: 'text', id: 'opt-rag-llm', placeholder: 'rag-service’s (gguf:qwen2.5-0.5b)' }),
    skip_similarity: h('input', { type: 'checkbox', id: 'opt-skip-similarity' }),
  };
  const targets = checks('targets', TARGETS, ['base', 'fine_tuned', 'rag']);
  const skips = checks('skip', SKIPS, []);
  const startResult = h('div', { id: 'start-result', role: 'status' });
  const startButton = h('button', { type: 'submit', class: 'btn primary', id: 'start-pipeline', disabled: true }, 'Start the pipeline');
  const body = () => {
    const b = { catalog: state.catalog };
    if (state.version) b.catalog_version = state.version;
    for (const key of ['name', 'base_model', 'model_id', 'rag_llm']) if (options[key].value.trim()) b[key] = options[key].value.trim();
    for (const key of ['num_questions', 'max_steps', 'epochs', 'max_eval_questions']) if (options[key].value !== '') b[key] = Number(options[key].value);
    for (const key of ['preset', 'rag_mode', 'device']) b[key] = options[key].value;
    b.targets = [...targets.querySelectorAll('input:checked')].map((i) => i.value);
    b.skip = [...skips.querySelectorAll('input:checked')].map((i) => i.value);
    if (options.skip_similarity.checked) b.skip_similarity = true;
    return b;
  };
  // The same run from a terminal, as LLaMA-Factory's board previews its command.
  const cli = h('pre', { id: 'cli-preview', class: 'mono' });
  const showCli = () => {
    const b = body();
    const args = ['dyag run', b.catalog || 'CATALOG'];
    const flag = (name, value) => args.push(`--${name} ${/^[\w.:,@/-]+$/.test(String(value)) ? value : JSON.stringify(String(value))}`);
    if (b.name) flag('name', b.name);
    if (b.num_questions !== undefined) flag('num-questions', b.num_questions);
    if (b.preset !== 'auto') flag('preset', b.preset);
    if (b.max_steps !== undefined) flag('max-steps', b.max_steps);
    if (b.epochs !== undefined) flag('epochs', b.epochs);
    if (b.max_eval_questions !== undefined) flag('max-eval-questions', b.max_eval_questions);
    if (b.targets.join(',') !== 'base,fine_tuned,rag') flag('targets', b.targets.join(',') || "''");
    if (b.skip.length) flag('skip', b.skip.join(','));
    if (b.rag_mode !== 'auto') flag('rag-mode', b.rag_mode);
    if (b.rag_llm) flag('rag-llm', b.rag_llm);
    if (b.device !== 'auto') flag('device', b.device);
    if (b.model_id) flag('model-id', b.model_id);
    if (b.skip_similarity) args.push('--no-similarity');
    cli.textContent = args.join(' ') + (b.base_model && b.base_model !== 'default' ? `   # base model ${b.base_model}: POST /pipelines only` : '');
  };
  const form = h(
    'form',
    {
      id: 'pipeline-form',
      oninput: () => showCli(),
      onchange: () => showCli(),
      onsubmit: async (event) => {
        event.preventDefault();
        startButton.disabled = true;
        replace(startResult, h('p', { class: 'loading' }, 'starting…'));
        try {
          const pipeline = await api.post('/pipelines', body(), { signal });
          navigate(route('pipelines', pipeline.id));
        } catch (exc) {
          if (exc.name !== 'AbortError') replace(startResult, h('p', { class: 'error-text' }, `${exc.code}: ${exc.message}`));
          startButton.disabled = false;
        }
      },
    },
    chosen,
    h(
      'div',
      { class: 'form-grid' },
      field('opt-name', 'name', options.name),
      field('opt-num-questions', 'questions in the dataset', options.num_questions, 'empty: sized to the catalog (1,000 at most)'),
      field('opt-preset', 'training preset', options.preset, 'the guide’s Annex A; knowledge: every phrasing of each fact'),
      field('opt-max-steps', 'training steps', options.max_steps, '0: whole epochs'),
      field('opt-epochs', 'epochs', options.epochs),
      field('opt-base-model', 'base model', options.base_model, 'default: SmolLM2-135M-Instruct'),
      field('opt-max-eval', 'test questions per target', options.max_eval_questions, '0: all'),
      field('opt-rag-mode', 'RAG mode', options.rag_mode),
      field('opt-rag-llm', 'RAG model', options.rag_llm),
      field('opt-device', 'device', options.device, 'sizes the defaults'),
      field('opt-model-id', 'existing model', options.model_id),
    ),
    h('fieldset', h('legend', 'Evaluate'), targets),
    h('fieldset', h('legend', 'Skip steps'), skips),
    h('label', { class: 'checks' }, options.skip_similarity, ' no semantic similarity in the evaluation (faster)'),
    h('div', { class: 'row' }, startButton),
    startResult,
    h('details', h('summary', 'The same run from a terminal'), cli),
  );
  root.append(
    h('div', { class: 'page-head' }, h('h1', 'Start the workflow'), h('span', { class: 'sub' }, 'what `dyag run` does: ingest, build, validate, fine-tune, index, evaluate, compare')),
    section(
      '1. The catalog',
      h('div', { class: 'form-grid' }, field('catalog-file', 'upload a file', file, 'keyed JSON, JSON list, JSONL or CSV'), field('catalog-name', 'name', name, 'lower case, digits, _ . -'), h('div', { class: 'field' }, h('span', '\u00a0'), upload)),
      uploadResult,
      h('div', { class: 'form-grid' }, field('stored-catalog', 'or a stored catalog', pick)),
    ),
    section('2. The pipeline', form),
  );
  showChosen();
  showCli();
}
