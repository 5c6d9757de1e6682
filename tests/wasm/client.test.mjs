// The wasm client through its public JS API in Node, with a fake fetch and a manual clock:
// the scenarios of the native unit tests, now across the embind boundary and the JS host.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, newClient, pairsOf, wasmBinary } from './helpers.mjs';

const okEntry = (ids) => ({ status: 'ok', msg: ids.map((id) => ({ id, payload: { n: id } })) });

test('subscribe polls with the last id; messages once, in order, payloads parsed', async () => {
  const { rt, clock, ff, statuses } = await newClient();
  const got = [];
  const sub = rt.subscribe('thread.42', { kind: 'state', lastId: 17, onMessage: (p, id, c) => got.push([c, id, p]) });
  await clock.advance(0);
  assert.deepEqual(pairsOf(ff.only().url), [['thread.42', 17]]);
  assert.match(ff.only().url, /^http:\/\/127\.0\.0\.1:8080\/rt\?c=thread\.42&m=17&cachebreak=[0-9a-f]{12}$/);
  assert.deepEqual(rt.activePollUrls(), [ff.only().url]);
  assert.equal(statuses.at(-1).state, 'connecting');
  await ff.respond(ff.only(), 200, { 'thread.42': okEntry([17, 18, 19]) });
  assert.equal(statuses.at(-1).state, 'live');
  assert.deepEqual(pairsOf(ff.only().url), [['thread.42', 19]]);  // re-polled at once
  await ff.respond(ff.only(), 200, { 'thread.42': okEntry([19, 20]) });
  await ff.respond(ff.only(), 200, {});
  assert.deepEqual(got, [['thread.42', 18, { n: 18 }], ['thread.42', 19, { n: 19 }], ['thread.42', 20, { n: 20 }]]);
  assert.equal(sub.lastId(), 20);
  assert.equal(rt.lastId('thread.42'), 20);
  rt.close();
  assert.ok(ff.requests.at(-1).aborted);
});

test('reset: onReset gets the newest message; without onReset it goes to onMessage', async () => {
  const { rt, clock, ff } = await newClient();
  const resets = [];
  const reasons = [];
  const msgs = [];
  rt.subscribe('a', { lastId: 3, onMessage: () => assert.fail('no message expected'), onReset: (n, id, c, r) => { resets.push([n, id, c]); reasons.push(r); } });
  rt.subscribe('b', { lastId: 0, kind: 'state', onMessage: (p, id) => msgs.push([p, id]) });
  await clock.advance(0);
  await ff.respond(ff.only(), 200, {
    a: { status: 'reset', id: 70, reason: 'behind', msg: [{ id: 70, payload: 'x' }] },
    b: { status: 'reset', id: 9, msg: [{ id: 9, payload: { stickers: 4 } }] },
  });
  assert.deepEqual(resets, [[{ id: 70, payload: 'x' }, 70, 'a']]);
  assert.deepEqual(msgs, [[{ stickers: 4 }, 9]]);
  assert.deepEqual(pairsOf(ff.only().url), [['a', 70], ['b', 9]]);
  await ff.respond(ff.only(), 200, { a: { status: 'reset', id: 0, reason: 'lost', msg: [] } });
  assert.deepEqual(resets.at(-1), [null, 0, 'a']);
  assert.deepEqual(reasons, ['behind', 'lost']);
  rt.close();
});

test('network errors and 5xx back off with jitter, honour Retry-After, reset after success', async () => {
  const { rt, clock, ff, statuses } = await newClient();
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage() {} });
  await clock.advance(0);
  const bounds = [200, 250, 500, 1000, 2000];
  for (const bound of bounds) {
    await ff.fail(ff.only(), 'connection refused');
    assert.equal(ff.pending().length, 0);
    const s = statuses.at(-1);
    assert.equal(s.state, 'retrying');
    assert.ok(s.retryInMs >= 0 && s.retryInMs <= bound, `${s.retryInMs} <= ${bound}`);
    assert.match(s.reason, /network error: TypeError: connection refused/);
    await clock.advance(s.retryInMs);
    assert.equal(ff.pending().length, 1);
  }
  await ff.respond(ff.only(), 503, '{"error":"redis unreachable"}', { 'Retry-After': '3' });
  assert.equal(statuses.at(-1).httpStatus, 503);
  const wait = statuses.at(-1).retryInMs;
  assert.ok(wait >= 3000 && wait <= 4000, `${wait}`);  // max(Retry-After, jitter 0..4000)
  await clock.advance(2999);
  assert.equal(ff.pending().length, 0);
  await clock.advance(wait - 2999);
  assert.equal(ff.pending().length, 1);
  await ff.respond(ff.only(), 200, '{}');
  assert.equal(statuses.at(-1).state, 'live');
  await ff.fail(ff.only());
  assert.ok(statuses.at(-1).retryInMs <= 200);  // back to the first step
  rt.close();
});

test('a 4xx is an error status and is retried with backoff, not in a loop', async () => {
  const { rt, clock, ff, statuses } = await newClient();
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage() {} });
  await clock.advance(0);
  await ff.respond(ff.only(), 400, '{"error":"parameter m: not an id"}');
  const s = statuses.at(-1);
  assert.equal(s.state, 'error');
  assert.equal(s.httpStatus, 400);
  assert.match(s.reason, /parameter m/);
  assert.equal(ff.pending().length, 0);
  const before = ff.requests.length;
  await clock.advance(250);
  assert.equal(ff.requests.length, before + 1);
  rt.close();
});

test('client-side deadline: poll timeout + margin aborts and retries', async () => {
  const { rt, clock, ff, statuses } = await newClient({ pollTimeoutMs: 10000, deadlineMarginMs: 1000 });
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage() {} });
  await clock.advance(0);
  const first = ff.only();
  await clock.advance(10999);
  assert.equal(first.aborted, false);
  await clock.advance(1);
  assert.equal(first.aborted, true);
  assert.match(statuses.at(-1).reason, /deadline/);
  await clock.advance(200);
  assert.notEqual(ff.only(), first);
  rt.close();
});

test('offline aborts the poll and waits; online retries at once (window events)', async () => {
  const win = new EventTarget();
  const { rt, clock, ff, statuses } = await newClient({ window: win });
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage() {} });
  await clock.advance(0);
  const first = ff.only();
  win.dispatchEvent(new Event('offline'));
  assert.ok(first.aborted);
  assert.equal(statuses.at(-1).state, 'offline');
  await clock.advance(60000);
  assert.equal(ff.pending().length, 0);
  win.dispatchEvent(new Event('online'));
  assert.equal(ff.pending().length, 1);
  assert.equal(statuses.at(-1).state, 'connecting');
  rt.close();
  assert.equal(ff.pending().length, 0);
});

test('becoming visible after the deadline passed retries at once (document events)', async () => {
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  const { rt, clock, ff } = await newClient({ document: doc });
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage() {} });
  await clock.advance(0);
  const first = ff.only();
  doc.visibilityState = 'hidden';
  doc.dispatchEvent(new Event('visibilitychange'));
  clock.t += 120000;  // a hidden tab: timers throttled, nothing fired
  doc.visibilityState = 'visible';
  doc.dispatchEvent(new Event('visibilitychange'));
  assert.ok(first.aborted);
  assert.notEqual(ff.only(), first);
  rt.close();
});

test('channels that do not fit the URL budget are split over concurrent polls', async () => {
  const { rt, clock, ff } = await newClient({ urlBudget: 400 });
  const names = Array.from({ length: 50 }, (_, i) => `thread.${i}`);
  for (const [i, n] of names.entries()) rt.subscribe(n, { kind: 'state', lastId: 100 + i, onMessage() {} });
  await clock.advance(0);
  const urls = rt.activePollUrls();
  assert.ok(urls.length > 1);
  assert.equal(ff.pending().length, urls.length);
  for (const u of urls) assert.ok(u.length <= 400, `${u.length} bytes`);
  const pairs = urls.flatMap(pairsOf).sort((x, y) => x[1] - y[1]);
  assert.deepEqual(pairs, names.map((n, i) => [n, 100 + i]));
  rt.close();
});

test('changing the channel set aborts the poll and carries every last id; re-adding resumes', async () => {
  const { rt, clock, ff } = await newClient();
  const got = [];
  const a = rt.subscribe('a', { lastId: 0, kind: 'state', onMessage: (p, id, c) => got.push(c + id) });
  rt.subscribe('b', { lastId: 0, kind: 'state', onMessage: (p, id, c) => got.push(c + id) });
  await clock.advance(0);
  await ff.respond(ff.only(), 200, { a: okEntry([1, 2]), b: okEntry([5]) });
  const running = ff.only();
  rt.subscribe('c', { kind: 'state', lastId: 9, onMessage() {} });
  await clock.advance(0);
  assert.ok(running.aborted);
  assert.deepEqual(pairsOf(ff.only().url), [['a', 2], ['b', 5], ['c', 9]]);
  a.unsubscribe();
  a.unsubscribe();  // idempotent
  await clock.advance(0);
  assert.deepEqual(pairsOf(ff.only().url), [['b', 5], ['c', 9]]);
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage: (p, id, c) => got.push(c + id) });
  await clock.advance(0);
  assert.deepEqual(pairsOf(ff.only().url), [['a', 2], ['b', 5], ['c', 9]]);
  await ff.respond(ff.only(), 200, { a: okEntry([2, 3]) });
  assert.deepEqual(got, ['a1', 'a2', 'b5', 'a3']);
  rt.close();
});

test('infinite scroll without a DOM: all items, nothing while scrolling, closest 40 after 1 s', async () => {
  const { rt, clock, ff } = await newClient();
  let scrollTop = 0;
  const measure = () => ({
    viewport: { top: 0, left: 0, bottom: 800, right: 1000 },
    items: Array.from({ length: 150 }, (_, i) => ({
      channel: `img.${i}`, rect: { top: i * 100 - scrollTop, left: 0, bottom: i * 100 + 90 - scrollTop, right: 300 },
    })),
  });
  const got = [];
  const watch = rt.watchScroll(null, { measure, onMessage: (p, id, c) => got.push([c, id]) });
  await clock.advance(0);
  const channels = () => rt.activePollUrls().flatMap(pairsOf).map(([c]) => c).sort();
  assert.equal(channels().length, 150);
  const before = ff.requests.length;
  for (let i = 0; i < 8; i++) {  // scrolling for 2.4 s
    scrollTop += 500;
    watch.notifyScroll();
    await clock.advance(300);
  }
  assert.equal(ff.requests.length, before);  // nothing changed while scrolling
  await clock.advance(699);
  assert.equal(ff.requests.length, before);
  await clock.advance(1);  // 1 s after the last scroll event
  const now = channels();
  assert.equal(now.length, 40);
  assert.ok(now.includes('img.40') && now.includes('img.47'));  // visible at scrollTop 4000
  assert.ok(!now.includes('img.0') && !now.includes('img.149'));
  await ff.respond(ff.pending()[0], 200, { 'img.41': okEntry([1]) });
  assert.deepEqual(got, [['img.41', 1]]);
  watch.stop();
  await clock.advance(0);
  assert.equal(rt.activePollUrls().length, 0);
  rt.close();
});

test('watchScroll settleMs and closest options', async () => {
  const { rt, clock } = await newClient();
  const measure = () => ({
    viewport: { top: 0, left: 0, bottom: 100, right: 100 },
    items: Array.from({ length: 10 }, (_, i) => ({ channel: `i${i}`, rect: { top: i * 50, left: 0, bottom: i * 50 + 40, right: 10 } })),
  });
  const watch = rt.watchScroll(null, { measure, onMessage() {}, settleMs: 200, closest: 3 });
  await clock.advance(0);
  watch.notifyScroll();
  await clock.advance(200);
  assert.deepEqual(rt.activePollUrls().flatMap(pairsOf).map(([c]) => c), ['i0', 'i1', 'i2']);
  rt.close();
});

test('malformed and truncated bodies give a retrying status, never a crash', async () => {
  const { rt, clock, ff, statuses, errors } = await newClient();
  const got = [];
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage: (p, id) => got.push(id) });
  await clock.advance(0);
  const good = JSON.stringify({ a: okEntry([1, 2]) });
  const bad = ['', 'null', '<html>', '{"a":{"status":"ok","msg":[{"id":"1","payload":1}]}}', '\u0000\u0001'];
  for (let len = 0; len < good.length; len += 7) bad.push(good.slice(0, len));
  for (const body of bad) {
    await ff.respond(ff.only(), 200, body);
    assert.equal(statuses.at(-1).state, 'retrying');
    assert.match(statuses.at(-1).reason, /malformed response/);
    await clock.advance(statuses.at(-1).retryInMs);
  }
  await ff.respond(ff.only(), 200, good);
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(errors, []);
  rt.close();
});

test('bad input is rejected with clear errors', async () => {
  await assert.rejects(createClient({ baseUrl: 'http://h', wasmBinary, urlBudget: 10, window: null, document: null, navigator: null }), /urlBudget/);
  await assert.rejects(createClient({ baseUrl: 'http://h', wasmBinary, closest: 1.5, window: null, document: null, navigator: null }), /closest/);
  const { rt } = await newClient();
  assert.throws(() => rt.subscribe('no spaces', { lastId: 0, kind: 'state', onMessage() {} }), TypeError);
  assert.throws(() => rt.subscribe('x'.repeat(129), { lastId: 0, kind: 'state', onMessage() {} }), /invalid channel name/);
  assert.throws(() => rt.subscribe('ok', { kind: 'state', lastId: -1, onMessage() {} }), /lastId/);
  assert.throws(() => rt.subscribe('ok', {}), /onMessage/);
  rt.close();
});

test('an exception in a page callback is reported and delivery goes on', async () => {
  const { rt, clock, ff, errors } = await newClient();
  const got = [];
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage: (p, id) => { got.push(id); if (id === 1) throw new Error('page bug'); } });
  await clock.advance(0);
  await ff.respond(ff.only(), 200, { a: okEntry([1, 2]) });
  assert.deepEqual(got, [1, 2]);
  assert.equal(errors.length, 1);
  assert.equal(ff.pending().length, 1);
  rt.close();
});

test('callbacks may subscribe and unsubscribe re-entrantly', async () => {
  const { rt, clock, ff } = await newClient();
  const got = [];
  let sub2 = null;
  const sub = rt.subscribe('a', {
    lastId: 0,
    kind: 'state',
    onMessage: (p, id) => {
      got.push(id);
      if (!sub2) sub2 = rt.subscribe('b', { lastId: 0, kind: 'state', onMessage: (q, j) => got.push(`b${j}`) });
      if (id === 2) sub.unsubscribe();
    },
  });
  await clock.advance(0);
  await ff.respond(ff.only(), 200, { a: okEntry([1, 2, 3]) });
  assert.deepEqual(got, [1, 2]);  // unsubscribed during 2: 3 is not delivered
  await clock.advance(0);
  assert.deepEqual(pairsOf(ff.only().url), [['b', 0]]);
  assert.equal(rt.lastId('a'), 3);
  rt.close();
});

// The browser parses the body (JSON.parse): numbers and escapes arrive exactly as sent.
test('payload numbers, strings and escapes survive the wasm JSON round trip', async () => {
  const { rt, clock, ff, statuses } = await newClient();
  const got = [];
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage: (p) => got.push(p) });
  await clock.advance(0);
  const reals = [0.1, 1.5, -2.5e-7, 1e-5, 0.0001, 123456789.123, 1e21, 1e22, 5e-324, 1.7976931348623157e308,
    100, 2 ** 53 - 1, -(2 ** 53) + 1, 3.141592653589793, 1 / 3, 6.02214076e23];
  const payload = { reals, real100: 'x', negzero: 'x', s: 'ctl:\u0001\u001f tab:\t quote:" bs:\\ uni:é😀', nested: [[{}], null, true, false] };
  const body = JSON.stringify({ a: { status: 'ok', msg: [{ id: 1, payload }] } })
    .replace('"real100":"x"', '"real100":100.0')  // a JSON real with no fraction stays numeric
    .replace('"negzero":"x"', '"negzero":-0.0');
  await ff.respond(ff.only(), 200, body);
  assert.equal(statuses.at(-1).state, 'live', statuses.at(-1).reason);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].reals, reals);
  assert.equal(got[0].real100, 100);
  assert.ok(Object.is(got[0].negzero, -0));
  assert.equal(got[0].s, payload.s);
  assert.deepEqual(got[0].nested, payload.nested);
  // An id that is not an integer (1e400 is Infinity to JSON.parse) breaks the rules; text that
  // is not JSON gets the parser's message.
  await ff.respond(ff.only(), 200, '{"a":{"status":"ok","msg":[{"id":1e400,"payload":1}]}}');
  assert.match(statuses.at(-1).reason, /malformed response: a: bad message/);
  await clock.advance(statuses.at(-1).retryInMs);
  await ff.respond(ff.only(), 200, '<html>');
  assert.match(statuses.at(-1).reason, /malformed response: invalid JSON: .+/);
  rt.close();
});

// The browser parses the body; the core checks what it reads with the protocol module's rules
// (proto::ResponseReader, the same as parse_response natively): each broken rule is named.
test('the response rules after JSON.parse: each malformed shape is named, nothing delivered', async () => {
  const { rt, clock, ff, statuses } = await newClient();
  const got = [];
  rt.subscribe('a', { lastId: 0, onMessage: (p, id) => got.push(id), onReset: (n, id) => got.push(`reset ${id}`) });
  await clock.advance(0);
  const cases = [
    ['[1]', /not a JSON object/],
    ['{"bad name":{"status":"ok","msg":[]}}', /bad channel name/],
    ['{"a":[]}', /a: not an object/],
    ['{"a":{"msg":[]}}', /a: no status/],
    ['{"a":{"status":"gone","msg":[]}}', /a: bad status/],
    ['{"a":{"status":"reset","id":-1,"msg":[]}}', /a: bad reset id/],
    ['{"a":{"status":"reset","id":1.5,"msg":[]}}', /a: bad reset id/],
    ['{"a":{"status":"reset","id":9007199254740992,"msg":[]}}', /a: bad reset id/],
    ['{"a":{"status":"reset","id":3,"reason":1,"msg":[]}}', /a: bad reset reason/],
    ['{"a":{"status":"ok","msg":{}}}', /a: no msg array/],
    ['{"a":{"status":"ok","msg":[]}}', /a: empty ok/],
    ['{"a":{"status":"ok","msg":[{"id":1}]}}', /a: bad message/],
    ['{"a":{"status":"ok","msg":[{"id":"1","payload":1}]}}', /a: bad message/],
    ['{"a":{"status":"ok","msg":[{"id":2,"prev":2,"payload":1}]}}', /a: bad message/],
    ['{"a":{"status":"ok","msg":[[1]]}}', /a: bad message/],
    ['{"a":{"status":"ok","msg":[{"id":2,"prev":1,"payload":1},{"id":2,"prev":1,"payload":1}]}}', /a: ids not ascending/],
  ];
  for (const [body, why] of cases) {
    await ff.respond(ff.only(), 200, body);
    assert.equal(statuses.at(-1).state, 'retrying', body);
    assert.match(statuses.at(-1).reason, why, body);
    await clock.advance(statuses.at(-1).retryInMs);
  }
  assert.deepEqual(got, []);
  // A reset's id 0, an absent reason (a version-1 server: lost), 1e3 as an id: all valid.
  await ff.respond(ff.only(), 200, '{"a":{"status":"ok","msg":[{"id":1e3,"prev":0,"payload":null}]}}');
  assert.equal(statuses.at(-1).state, 'live', statuses.at(-1).reason);
  assert.deepEqual(got, [1000]);
  rt.close();
});

test('watchScroll over DOM-like elements: data attributes, rects, window scroll events', async () => {
  const win = new EventTarget();
  win.innerHeight = 800;
  win.innerWidth = 1000;
  let scrollY = 0;
  const els = Array.from({ length: 100 }, (_, i) => ({
    dataset: i === 3 ? { rtChannel: `img.${i}`, rtLastId: '12' } : { rtChannel: `img.${i}` },
    getBoundingClientRect: () => ({ top: i * 100 - scrollY, left: 0, bottom: i * 100 + 90 - scrollY, right: 500 }),
  }));
  const container = {
    querySelectorAll: (sel) => { assert.equal(sel, '[data-rt-channel]'); return els; },
    getBoundingClientRect: () => ({ top: 50 - scrollY, left: 0, bottom: 10050 - scrollY, right: 1000 }),
  };
  const { rt, clock } = await newClient({ window: win });
  const watch = rt.watchScroll(container, { onMessage() {}, closest: 10 });
  await clock.advance(0);
  const pairs = () => rt.activePollUrls().flatMap(pairsOf);
  assert.equal(pairs().length, 100);
  assert.deepEqual(pairs().find(([c]) => c === 'img.3'), ['img.3', 12]);
  scrollY = 5000;
  win.dispatchEvent(new Event('scroll'));
  await clock.advance(999);
  assert.equal(pairs().length, 100);
  await clock.advance(1);
  const chosen = pairs().map(([c]) => Number(c.slice(4))).sort((a, b) => a - b);
  assert.equal(chosen.length, 10);
  assert.ok(chosen.includes(50) && chosen.includes(57), `${chosen}`);  // visible rows
  assert.ok(chosen.every((n) => n >= 45 && n <= 60), `${chosen}`);
  watch.stop();
  win.dispatchEvent(new Event('scroll'));  // listeners removed: nothing armed
  await clock.advance(2000);
  assert.equal(rt.activePollUrls().length, 0);
  rt.close();
});

// Contract v2 chain check through the public API: the fake server sends a message whose
// prev is not the last id the client has; the page gets a `lost` reset, never a silent gap.
test('a broken chain from the server reaches the page as a lost reset', async () => {
  const { rt, clock, ff } = await newClient();
  const got = [];
  rt.subscribe('t', {
    lastId: 1000,
    onMessage: (p, id) => got.push(['msg', id, p]),
    onReset: (newest, id, c, reason) => got.push(['reset', id, c, reason, newest]),
  });
  await clock.advance(0);
  await ff.respond(ff.only(), 200, { t: { status: 'ok', msg: [{ id: 1500, prev: 1000, payload: 1 }, { id: 1800, prev: 1500, payload: 2 }] } });
  await ff.respond(ff.only(), 200, { t: { status: 'ok', msg: [{ id: 2500, prev: 2200, payload: 3 }] } });  // 2200 never arrived
  assert.deepEqual(got, [['msg', 1500, 1], ['msg', 1800, 2], ['reset', 2500, 't', 'lost', { id: 2500, payload: 3 }]]);
  assert.deepEqual(pairsOf(ff.only().url), [['t', 2500]]);
  await ff.respond(ff.only(), 200, { t: { status: 'ok', msg: [{ id: 2600, prev: 2500, payload: 4 }] } });
  assert.deepEqual(got.at(-1), ['msg', 2600, 4]);
  rt.close();
});

test('safe defaults: lastId or from, onReset for stream channels, clear errors', async () => {
  const { rt } = await newClient();
  const on = () => {};
  assert.throws(() => rt.subscribe('a', { onMessage: on, onReset: on }), /needs lastId .* or from: 'now'/);
  assert.throws(() => rt.subscribe('a', { lastId: 0, onMessage: on }), /stream channel needs onReset/);
  assert.throws(() => rt.subscribe('a', { from: 'now', lastId: 3, onMessage: on, onReset: on }), /not both/);
  assert.throws(() => rt.subscribe('a', { from: 'start', onMessage: on, onReset: on }), /from must be 'now'/);
  assert.throws(() => rt.subscribe('a', { lastId: 0, kind: 'list', onMessage: on }), /kind must be/);
  assert.throws(() => rt.subscribe('a', { lastId: '3', kind: 'state', onMessage: on }), /lastId must be a number/);
  assert.deepEqual(rt.activePollUrls(), []);  // nothing was subscribed
  rt.subscribe('s', { lastId: 0, kind: 'state', onMessage: on });  // a state channel may omit onReset
  rt.close();
});

test("from: 'now' delivers only what comes after the server's first answer; lastId resumes", async () => {
  const { rt, clock, ff } = await newClient();
  const got = [];
  rt.subscribe('n', { from: 'now', onMessage: (p, id) => got.push(id), onReset: () => assert.fail('no reset expected') });
  rt.subscribe('r', { lastId: 40, onMessage: (p, id) => got.push(id), onReset: () => assert.fail('no reset expected') });
  await clock.advance(0);
  assert.deepEqual(pairsOf(ff.only().url), [['n', 2 ** 53 - 1], ['r', 40]]);
  await ff.respond(ff.only(), 200, {
    n: { status: 'reset', id: 90, reason: 'lost', msg: [{ id: 90, prev: 80, payload: 'old' }] },
    r: { status: 'ok', msg: [{ id: 41, prev: 40, payload: 'x' }] },
  });
  assert.deepEqual(got, [41]);
  assert.equal(rt.lastId('n'), 90);
  assert.deepEqual(pairsOf(ff.only().url), [['n', 90], ['r', 41]]);
  await ff.respond(ff.only(), 200, { n: { status: 'ok', msg: [{ id: 95, prev: 90, payload: 'new' }] } });
  assert.deepEqual(got, [41, 95]);
  rt.close();
});

test('disconnect() aborts and waits, connect() resumes from the same ids; pagehide/pageshow too', async () => {
  const win = new EventTarget();
  const { rt, clock, ff, statuses } = await newClient({ window: win });
  rt.subscribe('a', { lastId: 5, kind: 'state', onMessage() {} });
  await clock.advance(0);
  await ff.respond(ff.only(), 200, { a: okEntry([6]) });
  assert.equal(rt.status().state, 'live');
  assert.equal(rt.status().lagMs, 0);
  const held = ff.only();
  rt.disconnect();
  rt.disconnect();  // idempotent
  assert.ok(held.aborted);
  assert.equal(ff.pending().length, 0);
  assert.equal(statuses.at(-1).state, 'disconnected');
  await clock.advance(60000);
  assert.equal(ff.pending().length, 0);
  assert.ok(rt.status().lagMs >= 60000, `${rt.status().lagMs}`);
  rt.connect();
  assert.deepEqual(pairsOf(ff.only().url), [['a', 6]]);
  assert.equal(statuses.at(-1).state, 'connecting');
  // The back/forward cache: pagehide aborts, pageshow resumes from the same ids.
  win.dispatchEvent(new Event('pagehide'));
  assert.equal(ff.pending().length, 0);
  assert.equal(rt.status().state, 'disconnected');
  win.dispatchEvent(new Event('pageshow'));
  assert.deepEqual(pairsOf(ff.only().url), [['a', 6]]);
  // disconnect() wins over pageshow.
  rt.disconnect();
  win.dispatchEvent(new Event('pagehide'));
  win.dispatchEvent(new Event('pageshow'));
  assert.equal(ff.pending().length, 0);
  rt.connect();
  assert.equal(ff.pending().length, 1);
  rt.close();
});

test('a failed wasm load is not cached: the next createClient tries again', async () => {
  await assert.rejects(createClient({ wasmBinary: new Uint8Array([0, 97, 115, 109, 9, 9, 9, 9]), window: null, document: null, navigator: null }));
  const rt = await createClient({ wasmBinary, window: null, document: null, navigator: null, fetch: () => new Promise(() => {}) });
  rt.close();
});

test("'live' needs a real answer: a held poll is probed once with GET /healthz at low priority", async () => {
  const { rt, clock, ff, statuses } = await newClient({ probePath: undefined, probeAfterMs: 1000 });
  rt.subscribe('a', { lastId: 0, kind: 'state', onMessage() {} });
  await clock.advance(0);
  const poll = ff.only();
  await clock.advance(999);
  assert.equal(ff.pending().length, 1);
  await clock.advance(1);
  const probe = ff.pending().find((r) => r !== poll);
  assert.equal(probe.url, 'http://127.0.0.1:8080/healthz');
  assert.equal(probe.init.priority, 'low');
  await clock.advance(20000);  // unanswered (it would be, behind a queued poll): not live
  assert.equal(statuses.at(-1).state, 'connecting');
  assert.equal(ff.pending().length, 2);
  await ff.respond(probe, 200, '{"status":"ok"}');
  assert.equal(statuses.at(-1).state, 'live');
  assert.equal(ff.only(), poll);
  rt.close();
  // path /x/rt probes /x/healthz.
  const other = await newClient({ probePath: undefined, path: '/x/rt', probeAfterMs: 0 });
  other.rt.subscribe('a', { lastId: 0, kind: 'state', onMessage() {} });
  await other.clock.advance(0);
  await other.clock.advance(0);
  assert.ok(other.ff.pending().some((r) => r.url === 'http://127.0.0.1:8080/x/healthz'), other.ff.pending().map((r) => r.url).join());
  other.rt.close();
});
