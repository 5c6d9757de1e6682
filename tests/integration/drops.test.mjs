// Clients that go away: held polls whose connections are dropped must be freed (the held
// gauge returns to its baseline quickly, well before the poll timeout), also when a message
// for them arrives at the same moment; and held polls are bounded by --max-held.
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import {
  test, startStack, withServer, assertCleanShutdown, poll, publishOk, openRawGet, heldPolls,
  waitHeld, waitFor, uniqueChannel, assertStillServes,
} from './lib/harness.mjs';

// Long enough that a held poll can only leave the gauge by being dropped, not by timing out.
const POLL_TIMEOUT = 20;
let stack, base, port;

before(async () => {
  stack = await startStack({ pollTimeout: POLL_TIMEOUT });
  base = stack.base;
  port = stack.server.port;
});
after(async () => { await stack?.stop(); });

async function openHeld(paths) {
  const socks = [];
  // In batches, so that connects do not overflow the listen backlog.
  for (let i = 0; i < paths.length; i += 50) {
    socks.push(...await Promise.all(paths.slice(i, i + 50).map((p) => openRawGet(port, p))));
  }
  return socks;
}

async function expectBackToBaseline(baseline, what, timeout = 2500) {
  const t0 = Date.now();
  await waitHeld(base, (n) => n === baseline, { timeout, what: `held gauge back to ${baseline} ${what}` });
  return Date.now() - t0;
}

test('200 held polls whose clients drop their connections are freed within ~2 s', { timeout: 60000 }, async () => {
  const baseline = await heldPolls(base);
  const shared = uniqueChannel('shared');
  const paths = Array.from({ length: 200 }, (_, i) => (i % 2
    ? `/rt?c=${shared}&m=0`
    : `/rt?c=${uniqueChannel(`own${i}`)}&m=0&c=${shared}&m=0`));
  const socks = await openHeld(paths);
  let answered = 0;
  for (const s of socks) s.on('data', () => { answered++; });
  await waitHeld(base, (n) => n === baseline + 200, { timeout: 10000, what: '200 polls held' });
  assert.equal(answered, 0, 'nothing to answer yet');

  for (const s of socks) s.destroy();
  const ms = await expectBackToBaseline(baseline, 'after 200 clients dropped');
  assert.ok(ms <= 2500, `took ${ms} ms`);

  // The shared channel still works for a new subscriber.
  const pending = poll(base, [[shared, 0]]);
  pending.catch(() => {}); // awaited below
  await waitHeld(base, (n) => n === baseline + 1);
  const id = await publishOk(base, shared, 'after drops');
  const r = await pending;
  assert.deepEqual(r.json, { [shared]: { status: 'ok', msg: [{ id, prev: 0, payload: 'after drops' }] } });
});

test('polls dropped at the moment a message for them arrives: no crash, all freed', { timeout: 60000 }, async () => {
  const c = uniqueChannel('race');
  const baseline = await heldPolls(base);
  let last = 0;
  const ids = [];
  for (let round = 0; round < 6; round++) {
    const socks = await openHeld(Array.from({ length: 60 }, () => `/rt?c=${c}&m=${last}`));
    await waitHeld(base, (n) => n === baseline + 60, { timeout: 10000, what: `round ${round}: 60 held` });
    // Drop and publish together: some answers are written to sockets that are closing.
    const pubs = [publishOk(base, c, { round, k: 0 }), publishOk(base, c, { round, k: 1 })];
    for (const [i, s] of socks.entries()) { if (i % 2) s.resetAndDestroy(); else s.destroy(); }
    ids.push(...await Promise.all(pubs));
    last = Math.max(...ids);
    await expectBackToBaseline(baseline, `round ${round}`);
  }
  ids.sort((x, y) => x - y);
  assert.equal(new Set(ids).size, 12, 'twelve publishes, twelve ids');
  const r = await poll(base, [[c, ids[9]]]);
  assert.deepEqual(r.json[c].msg.map((m) => m.id), [ids[10], ids[11]]);
  assert.deepEqual(r.json[c].msg.map((m) => m.prev), [ids[9], ids[10]]);
});

test('polls aborted by the client (fetch AbortController) are freed', { timeout: 30000 }, async () => {
  const baseline = await heldPolls(base);
  const ctrl = new AbortController();
  const c = uniqueChannel('abort');
  const polls = Array.from({ length: 50 }, (_, i) => poll(base, [[c, 0], [`${c}-${i}`, 0]], { signal: ctrl.signal }));
  polls.forEach((p) => p.catch(() => {})); // settled below
  await waitHeld(base, (n) => n === baseline + 50, { timeout: 10000, what: '50 fetch polls held' });
  ctrl.abort();
  const settled = await Promise.allSettled(polls);
  assert.ok(settled.every((s) => s.status === 'rejected'), 'fetches aborted');
  await expectBackToBaseline(baseline, 'after 50 aborted fetches');
});

test('answered polls leave the gauge too (keep-alive connection stays usable)', async () => {
  const baseline = await heldPolls(base);
  const c = uniqueChannel();
  const pending = Array.from({ length: 20 }, () => poll(base, [[c, 0]]));
  pending.forEach((p) => p.catch(() => {})); // awaited below
  await waitHeld(base, (n) => n === baseline + 20, { what: '20 polls held' });
  const id = await publishOk(base, c, 'wake all');
  for (const r of await Promise.all(pending)) {
    assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id, prev: 0, payload: 'wake all' }] } });
  }
  await expectBackToBaseline(baseline, 'after 20 answered polls');
});

test('--max-held bounds held polls; the server refuses the excess promptly', { timeout: 30000 }, async () => {
  await withServer({ redisUrl: stack.redis.url, pollTimeout: POLL_TIMEOUT, args: ['--max-held', '10'] }, async (small) => {
    const c = uniqueChannel('bounded');
    const ctrl = new AbortController();
    const first = Array.from({ length: 10 }, () => poll(small.base, [[c, 0]], { signal: ctrl.signal }));
    first.forEach((p) => p.catch(() => {}));
    await waitFor(async () => (await heldPolls(small.base)) === 10, { what: '10 held on --max-held 10' });
    const extra = await Promise.all(Array.from({ length: 5 }, () => poll(small.base, [[c, 0]])));
    for (const r of extra) {
      assert.ok(r.ms < 1000, `excess poll answered after ${r.ms} ms`);
      assert.ok(r.status >= 400 || (r.status === 200 && r.body.trim() === '{}'),
        `excess poll must be refused, got ${r.status} ${r.body}`);
      if (r.status === 503) assert.match(r.headers.get('retry-after') || '', /^[1-9][0-9]*$/, 'Retry-After on the 503');
    }
    assert.ok((await heldPolls(small.base)) <= 10, 'never more than --max-held');
    // Those held are still served.
    const id = await publishOk(small.base, c, 'bounded');
    for (const r of await Promise.all(first)) {
      assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id, prev: 0, payload: 'bounded' }] } });
    }
  });
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM while polls are held, with no sanitizer report', async () => {
  // Held requests at shutdown must be released (answered or closed), not leaked.
  const baseline = await heldPolls(base);
  const socks = await openHeld(Array.from({ length: 30 }, (_, i) => `/rt?c=${uniqueChannel(`shut${i}`)}&m=0`));
  await waitHeld(base, (n) => n === baseline + 30, { what: '30 polls held at shutdown' });
  // Each poll is answered 503 (the Redis links shut down first), then its connection closes.
  // The sockets are read (resume) so that the close is seen behind the answer.
  const answers = socks.map((s) => new Promise((resolve) => {
    let got = '';
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('close', () => resolve(got));
    s.resume();
  }));
  await assertCleanShutdown(stack.server);
  // The stop leaves the answers time to be written: every held poll gets its 503, and the
  // connection is closed after it.
  for (const got of await Promise.all(answers)) {
    assert.match(got, /^HTTP\/1\.1 503 /, `answer at shutdown: ${JSON.stringify(got.slice(0, 200))}`);
    assert.match(got, /\r\nConnection: close\r\n/i, got.slice(0, 300));
  }
});
