// One poll for all tabs (tabs.mjs) in Node: two clients stand for two tabs of one origin,
// with Node's BroadcastChannel and a Web Locks stand-in (Node 20 has none). The leader's fetch
// makes the only real request, merged from both tabs' polls; both get their messages; when
// the leader closes, the other tab leads and polls with the ids it had.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, wasmBinary, FakeFetch, ManualClock, pairsOf } from './helpers.mjs';

// A Web Locks stand-in: one holder at a time, waiters in order, abortable while waiting.
class FakeLocks {
  constructor() { this.queue = []; this.held = null; }
  request(name, opts, cb) {
    return new Promise((resolve, reject) => {
      const entry = { cb, resolve, reject };
      opts.signal?.addEventListener('abort', () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) { this.queue.splice(i, 1); reject(new DOMException('aborted', 'AbortError')); }
      });
      this.queue.push(entry);
      this.pump();
    });
  }
  pump() {
    if (this.held || !this.queue.length) return;
    const e = this.queue.shift();
    this.held = e;
    Promise.resolve().then(e.cb).then(e.resolve, e.reject).finally(() => { this.held = null; this.pump(); });
  }
}

async function until(what, cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function tab(locks) {
  const ff = new FakeFetch();
  const clock = new ManualClock();
  const rt = await createClient({
    baseUrl: 'http://127.0.0.1:8080', wasmBinary, fetch: ff.fetch, clock, seed: 3, probePath: '',
    window: new EventTarget(), document: null, navigator: { onLine: true, locks }, onError: (e) => { throw e; },
  });
  return { rt, ff, clock, got: [] };
}

const msg = (id, prev, payload) => ({ id, prev, payload });

test('two tabs, one real poll; hand-over to the other tab with its ids', async (t) => {
  const locks = new FakeLocks();
  const a = await tab(locks);
  const b = await tab(locks);
  t.after(() => { a.rt.close(); b.rt.close(); });
  await until('a leader', () => a.rt.tabRole() === 'leader');
  assert.equal(b.rt.tabRole(), 'follower');
  const sub = (t, c, lastId) => t.rt.subscribe(c, { lastId, onMessage: (p, id, ch) => t.got.push([ch, id, p]), onReset: () => assert.fail('reset') });
  sub(a, 'x', 5);
  sub(b, 'x', 5);
  sub(b, 'y', 7);
  await a.clock.advance(0);
  await b.clock.advance(0);
  await until('one merged real poll', () => a.ff.pending().length === 1 && pairsOf(a.ff.only().url).length === 2);
  assert.deepEqual(pairsOf(a.ff.only().url).sort(), [['x', 5], ['y', 7]]);
  assert.equal(b.ff.requests.length, 0, 'the follower makes no request');
  assert.equal(a.rt.activePollUrls().length, 1);
  assert.equal(b.rt.activePollUrls().length, 1);

  await a.ff.respond(a.ff.only(), 200, { x: { status: 'ok', msg: [msg(6, 5, 'six')] } });
  await until('both tabs got 6', () => a.got.length === 1 && b.got.length === 1);
  assert.deepEqual(a.got, [['x', 6, 'six']]);
  assert.deepEqual(b.got, [['x', 6, 'six']]);
  // Both re-poll; the leader merges them again into one request with the new ids.
  await until('the next merged poll', () => a.ff.pending().length === 1 && pairsOf(a.ff.only().url).some(([c, m]) => c === 'x' && m === 6));
  assert.deepEqual(pairsOf(a.ff.only().url).sort(), [['x', 6], ['y', 7]]);
  const held = a.ff.only();

  // The leader goes: b leads and polls with the ids it had; nothing is lost.
  a.rt.close();
  await until('b leads', () => b.rt.tabRole() === 'leader');
  assert.ok(held.aborted);
  await until('b polls', () => b.ff.pending().length === 1);
  assert.deepEqual(pairsOf(b.ff.only().url).sort(), [['x', 6], ['y', 7]]);
  await b.ff.respond(b.ff.only(), 200, { y: { status: 'ok', msg: [msg(8, 7, 'eight')] } });
  await until('b got 8', () => b.got.length === 2);
  assert.deepEqual(b.got.at(-1), ['y', 8, 'eight']);
  b.rt.close();
});

test('tabs at different ids of one channel: separate real requests until they meet', async (t) => {
  const locks = new FakeLocks();
  const a = await tab(locks);
  const b = await tab(locks);
  t.after(() => { a.rt.close(); b.rt.close(); });
  await until('a leader', () => a.rt.tabRole() === 'leader');
  const sub = (t, lastId) => t.rt.subscribe('x', { lastId, onMessage: (p, id) => t.got.push(id), onReset: () => assert.fail('reset') });
  sub(a, 10);
  sub(b, 8);
  await a.clock.advance(0);
  await b.clock.advance(0);
  await until('two real polls', () => a.ff.pending().length === 2);
  const byM = Object.fromEntries(a.ff.pending().map((r) => [pairsOf(r.url)[0][1], r]));
  assert.deepEqual(Object.keys(byM).sort(), ['10', '8']);
  await a.ff.respond(byM[8], 200, { x: { status: 'ok', msg: [msg(9, 8, 9), msg(10, 9, 10)] } });
  await until('b caught up', () => b.got.length === 2);
  assert.deepEqual(b.got, [9, 10]);
  // Now both are at 10: one request again (once b's next poll reached the leader).
  await new Promise((r) => setTimeout(r, 100));
  await until('one real poll', () => a.ff.pending().length === 1 && pairsOf(a.ff.only().url)[0][1] === 10);
  await a.ff.respond(a.ff.only(), 200, { x: { status: 'ok', msg: [msg(11, 10, 11)] } });
  await until('both got 11', () => a.got.includes(11) && b.got.includes(11)).catch((e) => {
    throw new Error(`${e.message}: a ${a.got}, b ${b.got}, requests ${a.ff.requests.map((r) => `${r.url} ${r.settled} ${r.aborted}`).join(' | ')}`);
  });
  assert.deepEqual(a.got, [11]);
  assert.deepEqual(b.got, [9, 10, 11]);
  a.rt.close();
  b.rt.close();
});

test('where Web Locks are refused (an opaque origin), the tab polls for itself', async (t) => {
  const refusing = { request: () => Promise.reject(new DOMException('not allowed here', 'SecurityError')) };
  const a = await tab(refusing);
  t.after(() => a.rt.close());
  a.rt.subscribe('x', { lastId: 3, onMessage: (p, id) => a.got.push(id), onReset: () => assert.fail('reset') });
  await a.clock.advance(0);
  await until('a polls alone', () => a.ff.pending().length === 1);
  assert.equal(a.rt.tabRole(), 'leader');
  await a.ff.respond(a.ff.only(), 200, { x: { status: 'ok', msg: [msg(4, 3, 'four')] } });
  await until('a got 4', () => a.got.length === 1);
});
