// Shared helpers of the wasm client tests (Node 20, no DOM): loading the built client with
// its wasm bytes, a fake fetch whose requests the test answers by hand, and a manual clock.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const clientDir = process.env.RT_CLIENT_DIR || path.resolve(here, '../../build/client');
const { createClient } = await import(pathToFileURL(path.join(clientDir, 'rt-client.mjs')).href);
// Node's fetch cannot read the wasm from a file: URL: hand the client the bytes.
export const wasmBinary = readFileSync(path.join(clientDir, 'rt-core.wasm'));

export { createClient };

// Lets every pending promise callback and I/O callback run.
export const flush = () => new Promise((r) => setImmediate(r));

// Timers under the test's control: advance(ms) runs what falls due, in time order.
export class ManualClock {
  constructor() {
    this.t = 1000;
    this.timers = new Map();
    this.seq = 0;
  }
  now() { return this.t; }
  setTimeout(fn, ms) {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(id) { this.timers.delete(id); }
  // Absolute time of the next timer, or null.
  next() {
    let best = null;
    for (const { at } of this.timers.values()) if (best === null || at < best) best = at;
    return best;
  }
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let due = null;
      for (const [id, tm] of this.timers) if (tm.at <= end && (!due || tm.at < due[1].at)) due = [id, tm];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

// A fetch whose requests stay pending until the test answers them.
export class FakeFetch {
  constructor() {
    this.requests = [];  // every request ever made: {url, init, aborted, settled}
    this.fetch = (url, init) => new Promise((resolve, reject) => {
      const req = { url, init, aborted: false, settled: false, resolve, reject };
      init.signal.addEventListener('abort', () => {
        req.aborted = true;
        if (!req.settled) { req.settled = true; reject(new DOMException('The operation was aborted.', 'AbortError')); }
      });
      this.requests.push(req);
    });
  }
  pending() { return this.requests.filter((r) => !r.settled); }
  only() {
    const p = this.pending();
    if (p.length !== 1) throw new Error(`expected one pending poll, got ${p.length}: ${p.map((r) => r.url)}`);
    return p[0];
  }
  async respond(req, status, body, headers = {}) {
    if (req.settled) throw new Error('request already settled');
    req.settled = true;
    req.resolve(new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers }));
    await flush();
  }
  async fail(req, message = 'fetch failed') {
    req.settled = true;
    req.reject(new TypeError(message));
    await flush();
  }
}

// Query pairs of a poll URL as [[channel, lastId], ...].
export function pairsOf(url) {
  const q = new URL(url).searchParams;
  const cs = q.getAll('c');
  const ms = q.getAll('m');
  return cs.map((c, i) => [c, Number(ms[i])]);
}

export async function newClient(extra = {}) {
  const clock = new ManualClock();
  const ff = new FakeFetch();
  const errors = [];
  const rt = await createClient({
    baseUrl: 'http://127.0.0.1:8080', wasmBinary, fetch: ff.fetch, clock, seed: 7,
    window: null, document: null, navigator: null, onError: (e) => errors.push(e),
    probePath: '',  // no /healthz probes (their own test turns them on): one request per poll group
    ...extra,
  });
  const statuses = [];
  rt.onStatus((s) => statuses.push(s));
  return { rt, clock, ff, statuses, errors };
}
