// The consumer app: what a page using the npm package writes. Driven by ../consumer.test.mjs
// through the query string: ?rt=<rt-server origin>&c=<channel>&mode=default|url[&lastId=N].
//   mode=default  the wasm is found by the package's own new URL('./rt-core.wasm', import.meta.url)
//                 (esbuild: the harness copies it next to the bundle, and answers its first
//                 load 503, so createClient must fail once and succeed when called again;
//                 Vite: Vite emits it as an asset and rewrites the URL)
//   mode=url      the wasm URL comes from the bundler (esbuild's file loader, Vite's ?url)
import { createClient, type RtClient, type Status, type ResetReason, type Newest } from 'rt-client';

interface Received {
  kind: 'message' | 'reset';
  id: number;
  payload: unknown;
  reason?: ResetReason;
}

interface AppState {
  loadErrors: string[];
  received: Received[];
  statuses: Status['state'][];
  ready: boolean;
  rt: RtClient | null;
}

declare global {
  interface Window { app: AppState }
}

const q = new URLSearchParams(location.search);
const rtUrl = q.get('rt') ?? '';
const channel = q.get('c') ?? 'consumer';
const mode = q.get('mode') ?? 'default';
const lastIdParam = q.get('lastId');

const app: AppState = { loadErrors: [], received: [], statuses: [], ready: false, rt: null };
window.app = app;

async function start(wasmUrl: string): Promise<RtClient> {
  const options = { baseUrl: rtUrl, credentials: 'include' as const };
  if (mode === 'url') return createClient({ ...options, wasmUrl });
  for (;;) {
    try {
      return await createClient(options);
    } catch (err) {
      app.loadErrors.push(String(err));
      if (app.loadErrors.length > 3) throw err;
    }
  }
}

export async function run(wasmUrl: string): Promise<void> {
  const rt = await start(wasmUrl);
  app.rt = rt;
  rt.onStatus((s: Status) => { app.statuses.push(s.state); });
  const onMessage = (payload: unknown, id: number): void => { app.received.push({ kind: 'message', id, payload }); };
  const onReset = (newest: Newest, id: number, _c: string, reason: ResetReason): void => {
    app.received.push({ kind: 'reset', id, payload: newest ? newest.payload : null, reason });
  };
  if (lastIdParam === null) rt.subscribe(channel, { from: 'now', onMessage, onReset });
  else rt.subscribe(channel, { lastId: Number(lastIdParam), onMessage, onReset });
  // A state channel may leave out onReset (its newest message then goes to onMessage).
  rt.subscribe(`${channel}.state`, { kind: 'state', lastId: 0, onMessage: () => {} });
  app.ready = true;
  document.getElementById('state')!.textContent = 'started';
}
