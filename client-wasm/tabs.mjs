// One poll for all tabs of an origin. Every tab keeps its own client core (its channels, last
// ids, dedupe, chain check, backoff); only the network is shared. A tab's core asks for its
// polls as usual, but host.mjs hands them to this transport instead of fetch: one tab, the
// leader (whoever holds the Web Lock of the group), merges every tab's pending polls into as
// few real requests as fit (one in the usual case) and answers each tab's poll with the whole
// body of the real request that covered it. The core ignores entries of channels its poll did
// not ask for, and every entry of its own channels was decided by the server for exactly the
// (channel, last id) pair it asked for, so each tab sees what a poll of its own would have
// brought. Tabs talk over a BroadcastChannel.
//
// Hand-over: when the leader goes (tab closed: the browser releases its lock), the next tab in
// the lock's queue becomes leader and says so; every tab sends its pending polls again, with
// the ids they carried, so nothing published meanwhile is missed. A poll answered by the old
// leader whose answer never arrived is simply asked again with the same ids.
//
// Merging rule: a real request holds each channel once, so two tabs at different last ids of
// one channel go into different requests (this lasts one answer: the one behind is answered at
// once and catches up). Requests stay under the URL budget and the channel limit of the tab
// that leads. Other requests (the status probe, GET /healthz) are passed through by the leader.

const MSG_REQ = 'req';        // tab -> leader: {tab, vid, url}
const MSG_ABORT = 'abort';    // tab -> leader: {tab, vid}
const MSG_RES = 'res';        // leader -> tab: {tab, vid, status, body, retryAfter}
const MSG_ERR = 'err';        // leader -> tab: {tab, vid, error}
const MSG_LEADER = 'leader';  // new leader -> all: {tab}

// After answering polls, the leader waits this long at most for the answered tabs to poll
// again, so that their next polls go out merged in one request.
const REPOLL_WAIT_MS = 50;

function randomId() {
  const a = new Uint32Array(2);
  globalThis.crypto.getRandomValues(a);
  return a[0].toString(36) + a[1].toString(36);
}

// The (channel -> last id) pairs and the base (origin + path) of a poll URL; null for any
// other request.
function parsePoll(url) {
  const u = new URL(url);
  const cs = u.searchParams.getAll('c');
  const ms = u.searchParams.getAll('m');
  if (!cs.length || cs.length !== ms.length) return null;
  const pairs = new Map();
  cs.forEach((c, i) => pairs.set(c, ms[i]));
  return { base: u.origin + u.pathname, pairs };
}

function pollUrl(base, pairs) {
  let q = '';
  for (const [c, m] of pairs) q += `${q ? '&' : ''}c=${encodeURIComponent(c)}&m=${m}`;
  return `${base}?${q}&cachebreak=${randomId().slice(0, 12)}`;
}

// The leader's side: the real requests. `reply(msg)` answers a tab.
class Merger {
  constructor({ fetch, init, urlBudget, maxChannels, reply }) {
    Object.assign(this, { fetchFn: fetch, init, urlBudget, maxChannels, reply });
    this.vpolls = new Map();  // "tab:vid" -> {tab, vid, base, pairs, real}
    this.reals = new Set();   // {base, pairs, members: Set of keys, ctl}
    this.timer = null;
    this.planQueued = false;
    this.awaiting = new Set();  // tabs answered just now, expected to poll again
    this.stopped = false;
  }

  handle(msg) {
    if (this.stopped) return;
    const key = `${msg.tab}:${msg.vid}`;
    if (msg.t === MSG_ABORT) {
      const vp = this.vpolls.get(key);
      if (!vp) return;
      this.vpolls.delete(key);
      if (vp.real) {
        vp.real.members.delete(key);
        if (!vp.real.members.size) this.drop(vp.real);
      }
      return;
    }
    if (msg.t !== MSG_REQ || this.vpolls.has(key)) return;
    const poll = parsePoll(msg.url);
    if (!poll) return this.passThrough(msg);
    const vp = { tab: msg.tab, vid: msg.vid, base: poll.base, pairs: poll.pairs, real: null };
    this.vpolls.set(key, vp);
    if (this.awaiting.delete(msg.tab) && !this.awaiting.size && this.timer) this.schedule();  // all back
    for (const real of this.reals) {
      if (real.base !== vp.base) continue;
      let covered = true;
      for (const [c, m] of vp.pairs) if (real.pairs.get(c) !== m) { covered = false; break; }
      if (covered) {
        vp.real = real;
        real.members.add(key);
        return;
      }
    }
    this.schedule();
  }

  // Plans at the end of this task, or once the tabs answered just now have polled again (at
  // most REPOLL_WAIT_MS: after a failure they back off instead). No timer on the usual path:
  // the leader may be a hidden tab, whose timers the browser delays to once a second.
  schedule() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.awaiting.size) {
      this.timer = setTimeout(() => this.plan(), REPOLL_WAIT_MS);
    } else if (!this.planQueued) {
      this.planQueued = true;
      queueMicrotask(() => { this.planQueued = false; this.plan(); });
    }
  }

  drop(real) {
    this.reals.delete(real);
    real.ctl.abort();
  }

  // Every pending poll afresh, packed into as few requests as fit: the running requests are
  // aborted (their polls are asked again with the same ids, so nothing is lost).
  plan() {
    clearTimeout(this.timer);
    this.timer = null;
    this.awaiting.clear();
    if (this.stopped) return;
    let unattached = false;
    for (const vp of this.vpolls.values()) if (!vp.real) unattached = true;
    if (!unattached) return;
    for (const real of [...this.reals]) this.drop(real);
    const groups = [];
    for (const [key, vp] of this.vpolls) {
      vp.real = null;
      let placed = false;
      for (const g of groups) {
        if (g.base !== vp.base) continue;
        const merged = new Map(g.pairs);
        let ok = true;
        for (const [c, m] of vp.pairs) {
          if (merged.has(c) && merged.get(c) !== m) { ok = false; break; }
          merged.set(c, m);
        }
        if (!ok || merged.size > this.maxChannels || pollUrl(g.base, merged).length > this.urlBudget) continue;
        g.pairs = merged;
        g.keys.push(key);
        placed = true;
        break;
      }
      if (!placed) groups.push({ base: vp.base, pairs: new Map(vp.pairs), keys: [key] });
    }
    for (const g of groups) this.start(g);
  }

  start(g) {
    const real = { base: g.base, pairs: g.pairs, members: new Set(g.keys), ctl: new AbortController() };
    for (const key of g.keys) this.vpolls.get(key).real = real;
    this.reals.add(real);
    const answer = (msgFor) => {
      if (!this.reals.has(real)) return;  // aborted meanwhile
      this.reals.delete(real);
      for (const key of real.members) {
        const vp = this.vpolls.get(key);
        this.vpolls.delete(key);
        this.awaiting.add(vp.tab);
        this.reply(msgFor(vp));
      }
      if (this.vpolls.size || this.awaiting.size) this.schedule();
    };
    Promise.resolve()
      .then(() => this.fetchFn(pollUrl(real.base, real.pairs), { ...this.init, signal: real.ctl.signal }))
      .then(async (resp) => {
        const body = await resp.text();
        const retryAfter = resp.headers && resp.headers.get ? resp.headers.get('Retry-After') : null;
        answer((vp) => ({ t: MSG_RES, tab: vp.tab, vid: vp.vid, status: resp.status, body, retryAfter }));
      })
      .catch((e) => answer((vp) => ({ t: MSG_ERR, tab: vp.tab, vid: vp.vid, error: `${e && e.name}: ${e && e.message}` })));
  }

  // The status probe (the only other request): low priority, as the tab asked.
  passThrough(msg) {
    const { credentials, cache } = this.init;
    Promise.resolve()
      .then(() => this.fetchFn(msg.url, { priority: 'low', credentials, cache }))
      .then(async (resp) => {
        const body = await resp.text();
        this.reply({ t: MSG_RES, tab: msg.tab, vid: msg.vid, status: resp.status, body, retryAfter: null });
      })
      .catch((e) => this.reply({ t: MSG_ERR, tab: msg.tab, vid: msg.vid, error: `${e && e.name}: ${e && e.message}` }));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const real of [...this.reals]) this.drop(real);
    this.vpolls.clear();
  }
}

/**
 * Returns the shared transport of group `name` ({fetch, role, suspend, resume, close}), or null
 * where the browser lacks Web Locks or BroadcastChannel. `fetch` is what the tab would have
 * used; `init` the fields of the real requests (credentials, headers).
 */
export function shareTabs({ name, fetch, init, urlBudget, maxChannels, navigator: nav }) {
  if (!nav || !nav.locks || typeof BroadcastChannel !== 'function' || !globalThis.crypto) return null;
  const tab = randomId();
  const mine = new Map();  // vid -> {url, resolve, reject}
  let nextVid = 1;
  let bc = null;
  let merger = null;
  let lockCtl = null;
  let release = null;
  let closed = false;

  function toTab(msg) {
    if (msg.tab === tab) return settle(msg);
    if (bc) bc.postMessage(msg);
  }
  function toLeader(msg) {
    if (merger) merger.handle(msg);
    else if (bc) bc.postMessage(msg);
  }
  function settle(msg) {
    const rec = mine.get(msg.vid);
    if (!rec) return;
    mine.delete(msg.vid);
    if (msg.t === MSG_ERR) return rec.reject(new TypeError(`shared poll failed: ${msg.error}`));
    const headers = msg.retryAfter ? { 'Retry-After': msg.retryAfter } : {};
    const nullBody = msg.status === 204 || msg.status === 205 || msg.status === 304;
    rec.resolve(new Response(nullBody ? null : msg.body, { status: msg.status, headers }));
  }
  function resendAll() {
    for (const [vid, rec] of mine) toLeader({ t: MSG_REQ, tab, vid, url: rec.url });
  }

  function join() {
    try {
      bc = new BroadcastChannel(`rt-tabs:${name}`);
    } catch (e) {  // refused here (an opaque origin): poll for this tab alone
      bc = null;
      lead();
      return;
    }
    bc.onmessage = (ev) => {
      const msg = ev.data || {};
      if (msg.t === MSG_REQ || msg.t === MSG_ABORT) { if (merger) merger.handle(msg); }
      else if (msg.t === MSG_RES || msg.t === MSG_ERR) { if (msg.tab === tab) settle(msg); }
      else if (msg.t === MSG_LEADER && msg.tab !== tab) resendAll();
    };
    const ctl = new AbortController();
    lockCtl = ctl;
    nav.locks.request(`rt-tabs:${name}`, { signal: ctl.signal }, () => new Promise((resolve) => {
      release = resolve;
      lead();
      bc.postMessage({ t: MSG_LEADER, tab });
    })).catch(() => {
      // Aborted because the tab left, or locks are refused here (an opaque origin, a
      // sandboxed frame): then this tab polls for itself rather than wait for a leader.
      if (!ctl.signal.aborted && lockCtl === ctl && !merger) lead();
    });
  }

  function lead() {
    merger = new Merger({ fetch, init, urlBudget, maxChannels, reply: toTab });
    resendAll();
  }

  // Leaves the group (pagehide: a page holding a lock or a channel is not kept in the
  // back/forward cache); the host has aborted its polls just before.
  function leave() {
    if (merger) { merger.stop(); merger = null; }
    if (release) { release(); release = null; }
    if (lockCtl) { lockCtl.abort(); lockCtl = null; }
    if (bc) { bc.close(); bc = null; }
  }

  join();
  return {
    fetch(url, reqInit = {}) {
      return new Promise((resolve, reject) => {
        const vid = nextVid++;
        const signal = reqInit.signal;
        mine.set(vid, { url, resolve, reject });
        if (signal) {
          signal.addEventListener('abort', () => {
            if (!mine.delete(vid)) return;
            toLeader({ t: MSG_ABORT, tab, vid });
            reject(new DOMException('The operation was aborted.', 'AbortError'));
          });
        }
        toLeader({ t: MSG_REQ, tab, vid, url });
      });
    },
    role: () => (closed ? 'closed' : merger ? 'leader' : 'follower'),
    suspend: () => { if (!closed) leave(); },
    resume: () => { if (!closed && !bc && !merger) join(); },
    close() {
      if (closed) return;
      closed = true;
      leave();
      for (const rec of mine.values()) rec.reject(new DOMException('The operation was aborted.', 'AbortError'));
      mine.clear();
    },
  };
}
