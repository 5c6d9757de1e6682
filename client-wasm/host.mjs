// rt-client.mjs — the public JavaScript API of the rt client and its host.
//
// The decisions (last ids, dedupe, resets, backoff, URL splitting, scroll selection) live in
// the C++ core compiled to WebAssembly (rt-core.mjs/.wasm). This file is its thin host: it
// does the I/O the core asks for — fetch with AbortController, one setTimeout, the
// browser's online/offline/visibilitychange and scroll events, element positions — and
// feeds the results back as events with the current time. See rt-client.d.ts and
// client-wasm/README.md for the API.
import createRtCore from './rt-core.mjs';
import { shareTabs } from './tabs.mjs';

// One wasm instance per wasm URL and page, shared by every client. A load that failed is
// forgotten, so the next createClient tries again (a flaky network must not break the page
// for good).
const modules = new Map();  // URL -> Promise of the instantiated module

function loadModule(options) {
  if (options.wasmBinary) return createRtCore({ wasmBinary: options.wasmBinary });
  // Written this way so that bundlers (Vite, webpack 5, Parcel) see the asset and copy it.
  const url = String(options.wasmUrl || new URL('./rt-core.wasm', import.meta.url));
  let p = modules.get(url);
  if (!p) {
    p = createRtCore({ locateFile: () => url });
    modules.set(url, p);
    p.catch(() => { if (modules.get(url) === p) modules.delete(url); });
  }
  return p;
}

const CORE_OPTIONS = [
  'baseUrl', 'path', 'urlBudget', 'maxChannelsPerPoll', 'pollTimeoutMs', 'deadlineMarginMs', 'probeAfterMs', 'probePath',
  'firstRetryMaxMs', 'backoffBaseMs', 'backoffCapMs', 'maxRetryAfterMs', 'settleMs', 'closest',
];

function randomSeed() {
  const c = globalThis.crypto;
  if (c && c.getRandomValues) {
    const a = new Uint32Array(2);
    c.getRandomValues(a);
    return (a[0] & 0x1fffff) * 0x100000000 + a[1];
  }
  return Math.floor(Math.random() * 0x20000000000000);
}

// Retry-After is delta-seconds or an HTTP-date; the core (which has no wall clock) takes
// delta-seconds only, so dates are converted here.
function retryAfterSeconds(value) {
  if (!value) return '';
  const v = value.trim();
  if (/^\d+$/.test(v)) return v;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return '';
  return String(Math.max(0, Math.ceil((t - Date.now()) / 1000)));
}

// What the core's value arguments take (bindings.cpp): a kind (0 undefined, 1 string,
// 2 number, 3 anything else) and the string or number itself.
const kindOf = (v) => (v === undefined ? 0 : typeof v === 'string' ? 1 : typeof v === 'number' ? 2 : 3);
const str = (v) => (typeof v === 'string' ? v : '');
const num = (v) => (typeof v === 'number' ? v : 0);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// Hands the core a 200's body: the browser parses it (JSON.parse), the core checks every
// field it reads (proto::ResponseReader, the protocol module's rules) and decides. The
// payloads stay here, in `payloads`; the core's actions name them by index.
function readBody(core, text, payloads) {
  let root;
  try {
    root = JSON.parse(text);
  } catch (e) {
    return core.bodyInvalid(e.message);
  }
  if (!isObject(root)) return core.bodyNotObject();
  for (const c of Object.keys(root)) {
    const e = root[c];
    const o = isObject(e) ? e : {};
    const list = Array.isArray(o.msg);
    core.entry(c, o === e, kindOf(o.status), str(o.status), kindOf(o.id), num(o.id), kindOf(o.reason), str(o.reason), list);
    if (list) {
      for (const m of o.msg) {
        const x = isObject(m) ? m : {};
        core.msg(x === m, kindOf(x.id), num(x.id), kindOf(x.prev), num(x.prev), 'payload' in x, payloads.push(x.payload) - 1);
      }
    }
  }
}

function errorText(err) {
  if (err && typeof err === 'object') {
    const cause = err.cause && err.cause.code ? ` (${err.cause.code})` : '';
    return `${err.name || 'Error'}: ${err.message || ''}${cause}`;
  }
  return String(err);
}

/**
 * Creates a client. Resolves once the WebAssembly core is loaded.
 * Throws (rejects) with a TypeError naming the option when an option is invalid.
 */
export async function createClient(options = {}) {
  const mod = await loadModule(options);
  const win = options.window !== undefined ? options.window : globalThis.window;
  const doc = options.document !== undefined ? options.document : globalThis.document;
  const nav = options.navigator !== undefined ? options.navigator : globalThis.navigator;
  const clock = options.clock || {
    now: () => performance.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h),
  };
  const fetchFn = options.fetch || ((url, init) => globalThis.fetch(url, init));
  const report = options.onError || ((e) => console.error('rt-client:', e));
  const credentials = options.credentials || 'same-origin';

  const coreOptions = {};
  for (const k of CORE_OPTIONS) if (options[k] !== undefined) coreOptions[k] = options[k];
  if (coreOptions.baseUrl === undefined) {
    coreOptions.baseUrl = globalThis.location && globalThis.location.origin && globalThis.location.origin !== 'null'
      ? globalThis.location.origin : '';
  }
  coreOptions.baseUrl = String(coreOptions.baseUrl).replace(/\/+$/, '');
  // The probe is rt's /healthz beside the poll endpoint (path /rt -> /healthz, /x/rt -> /x/healthz).
  if (coreOptions.probePath === undefined) coreOptions.probePath = String(coreOptions.path || '/rt').replace(/[^/]*$/, 'healthz');
  coreOptions.seed = options.seed !== undefined ? options.seed : randomSeed();

  // One poll for all tabs of the origin (tabs.mjs), unless the page says no or the browser
  // lacks Web Locks / BroadcastChannel.
  const POLL_INIT = { cache: 'no-store', credentials, headers: { Accept: 'application/json' } };
  const tabs = options.shareTabs === false || !win ? null : shareTabs({
    name: `${coreOptions.baseUrl}${coreOptions.path || '/rt'}`, fetch: fetchFn, init: POLL_INIT,
    urlBudget: coreOptions.urlBudget || 4096, maxChannels: coreOptions.maxChannelsPerPoll || 500, navigator: nav,
  });
  const send = tabs ? tabs.fetch : fetchFn;

  const core = new mod.Core();
  for (const [k, v] of Object.entries(coreOptions)) core.option(k, kindOf(v), num(v), str(v));
  const initError = core.init();
  if (initError) {
    if (tabs) tabs.close();
    core.delete();
    throw new TypeError(`rt-client: ${initError}`);
  }

  const polls = new Map();          // poll id -> AbortController
  const probes = new Set();         // AbortControllers of the probes in flight
  const subs = new Map();           // channel -> Set of subscription records
  const statusListeners = new Set();
  let status = { state: 'connecting', attempt: 0, retryInMs: -1, httpStatus: 0, reason: '', lagMs: -1 };
  let liveUntil = -1;               // when the status last stopped being live (-1: never live)
  let userPaused = false;           // disconnect() until connect()
  let pageHidden = false;           // pagehide until pageshow
  let timer = null;
  let scroll = null;                // the active scroll watcher's record
  let closed = false;
  const queue = [];
  let draining = false;

  // Runs one core call and carries out the actions it returns, in order. Page callbacks may
  // call back into the client: their actions join the queue and run after the current ones.
  function call(method, ...args) {
    return run(() => core[method](clock.now(), ...args));
  }

  // `step` calls the core and returns its JSON text; `payloads` are what its actions' payload
  // handles index (a response's, see readBody).
  function run(step, payloads) {
    if (closed) return { ok: true, actions: [] };
    let r;
    try {
      r = JSON.parse(step());
    } catch (e) {  // the wasm module aborted (out of memory): nothing more can work
      fatal(e);
      return { ok: false, error: errorText(e), actions: [] };
    }
    if (payloads) {
      for (const a of r.actions) {
        if (a.k === 'msg') a.p = payloads[a.p];
        else if (a.k === 'reset' && a.newest) a.newest.payload = payloads[a.newest.payload];
      }
    }
    queue.push(...r.actions);
    if (!draining) {
      draining = true;
      try {
        while (queue.length) perform(queue.shift());
      } finally {
        draining = false;
      }
    }
    return r;
  }

  function fatal(e) {
    report(e);
    setStatus({ state: 'error', attempt: 0, retryInMs: -1, httpStatus: 0, reason: `fatal: ${errorText(e)}` });
    shutdown();
  }

  function safely(fn, ...args) {
    try {
      fn(...args);
    } catch (e) {
      report(e);
    }
  }

  // lagMs: 0 while live; otherwise how long ago the client was last live (what the page
  // shows may be that old), -1 when it never was.
  function withLag(s) {
    const lagMs = s.state === 'live' ? 0 : liveUntil < 0 ? -1 : Math.max(0, Math.round(clock.now() - liveUntil));
    return Object.freeze({ ...s, lagMs });
  }

  function setStatus(s) {
    if (status.state === 'live' && s.state !== 'live') liveUntil = clock.now();
    status = withLag(s);
    for (const cb of [...statusListeners]) safely(cb, status);
  }

  function perform(a) {
    switch (a.k) {
      case 'start': return startPoll(a.poll, a.url);
      case 'abort': {
        const ctl = polls.get(a.poll);
        polls.delete(a.poll);
        if (ctl) ctl.abort();
        return;
      }
      case 'timer':
        if (timer !== null) clock.clearTimeout(timer);
        timer = null;
        if (a.ms >= 0) timer = clock.setTimeout(() => { timer = null; call('onTimer'); }, a.ms);
        return;
      case 'status': {
        const { k, ...s } = a;
        return setStatus(s);
      }
      case 'msg': return deliver(a, false);
      case 'reset': return deliver(a, true);
      case 'probe': return probe(a.probe, a.url);
      case 'measure':
        if (scroll) measured();
        return;
    }
  }

  function deliver(a, isReset) {
    const targets = [];
    if (a.t & 1) for (const s of subs.get(a.c) || []) targets.push(s);
    if (a.t & 2 && scroll) targets.push(scroll);
    for (const t of targets) {
      if (!t.active) continue;
      if (!isReset) safely(t.onMessage, a.p, a.id, a.c);
      else if (t.onReset) safely(t.onReset, a.newest, a.id, a.c, a.r);
      else if (a.newest) safely(t.onMessage, a.newest.payload, a.newest.id, a.c);  // a state channel
    }
  }

  // Low priority: a browser at its per-host connection limit sends it after the poll.
  function probe(id, url) {
    const ctl = new AbortController();
    probes.add(ctl);
    let p;
    try {
      p = Promise.resolve(send(url, { signal: ctl.signal, cache: 'no-store', credentials, priority: 'low' }));
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(async (resp) => {
      await resp.text();
      call('onProbe', id, resp.status);
    }).catch(() => call('onProbe', id, 0)).finally(() => probes.delete(ctl));
  }

  function startPoll(id, url) {
    const ctl = new AbortController();
    polls.set(id, ctl);
    let p;
    try {
      p = Promise.resolve(send(url, { ...POLL_INIT, signal: ctl.signal }));
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(async (resp) => {
      const body = await resp.text();
      if (polls.get(id) !== ctl) return;  // aborted meanwhile
      polls.delete(id);
      const ra = resp.headers && resp.headers.get ? retryAfterSeconds(resp.headers.get('Retry-After')) : '';
      if (resp.status !== 200) return call('onResponse', id, resp.status, body, ra);
      const payloads = [];
      run(() => {
        readBody(core, body, payloads);
        return core.onAnswer(clock.now(), id, ra);
      }, payloads);
    }).catch((e) => {
      if (polls.get(id) !== ctl) return;
      polls.delete(id);
      call('onNetworkError', id, errorText(e));
    });
  }

  // --- browser events ---
  const listeners = [];
  function listen(target, type, fn, opts) {
    if (!target || !target.addEventListener) return;
    target.addEventListener(type, fn, opts);
    listeners.push(() => target.removeEventListener(type, fn, opts));
  }
  listen(win, 'online', () => call('setOnline', true));
  listen(win, 'offline', () => call('setOnline', false));
  listen(doc, 'visibilitychange', () => call('setVisible', doc.visibilityState !== 'hidden'));
  // The back/forward cache keeps only pages without requests in flight: abort on pagehide,
  // resume from the same ids on pageshow.
  listen(win, 'pagehide', () => { pageHidden = true; applyPause(); if (tabs) tabs.suspend(); });
  listen(win, 'pageshow', () => { if (tabs) tabs.resume(); pageHidden = false; applyPause(); });
  if (nav && nav.onLine === false) call('setOnline', false);
  if (doc && doc.visibilityState === 'hidden') call('setVisible', false);
  call('onTimer');  // emits the initial status

  function applyPause() {
    call('setPaused', userPaused || pageHidden);
  }

  function shutdown() {
    if (closed) return;
    try {
      queue.push(...JSON.parse(core.close(clock.now())).actions);
      while (queue.length) {
        const a = queue.shift();
        if (a.k === 'abort' || a.k === 'timer') perform(a);
      }
    } catch (e) { /* the module is gone: nothing to abort in it */ }
    closed = true;
    for (const ctl of polls.values()) ctl.abort();
    polls.clear();
    for (const ctl of probes) ctl.abort();
    probes.clear();
    if (tabs) tabs.close();
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
    for (const off of listeners.splice(0)) off();
    if (scroll) scroll.stopListening();
    scroll = null;
    try { core.delete(); } catch (e) { /* already gone */ }
  }

  function scrollItemsFromDom(root, sel, channelOf, lastIdOf) {
    const els = root.querySelectorAll(sel);
    const out = [];
    for (const el of els) {
      const c = channelOf(el);
      if (!c) continue;
      const r = el.getBoundingClientRect();
      out.push({ channel: String(c), rect: r, lastId: Number(lastIdOf(el)) || 0 });
    }
    return out;
  }

  // A measurement as the core takes it: items [channel, top, left, bottom, right, lastId]
  // (staged with scrollItem before scrollBegin / scrollMeasured) and the viewport.
  function toScroll(m) {
    const items = m.items.map((it) => {
      const r = it.rect || {};
      const last = Number.isSafeInteger(it.lastId) && it.lastId >= 0 ? it.lastId : 0;
      return [String(it.channel), +r.top || 0, +r.left || 0, +r.bottom || 0, +r.right || 0, last];
    });
    const v = m.viewport || { top: 0, left: 0, bottom: 0, right: 0 };
    return { viewport: [+v.top || 0, +v.left || 0, +v.bottom || 0, +v.right || 0], items };
  }

  // Runs `method` (scrollBegin, scrollMeasured) on measurement `m`, staged first.
  function scrollCall(m, method, ...args) {
    return run(() => {
      for (const it of m.items) core.scrollItem(...it);
      return core[method](clock.now(), ...args);
    });
  }

  function measured() {
    const m = scroll.measure();
    return scrollCall(m, 'scrollMeasured', ...m.viewport);
  }

  const client = {
    subscribe(name, opts = {}) {
      const channel = String(name);
      const what = `rt-client: subscribe(${JSON.stringify(channel)})`;
      if (closed) throw new Error('rt-client: closed');
      if (!opts || typeof opts.onMessage !== 'function') throw new TypeError(`${what} needs onMessage`);
      const kind = opts.kind === undefined ? 'stream' : opts.kind;
      if (kind !== 'stream' && kind !== 'state') throw new TypeError(`${what}: kind must be 'stream' or 'state'`);
      if (opts.onReset !== undefined && typeof opts.onReset !== 'function') throw new TypeError(`${what}: onReset must be a function`);
      // A stream page that missed messages must reload what it shows; it cannot do that
      // without knowing. A state channel's newest message is the whole state.
      if (kind === 'stream' && !opts.onReset) {
        throw new TypeError(`${what}: a stream channel needs onReset (reload what the page shows); pass kind: 'state' for a channel whose newest message is the whole state`);
      }
      if (opts.from !== undefined && opts.from !== 'now') throw new TypeError(`${what}: from must be 'now'`);
      if (opts.from === 'now' && opts.lastId !== undefined) throw new TypeError(`${what}: pass lastId or from: 'now', not both`);
      if (opts.from === undefined && opts.lastId === undefined) {
        throw new TypeError(`${what} needs lastId (the newest id the page shows; 0 for everything the backlog holds) or from: 'now'`);
      }
      const fromNow = opts.from === 'now';
      const lastId = fromNow ? 0 : opts.lastId;
      if (typeof lastId !== 'number') throw new TypeError(`${what}: lastId must be a number`);
      const rec = { active: true, onMessage: opts.onMessage, onReset: opts.onReset };
      const r = call('subscribe', channel, lastId, fromNow);
      if (!r.ok) throw new TypeError(`rt-client: ${r.error}`);
      if (!subs.has(channel)) subs.set(channel, new Set());
      subs.get(channel).add(rec);
      return {
        channel,
        lastId: () => (closed ? 0 : core.lastId(channel)),
        unsubscribe() {
          if (!rec.active) return;
          rec.active = false;
          const set = subs.get(channel);
          set.delete(rec);
          if (!set.size) subs.delete(channel);
          call('unsubscribe', channel);
        },
      };
    },

    watchScroll(container, opts = {}) {
      if (closed) throw new Error('rt-client: closed');
      if (typeof opts.onMessage !== 'function') throw new TypeError('rt-client: watchScroll needs onMessage');
      if (scroll) scroll.stop();
      const sel = opts.itemSelector || '[data-rt-channel]';
      const channelOf = opts.channelOf || ((el) => el.dataset && el.dataset.rtChannel);
      const lastIdOf = opts.lastIdOf || ((el) => (el.dataset && el.dataset.rtLastId) || 0);
      const w = win || globalThis;
      const isElement = container && container !== doc && container.getBoundingClientRect;
      const root = container && container.querySelectorAll ? container : doc;
      // The viewport is the window, narrowed to the container's visible box when the
      // container is an element (a scrolling box, or a long feed inside the page).
      const measure = opts.measure || (() => {
        const items = scrollItemsFromDom(root, sel, channelOf, lastIdOf);
        let viewport = { top: 0, left: 0, bottom: w.innerHeight || 0, right: w.innerWidth || 0 };
        if (isElement) {
          const r = container.getBoundingClientRect();
          const v = {
            top: Math.max(r.top, 0), left: Math.max(r.left, 0),
            bottom: Math.min(r.bottom, viewport.bottom), right: Math.min(r.right, viewport.right),
          };
          if (v.bottom > v.top && v.right > v.left) viewport = v;
        }
        return { items, viewport };
      });
      const offs = [];
      const rec = {
        active: true,
        onMessage: opts.onMessage,
        onReset: opts.onReset,
        measure: () => toScroll(measure()),
        stopListening() { for (const off of offs.splice(0)) off(); },
        stop() {
          if (!rec.active) return;
          rec.active = false;
          rec.stopListening();
          if (scroll === rec) {
            scroll = null;
            call('scrollEnd');
          }
        },
      };
      scroll = rec;
      if (!opts.measure && w && w.addEventListener) {
        // Scroll events do not bubble: capturing on the window sees the window's and every
        // element's (whichever box scrolls the feed). Resizing moves items too.
        const onScroll = () => call('scrollMoved');
        const o = { capture: true, passive: true };
        w.addEventListener('scroll', onScroll, o);
        w.addEventListener('resize', onScroll, o);
        offs.push(() => { w.removeEventListener('scroll', onScroll, o); w.removeEventListener('resize', onScroll, o); });
      }
      const settle = opts.settleMs === undefined ? -1 : Number(opts.settleMs);
      const closest = opts.closest === undefined ? 0 : Number(opts.closest);
      const r = scrollCall(rec.measure(), 'scrollBegin', settle, closest);
      if (!r.ok) report(new Error(`rt-client: ${r.error}`));
      return {
        stop: () => rec.stop(),
        // The user scrolled (for pages that drive scrolling themselves, e.g. with `measure`).
        notifyScroll: () => { if (rec.active) call('scrollMoved'); },
        // Re-measure now and listen to the closest items (e.g. after items were added).
        refresh: () => { if (rec.active) measured(); },
      };
    },

    onStatus(cb) {
      statusListeners.add(cb);
      safely(cb, status);
      return () => statusListeners.delete(cb);
    },
    status: () => withLag(status),
    // Stops polling (every poll aborted, status 'disconnected'), keeping every subscription
    // and last id; connect() resumes from the same ids. Both are idempotent.
    disconnect: () => { userPaused = true; applyPause(); },
    connect: () => { userPaused = false; applyPause(); },
    lastId: (channel) => (closed ? 0 : core.lastId(String(channel))),
    activePollUrls: () => (closed ? [] : JSON.parse(core.activePollUrls())),
    // Lets tests and pages without window events drive connectivity and visibility.
    setOnline: (online) => { call('setOnline', !!online); },
    setVisible: (visible) => { call('setVisible', !!visible); },
    // 'leader' (this tab polls for every tab of the origin), 'follower', or 'alone'.
    tabRole: () => (tabs ? tabs.role() : 'alone'),
    close: () => shutdown(),
  };
  return client;
}
