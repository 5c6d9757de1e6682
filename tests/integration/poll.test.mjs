// GET /rt: catch-up, long poll, timeout, multi-channel, resets (gap, deleted keys,
// FLUSHALL), state channels, and messages written straight into Redis by other backends.
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import {
  test, startStack, assertCleanShutdown, poll, publishOk, waitHeld, heldPoll, heldPolls, keys,
  uniqueChannel, metricsText, metricValue, get, assertStillServes, msg, chain, assertTimeId,
} from './lib/harness.mjs';

const POLL_TIMEOUT = 1.5; // seconds
let stack, base, redis;

before(async () => {
  stack = await startStack({ pollTimeout: POLL_TIMEOUT });
  base = stack.base;
  redis = stack.client;
});
after(async () => { await stack?.stop(); });

function assertJsonHeaders(r) {
  assert.match(r.headers.get('content-type') || '', /^application\/json\b/i, 'Content-Type');
  assert.match(r.headers.get('cache-control') || '', /\bno-store\b/i, 'Cache-Control');
}

test('publish then catch-up poll returns the message', async () => {
  const c = uniqueChannel();
  const id1 = await publishOk(base, c, { text: 'hello', n: 1 });
  assertTimeId(id1, 'first id of a new channel');
  const r = await poll(base, [[c, 0]]);
  assert.equal(r.status, 200);
  assertJsonHeaders(r);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id1, 0, { text: 'hello', n: 1 })] } });

  const id2 = await publishOk(base, c, 'two');
  const id3 = await publishOk(base, c, [3]);
  assert.ok(id1 < id2 && id2 < id3, 'ids increase');
  const r2 = await poll(base, [[c, id1]]);
  assert.deepEqual(r2.json, { [c]: { status: 'ok', msg: [msg(id2, id1, 'two'), msg(id3, id2, [3])] } });
  // cachebreak is ignored
  const r3 = await poll(base, [[c, id2]], { extra: '&cachebreak=12345' });
  assert.equal(r3.status, 200);
  assert.deepEqual(r3.json, { [c]: { status: 'ok', msg: [msg(id3, id2, [3])] } });
});

test('poll with nothing new times out with 200 {}', async () => {
  const c = uniqueChannel();
  const id = await publishOk(base, c, 1);
  const t0 = Date.now();
  const r = await poll(base, [[c, id], [uniqueChannel('never'), 0]]);
  const ms = Date.now() - t0;
  assert.equal(r.status, 200, r.body);
  assertJsonHeaders(r);
  assert.deepEqual(r.json, {});
  assert.ok(ms >= POLL_TIMEOUT * 1000 - 250, `answered after ${ms} ms, poll timeout is ${POLL_TIMEOUT} s`);
  assert.ok(ms < POLL_TIMEOUT * 1000 + 1500, `answered after ${ms} ms, poll timeout is ${POLL_TIMEOUT} s`);
});

test('held long poll is woken by a publish (< 500 ms)', async () => {
  const c = uniqueChannel();
  const last = await publishOk(base, c, 'old');
  const pending = await heldPoll(base, [[c, last]]);
  const t0 = Date.now();
  const id = await publishOk(base, c, { fresh: true });
  const r = await pending.response;
  const latency = Date.now() - t0;
  assert.equal(r.status, 200);
  assertJsonHeaders(r);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id, last, { fresh: true })] } });
  assert.ok(latency < 500, `woken ${latency} ms after the publish`);
});

test('a poll on a never-published channel is woken by its first message', async () => {
  const c = uniqueChannel();
  const pending = await heldPoll(base, [[c, 0]]);
  const id = await publishOk(base, c, 'first');
  const r = await pending.response;
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id, 0, 'first')] } });
  assertTimeId(id);
});

test('multi-channel poll answers only the channels with news', async () => {
  const a = uniqueChannel('a'), b = uniqueChannel('b'), c = uniqueChannel('c');
  const a1 = await publishOk(base, a, 'a1');
  const a2 = await publishOk(base, a, 'a2');
  const b1 = await publishOk(base, b, 'b1');
  // a has news after a1, b is up to date, c was never published (N == 0 == L).
  const r = await poll(base, [[a, a1], [b, b1], [c, 0]]);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { [a]: { status: 'ok', msg: [msg(a2, a1, 'a2')] } });

  // Held on all three; a publish on b wakes it with b only.
  const pending = await heldPoll(base, [[a, a2], [b, b1], [c, 0]]);
  const b2 = await publishOk(base, b, 'b2');
  const r2 = await pending.response;
  assert.deepEqual(r2.json, { [b]: { status: 'ok', msg: [msg(b2, b1, 'b2')] } });

  // Several channels with news are all answered at once, in one response.
  const a3 = await publishOk(base, a, 'a3');
  const c1 = await publishOk(base, c, 'c1');
  const r3 = await poll(base, [[a, a2], [b, b2], [c, 0]]);
  assert.deepEqual(r3.json, {
    [a]: { status: 'ok', msg: [msg(a3, a2, 'a3')] },
    [c]: { status: 'ok', msg: [msg(c1, 0, 'c1')] },
  });
});

test('a poll held on 500 channels is woken by a publish on the last one, answered for it alone', async () => {
  const prefix = uniqueChannel('many');
  const pairs = Array.from({ length: 500 }, (_, i) => [`${prefix}-${i}`, 0]);
  const pending = await heldPoll(base, pairs);
  const id = await publishOk(base, `${prefix}-499`, 'last');
  const r = await pending.response;
  assert.deepEqual(r.json, { [`${prefix}-499`]: { status: 'ok', msg: [msg(id, 0, 'last')] } });
  // and again on the first one
  const pending2 = await heldPoll(base, pairs.map(([c]) => [c, c.endsWith('-499') ? id : 0]));
  const id0 = await publishOk(base, `${prefix}-0`, 'first');
  assert.deepEqual((await pending2.response).json, { [`${prefix}-0`]: { status: 'ok', msg: [msg(id0, 0, 'first')] } });
});

test('gap in the backlog gives a reset (behind) with the newest message', async () => {
  const c = uniqueChannel();
  const ids = [0];
  for (let i = 1; i <= 5; i++) ids.push(await publishOk(base, c, { i }, { backlog: 2 }));
  assert.equal(await redis.command('ZCARD', keys(c).backlog), 2, 'backlog trimmed to 2');

  const newest = [msg(ids[5], ids[4], { i: 5 })];
  for (const m of [0, ids[1], ids[2]]) {
    const r = await poll(base, [[c, m]]);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { [c]: { status: 'reset', id: ids[5], reason: 'behind', msg: newest } }, `m=${m}`);
  }
  // m=ids[3]: the backlog holds 4 and 5, exactly what follows 3.
  const ok = await poll(base, [[c, ids[3]]]);
  assert.deepEqual(ok.json, { [c]: { status: 'ok', msg: [msg(ids[4], ids[3], { i: 4 }), msg(ids[5], ids[4], { i: 5 })] } });
  const ok2 = await poll(base, [[c, ids[4]]]);
  assert.deepEqual(ok2.json, { [c]: { status: 'ok', msg: newest } });
});

test('reset when the channel keys were deleted (m > N)', async () => {
  const c = uniqueChannel();
  let id3;
  for (let i = 1; i <= 3; i++) id3 = await publishOk(base, c, i);
  const k = keys(c);
  await redis.command('DEL', k.id, k.backlog);
  const r = await poll(base, [[c, id3]]);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { [c]: { status: 'reset', id: 0, reason: 'lost', msg: [] } });

  // The channel starts a new history above every old id; a client still at id3 is told
  // that its id is lost, and to resume from the new one.
  const again = await publishOk(base, c, 'again');
  assert.ok(again > id3, 'ids never come back');
  const r2 = await poll(base, [[c, id3]]);
  assert.deepEqual(r2.json, { [c]: { status: 'reset', id: again, reason: 'lost', msg: [msg(again, 0, 'again')] } });
  // and one that took the reset (id 0) continues normally
  const r3 = await poll(base, [[c, 0]]);
  assert.deepEqual(r3.json, { [c]: { status: 'ok', msg: [msg(again, 0, 'again')] } });
});

test('held poll whose keys were deleted gets a reset, at the latest on the next message', async () => {
  const c = uniqueChannel();
  let id4;
  for (let i = 1; i <= 4; i++) id4 = await publishOk(base, c, i);
  const pending = await heldPoll(base, [[c, id4]]);
  const k = keys(c);
  await redis.command('DEL', k.id, k.backlog);
  const id = await publishOk(base, c, 'after-del');
  const t0 = Date.now();
  const r = await pending.response;
  assert.ok(Date.now() - t0 < 1000, `answered ${Date.now() - t0} ms after the publish, not held to the timeout`);
  assert.equal(r.status, 200);
  // Either the server noticed the deletion before the publish (reset to 0, nothing kept) or
  // it was woken by the publish (reset to its id with it); both tell the client the truth.
  const entry = r.json[c];
  if (entry && entry.id === 0) {
    assert.deepEqual(r.json, { [c]: { status: 'reset', id: 0, reason: 'lost', msg: [] } });
    const next = await poll(base, [[c, 0]]);
    assert.deepEqual(next.json, { [c]: { status: 'ok', msg: [msg(id, 0, 'after-del')] } });
  } else {
    assert.deepEqual(r.json, { [c]: { status: 'reset', id, reason: 'lost', msg: [msg(id, 0, 'after-del')] } });
  }
});

test('reset after FLUSHALL, on every channel of a multi-channel poll', async () => {
  const a = uniqueChannel('a'), b = uniqueChannel('b');
  await publishOk(base, a, 1);
  const a2 = await publishOk(base, a, 2);
  const b1 = await publishOk(base, b, 1);
  assert.equal(await redis.command('FLUSHALL'), 'OK');
  const r = await poll(base, [[a, a2], [b, b1]]);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {
    [a]: { status: 'reset', id: 0, reason: 'lost', msg: [] },
    [b]: { status: 'reset', id: 0, reason: 'lost', msg: [] },
  });
  const fresh = await publishOk(base, b, 'fresh');
  assert.ok(fresh > b1, 'ids never come back');
  const r2 = await poll(base, [[a, 0], [b, 0]]);
  assert.deepEqual(r2.json, { [b]: { status: 'ok', msg: [msg(fresh, 0, 'fresh')] } },
    'after the resets (to 0) a is up to date and b gets its new first message');
  const r3 = await poll(base, [[b, b1]]);
  assert.deepEqual(r3.json, { [b]: { status: 'reset', id: fresh, reason: 'lost', msg: [msg(fresh, 0, 'fresh')] } },
    'a client that missed the reset is still told');
});

test('state channel (backlog=1): a burst collapses to the newest message', async () => {
  const c = uniqueChannel('stickers');
  const ids = [0];
  for (let i = 1; i <= 10; i++) ids.push(await publishOk(base, c, { count: i }, { backlog: 1 }));
  assert.equal(await redis.command('ZCARD', keys(c).backlog), 1, 'state channel keeps one message');
  const newest = [msg(ids[10], ids[9], { count: 10 })];
  for (const m of [0, ids[1], ids[5], ids[8]]) {
    const r = await poll(base, [[c, m]]);
    assert.deepEqual(r.json, { [c]: { status: 'reset', id: ids[10], reason: 'behind', msg: newest } }, `m=${m}`);
  }
  const r = await poll(base, [[c, ids[9]]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: newest } });

  // A held state-channel poll is woken by the next count.
  const pending = await heldPoll(base, [[c, ids[10]]]);
  const id11 = await publishOk(base, c, { count: 11 }, { backlog: 1 });
  const r2 = await pending.response;
  assert.deepEqual(r2.json, { [c]: { status: 'ok', msg: [msg(id11, ids[10], { count: 11 })] } });
});

// The metric named `preferred`, or else the first metric of `type` whose name matches `re`.
function metricName(text, preferred, re, type) {
  if (new RegExp(`^${preferred}[ {]`, 'm').test(text)) return preferred;
  for (const m of text.matchAll(new RegExp(`^# TYPE (\\S+) ${type}$`, 'gm'))) if (re.test(m[1])) return m[1];
  throw new Error(`/metrics has no ${type} like ${preferred}:\n${text}`);
}

test('/metrics counts publishes, deliveries, resets, requests by status; gauges held polls and subscriptions', async () => {
  const before = await metricsText(base);
  const names = {
    publishes: metricName(before, 'rt_publishes_total', /publish/, 'counter'),
    deliveries: metricName(before, 'rt_deliveries_total', /deliver/, 'counter'),
    resets: metricName(before, 'rt_resets_total', /reset/, 'counter'),
    requests: metricName(before, 'rt_requests_total', /request/, 'counter'),
    subscribed: metricName(before, 'rt_subscribed_channels', /subscri/, 'gauge'),
  };
  assert.match(before, /^# TYPE \S+ histogram$/m, 'a latency histogram');
  const v = (text, name, labels) => metricValue(text, name, labels) ?? 0;
  const statusLabel = (text) => (/^\S+\{[^}]*\bcode="/m.test(text) ? 'code' : 'status');

  const c = uniqueChannel('metrics');
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await publishOk(base, c, i, { backlog: 1 }));
  await poll(base, [[c, ids[1]]]); // ok, 1 message
  await poll(base, [[c, 0]]); // reset, behind
  await poll(base, [[c, ids[2] + 1]]); // reset, lost (an id above N)
  await poll(base, [[c, ids[2] - 1]]); // reset, lost (never issued)
  await get(base, '/rt?c=bad%20name&m=0'); // 400
  const held = uniqueChannel('sub');
  const pending = await heldPoll(base, [[held, 0]]);
  const after = await metricsText(base);
  await publishOk(base, held, 'release');
  await pending.response;

  assert.equal(v(after, names.publishes) - v(before, names.publishes), 3, 'publishes counted');
  assert.ok(v(after, names.deliveries) > v(before, names.deliveries), 'deliveries counted');
  assert.ok(v(after, names.resets) > v(before, names.resets), 'resets counted');
  assert.equal(v(after, 'rt_resets_total', { reason: 'behind' }) - v(before, 'rt_resets_total', { reason: 'behind' }), 1,
    'resets by reason: behind');
  assert.equal(v(after, 'rt_resets_total', { reason: 'lost' }) - v(before, 'rt_resets_total', { reason: 'lost' }), 2,
    'resets by reason: lost');
  const sl = statusLabel(after);
  assert.ok(v(after, names.requests, { [sl]: '400' }) > v(before, names.requests, { [sl]: '400' }), 'requests by status: 400');
  assert.ok(v(after, names.requests, { [sl]: '200' }) > v(before, names.requests, { [sl]: '200' }), 'requests by status: 200');
  assert.ok(v(after, names.subscribed) >= 1, 'a held poll keeps its channel subscribed');
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(stack.server);
});
