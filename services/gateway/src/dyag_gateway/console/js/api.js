// The console's one client of the gateway's JSON API: the same routes as `dyag` and every other client, the API key
// in the X-API-Key header (kept in sessionStorage: entered once per browser session), errors shown in the banner.

const KEY = 'dyag.apiKey';
const KEY_INFO = 'dyag.apiKeyInfo';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = { error: [], unauthorized: [] };

export function on(event, fn) {
  listeners[event].push(fn);
}

function emit(event, ...args) {
  for (const fn of listeners[event]) fn(...args);
}

export function getKey() {
  return sessionStorage.getItem(KEY) || '';
}

export function keyInfo() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY_INFO) || 'null');
  } catch {
    return null;
  }
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY_INFO);
}

// Asks the gateway whether it accepts `key` (GET /ui/session answers 200 either way, with its verdict); keeps it
// for the session when it does. Returns {accepted, key?, error?}.
export async function useKey(key) {
  const res = await fetch('/ui/session', { headers: { 'X-API-Key': key }, cache: 'no-store' });
  const verdict = await res.json().catch(() => ({ accepted: false, error: { code: 'bad_answer', message: `the gateway answered ${res.status}` } }));
  if (verdict.accepted) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(KEY_INFO, JSON.stringify(verdict.key || {}));
  }
  return verdict;
}

function headers(extra = {}) {
  return { 'X-API-Key': getKey(), ...extra };
}

async function errorOf(res) {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && body.error) return new ApiError(res.status, body.error.code || `http_${res.status}`, body.error.message || '');
    if (body && body.detail) return new ApiError(res.status, `http_${res.status}`, typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail));
  } catch {
    // not JSON: the text itself
  }
  return new ApiError(res.status, `http_${res.status}`, text.slice(0, 300) || res.statusText);
}

// One request. opts: {json, body, signal, accept: [statuses read as answers], quiet: no banner, as: 'json'|'text'|'blob'}
export async function request(method, path, opts = {}) {
  const init = { method, headers: headers(), signal: opts.signal, cache: 'no-store' };
  if (opts.json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    init.body = opts.body;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (exc) {
    if (exc.name === 'AbortError') throw exc;
    const error = new ApiError(0, 'unreachable', `the gateway did not answer (${exc.message})`);
    if (!opts.quiet) emit('error', error, path);
    throw error;
  }
  if (!res.ok && !(opts.accept || []).includes(res.status)) {
    const error = await errorOf(res);
    if (res.status === 401) emit('unauthorized', error);
    if (!opts.quiet) emit('error', error, path);
    throw error;
  }
  if (opts.as === 'text') return res.text();
  if (opts.as === 'blob') return res.blob();
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, json, opts = {}) => request('POST', path, { ...opts, json });

// A query string from an object, leaving out empty values.
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : '';
}

// A server-sent event stream read with fetch (EventSource cannot send the key's header). Calls onEvent(name, data)
// for each event; reconnects after a dropped connection (the gateway restarted) until the stream sends `end`, the
// signal aborts, or the gateway refuses (4xx: shown in the banner). Returns a promise that settles when it stops.
export async function stream(path, onEvent, { signal, onState = () => {} } = {}) {
  let delay = 500;
  while (!signal?.aborted) {
    let ended = false;
    try {
      const res = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), signal, cache: 'no-store' });
      if (!res.ok) {
        const error = await errorOf(res);
        if (res.status === 401) emit('unauthorized', error);
        if (res.status < 500) {
          emit('error', error, path);
          onState('stopped');
          return;
        }
        throw error;
      }
      onState('live');
      delay = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = /\r?\n\r?\n/.exec(buffer))) {
          const block = buffer.slice(0, cut.index);
          buffer = buffer.slice(cut.index + cut[0].length);
          let name = 'message';
          const data = [];
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') name = val;
            else if (field === 'data') data.push(val);
          }
          if (!data.length) continue;
          let parsed;
          try {
            parsed = JSON.parse(data.join('\n'));
          } catch {
            parsed = data.join('\n');
          }
          if (name === 'end') ended = true;
          onEvent(name, parsed);
        }
      }
    } catch (exc) {
      if (exc.name === 'AbortError' || signal?.aborted) return;
      onState('reconnecting');
    }
    if (ended) {
      onState('ended');
      return;
    }
    onState('reconnecting');
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 8000);
  }
}
