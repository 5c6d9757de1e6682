// The in-process mirror of each subscribed channel's head (server/src/channels/mirror.hpp): polls it
// decides get exactly the answers a Redis read would give; it survives pub/sub reconnects
// without losing or repeating a message; history lost without a publish still ends in a
// reset; and it really spares Redis (catch-up polls make no backlog read).
// Two worker threads: each has its own pub/sub connection and mirrors, and consecutive
// requests land on either.
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import {
  test, startStack, assertCleanShutdown, poll, publishOk, keys, uniqueChannel, metricsText,
  metricValue, waitFor, sleep, assertStillServes, heldPolls, waitHeld, msg, assertChain,
} from './lib/harness.mjs';

const POLL_TIMEOUT = 5; // seconds: longer than a mirror verification takes (< 2 s)
let stack, base, redis;

before(async () => {
  stack = await startStack({ pollTimeout: POLL_TIMEOUT, args: ['--threads', '2'] });
  base = stack.base;
  redis = stack.client;
});
after(async () => { await stack?.stop(); });

async function counters() {
  const t = await metricsText(base);
  return {
    reads: metricValue(t, 'rt_backlog_reads_total') ?? 0,
    mirror: metricValue(t, 'rt_mirror_decisions_total') ?? 0,
    lost: metricValue(t, 'rt_mirror_history_lost_total') ?? 0,
  };
}

// What a Redis read says for last id `m` (PROTOCOL.md section 3, version 2), from the keys
// themselves.
async function expectedFromRedis(c, m) {
  const k = keys(c);
  const n = Number((await redis.command('GET', k.id)) ?? 0);
  const backlog = (await redis.command('ZRANGE', k.backlog, '0', '-1')).map((s) => JSON.parse(s));
  if (m === n) return undefined; // nothing new: held
  const prevOf = (x) => x.prev ?? x.id - 1;
  const after = backlog.filter((x) => x.id > m);
  if (after.length && prevOf(after[0]) === m) {
    let end = 1;
    while (end < after.length && prevOf(after[end]) === after[end - 1].id) end++;
    return { status: 'ok', msg: after.slice(0, end) };
  }
  const reason = after.length && m < prevOf(after[0]) ? 'behind' : 'lost';
  return { status: 'reset', id: n, reason, msg: backlog.length ? [backlog[backlog.length - 1]] : [] };
}

// The newest backlog message of channel `c` (null when the backlog is empty).
async function newestInRedis(c) {
  const t = await redis.command('ZRANGE', keys(c).backlog, '-1', '-1');
  return t.length ? JSON.parse(t[0]) : null;
}

test('catch-up polls are decided by the mirror with no Redis read, and answer what Redis holds', async () => {
  const c = uniqueChannel('mirror');
  const id1 = await publishOk(base, c, 'one');
  const id2 = await publishOk(base, c, 'two');
  const want = { [c]: { status: 'ok', msg: [msg(id2, id1, 'two')] } };
  // The first polls subscribe the channel on each worker and seed its mirror.
  const c0 = await counters();
  await waitFor(async () => {
    const r = await poll(base, [[c, id1]]);
    assert.deepEqual(r.json, want);
    return (await counters()).mirror >= c0.mirror + 4;
  }, { what: 'the mirrors to decide polls', timeout: 8000 });
  const before = await counters();
  for (let i = 0; i < 40; i++) {
    const r = await poll(base, [[c, id1]]);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, want);
  }
  const afterwards = await counters();
  // A mirror is re-verified with one GET at most every ~0.7 s, never a backlog read; a
  // stale one (verification late under load) lets a poll read Redis: allow a few.
  assert.ok(afterwards.mirror - before.mirror >= 30, `mirror decisions ${afterwards.mirror - before.mirror} of 40`);
  assert.ok(afterwards.reads - before.reads <= 10, `backlog reads ${afterwards.reads - before.reads} for 40 catch-up polls`);
});

test('mirror decisions match Redis for every last id around N, also for a state channel (backlog=1)', async () => {
  for (const backlog of [100, 1]) {
    const c = uniqueChannel(`agree${backlog}`);
    const ids = [0];
    for (let i = 1; i <= 5; i++) ids.push(await publishOk(base, c, { i }, { backlog }));
    // Keep the channel subscribed on both workers and its mirrors seeded.
    for (let i = 0; i < 6; i++) await poll(base, [[c, ids[4]]]);
    for (let round = 0; round < 3; round++) {
      const n = Number(await redis.command('GET', keys(c).id));
      const k = ids.length - 1;
      // Issued ids around N (the newest's prev is the fast path), ids never issued (one
      // below N: "one behind" by id arithmetic; inside the span), and ids above N.
      for (const m of [0, ids[k - 3], ids[k - 2], ids[k - 1], n - 1, ids[k - 1] + 1, n + 1, n + 5]) {
        if (m < 0) continue;
        const want = await expectedFromRedis(c, m);
        const r = await poll(base, [[c, m]]);
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { [c]: want }, `backlog=${backlog} N=${n} m=${m}`);
      }
      ids.push(await publishOk(base, c, { i: k + 1 }, { backlog }));
    }
  }
});

test('a follower sees every message once, in order, while the pub/sub connections are killed again and again', { timeout: 90000 }, async () => {
  const c = uniqueChannel('kill');
  const TOTAL = 400;
  let stop = false;
  let final = Infinity; // the last id, once published
  const published = [];
  const got = [];
  const resets = [];
  const follower = (async () => {
    let last = 0;
    while (!stop || last < final) {
      const r = await poll(base, [[c, last]]).catch((e) => ({ status: 0, body: String(e) }));
      if (r.status !== 200) { await sleep(20); continue; } // 503 while the hub reconnects
      const e = r.json[c];
      if (!e) continue;
      if (e.status === 'reset') { resets.push({ ...e, last, tail: got.slice(-3) }); last = e.id; continue; }
      assertChain(e.msg, last, 'follower');
      for (const m of e.msg) got.push(m.id);
      last = e.msg[e.msg.length - 1].id;
    }
  })();
  const killer = (async () => {
    let kills = 0;
    while (!stop) {
      await sleep(100 + Math.random() * 150);
      await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
      kills++;
    }
    return kills;
  })();
  // Catch-up polls one behind (at the newest message's prev), racing the publishes and
  // kills: every answer must be what Redis held (the newest message, or more when the poll
  // read Redis after a newer publish).
  const checker = (async () => {
    let checked = 0;
    while (!stop) {
      const newest = await newestInRedis(c);
      if (!newest) { await sleep(5); continue; }
      const m = newest.prev;
      const r = await poll(base, [[c, m]]).catch(() => null);
      if (!r || r.status !== 200) continue;
      const e = r.json[c];
      assert.ok(e, `m=${m} held to the timeout although Redis had ${newest.id}: ${r.body}`);
      assert.equal(e.status, 'ok', `m=${m}: ${r.body}`);
      assert.equal(e.msg[0].id, newest.id, `m=${m}: ${r.body}`);
      assertChain(e.msg, m, `m=${m}`);
      checked++;
    }
    return checked;
  })();
  try {
    for (let i = 1; i <= TOTAL; i++) {
      published.push(await publishOk(base, c, { i }, { backlog: 1000 }));
      if (i % 20 === 0) await sleep(15);
    }
  } finally {
    final = published.at(-1) ?? 0;
    stop = true;
  }
  const [kills, checked] = await Promise.all([killer, checker, follower]).then(([k, ch]) => [k, ch]);
  assert.ok(kills >= 3, `pub/sub connections killed ${kills} times`);
  assert.ok(checked > 0, 'catch-up polls checked');
  assert.deepEqual(resets, [], 'no reset: the backlog (1000) always held what the follower missed');
  assert.deepEqual(got, published, 'every id once, in order');
  // Both workers' pub/sub connections back (reconnect backoff may have grown to 2 s).
  await waitFor(async () => {
    const rs = await Promise.all([0, 1, 2, 3].map(() => fetch(base + '/healthz').then((r) => r.status)));
    return rs.every((st) => st === 200);
  }, { timeout: 10000, what: '/healthz 200 after the kills' });
});

test('a poll right after publishes to two channels answers both (the mirrors wait for a fence)', async () => {
  // Channel b's pub/sub copy may still be on its way when the poll comes; answering with
  // a alone would break "at once with all channels that have an entry".
  const a = uniqueChannel('fa'), b = uniqueChannel('fb');
  let la = await publishOk(base, a, 0), lb = await publishOk(base, b, 0);
  const c0 = await counters();
  for (let i = 1; i <= 300; i++) {
    const ia = await publishOk(base, a, i), ib = await publishOk(base, b, i);
    const r = await poll(base, [[a, la], [b, lb]]);
    assert.deepEqual(r.json, {
      [a]: { status: 'ok', msg: [msg(ia, la, i)] },
      [b]: { status: 'ok', msg: [msg(ib, lb, i)] },
    }, `round ${i}`);
    la = ia; lb = ib;
  }
  // Decided by the mirrors (with the fences), not by 600 backlog reads.
  const c1 = await counters();
  assert.ok(c1.mirror - c0.mirror >= 300, `mirror decisions ${c1.mirror - c0.mirror}`);
});

test('keys deleted without a publish: a held poll and a catch-up poll still get the reset', async () => {
  const c = uniqueChannel('vanish');
  const ids = [0];
  for (let i = 1; i <= 3; i++) ids.push(await publishOk(base, c, i));
  // Seed the mirrors (and wait out a pub/sub reconnect left over from the test before).
  await waitFor(async () => {
    for (let i = 0; i < 6; i++) if ((await poll(base, [[c, ids[2]]])).status !== 200) return false;
    return true;
  }, { timeout: 10000, what: 'six polls answered 200 in a row' });
  const h0 = await heldPolls(base);
  const held = poll(base, [[c, ids[3]]]);
  await waitHeld(base, (n) => n >= h0 + 1, { what: 'the poll to be held' });
  const c0 = await counters();
  const k = keys(c);
  const t0 = Date.now();
  await redis.command('DEL', k.id, k.backlog);
  const r = await held;
  const ms = Date.now() - t0;
  assert.deepEqual(r.json, { [c]: { status: 'reset', id: 0, reason: 'lost', msg: [] } }, `held poll answered after ${ms} ms: ${r.body}`);
  assert.ok(ms < (POLL_TIMEOUT - 1) * 1000, `reset after ${ms} ms, before the poll timeout`);
  assert.ok((await counters()).lost > c0.lost, 'found by a mirror verification');
  const r2 = await poll(base, [[c, ids[3]]]);
  assert.deepEqual(r2.json, { [c]: { status: 'reset', id: 0, reason: 'lost', msg: [] } });
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(stack.server);
});
