// One job: progress, metrics, result, artifacts, logs, live; cancel while it runs.
import * as api from '../api.js';
import { h } from '../dom.js';
import { jobPanel } from '../jobpanel.js';

export async function render(root, { params, signal, setTitle }) {
  setTitle(params.id);
  const cancel = h(
    'button',
    {
      type: 'button',
      class: 'btn danger',
      onclick: async () => {
        cancel.disabled = true;
        await api.post(`/jobs/${encodeURIComponent(params.id)}/cancel`, {}).catch(() => {
          cancel.disabled = false;
        });
      },
    },
    'Cancel the job',
  );
  const job = await api.get(`/jobs/${encodeURIComponent(params.id)}`, { signal });
  root.append(
    h('div', { class: 'page-head' }, h('h1', params.id), ['queued', 'running'].includes(job.status) ? cancel : null),
    h('section', { class: 'card' }, jobPanel(params.id, { signal })),
    h('section', { class: 'card' }, h('h2', 'Parameters'), h('pre', JSON.stringify(job.params || {}, null, 2))),
  );
}
